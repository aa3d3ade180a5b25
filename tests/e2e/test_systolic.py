"""End to end (slow), beside tests/backends/test_systolic.py: systolic-array targets: accelerator files, ONNX to
layers, the analytical engine against SCALE-Sim, the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, search_end_to_end


@pytest.mark.slow
def test_collect_uses_every_core_and_trains_a_predictor(db_url: str) -> None:
    """A simulated target's collection runs in a process pool; resumes; the predictors train on it."""
    space = ["--space-option", "layers=3", "--space-option", "channels=4", "--space-option", "input_size=8"]
    args = ["collect", "--space", "darts", "-t", "systolic-edge32", "--samples", "120", *space, "--json"]
    first = json.loads(run_cli(*args, db=db_url).stdout)
    assert first["measured"] == 120
    assert json.loads(run_cli(*args, db=db_url).stdout)["measured"] == 0
    out = Path(db_url.removeprefix("sqlite:///")).parent / "pred.pt"
    report = run_cli("train-predictor", "--space", "darts", "-t", "systolic-edge32", *space, "--out", str(out),
                     "--json", db=db_url)  # fmt: skip
    scores = json.loads(report.stdout)
    assert scores["mlp"]["mape"] < 20 and out.is_file()


@pytest.mark.slow
def test_search_on_a_systolic_target_end_to_end(tmp_path: Path, db_url: str) -> None:
    result = search_end_to_end("systolic-eyeriss", tmp_path / "run", db_url)
    assert result["measured_latency_ms"]["std"] == 0  # simulated: exact
    assert result["followed"]  # the default: the predictor followed the search
