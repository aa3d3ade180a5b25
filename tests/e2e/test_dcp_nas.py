"""End to end (slow), beside tests/methods/test_dcp_nas.py: dCP-NAS: the child-parent step, its settings, the CLI and
the server's search spec.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from ehdnas.methods.registry import get_method
from ehdnas.spaces.binary_ops import memory_bits
from tests.conftest import run_cli


@pytest.mark.slow
def test_search_dcp_nas_end_to_end(tmp_path: Path, db_url: str) -> None:
    space = ["--space-option", "layers=3", "--space-option", "channels=4", "--space-option", "input_size=8"]
    args = ["search", "--method", "dcp-nas", "-t", "systolic-edge32", *space, "--auto-predictor"]
    args += ["--auto-samples", "50"]
    out = tmp_path / "run"
    printed = run_cli(*args, "--epochs", "2", "--retrain-epochs", "1", "--out", str(out), db=db_url).stdout
    result = json.loads((out / "result.json").read_text())
    assert result["space_config"]["binary"] is True and result["settings"]["method"] == "dcp-nas"
    space = get_method("dcp-nas").space("darts", result["space_config"])
    genotype = space.parse(result["genotype"])
    assert result["memory_mbits"] == memory_bits(space.build(genotype)) / 1e6
    # At 3 cells of 4 channels the real-valued stem and classifier hold most of the memory: only ~3x less.
    assert 0 < result["memory_mbits"] < result["real_memory_mbits"] / 2
    assert "1-bit network" in printed and f"{result['memory_mbits']:.3f} Mbit" in printed
    nodes = [node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node]
    assert "Sign" in nodes  # the exported child keeps its 1-bit convolutions visible to runners
    history = torch.load(out / "checkpoint.pt", weights_only=True)["history"]
    assert all(r["discrepancy"] > 0 and r["backtracked_edges"] == 14 for r in history)
