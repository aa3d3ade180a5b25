"""End to end (slow), beside tests/methods/test_flownas_search.py: `search --method flownas`: teacher, supernet,
evolution under a measured latency budget, the chosen encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends import TimingProtocol, get_target
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space
from tests.conftest import run_cli
from tests.methods.test_flownas_search import EVOLUTION, OPTIONS  # noqa: F401


@pytest.mark.slow
def test_search_end_to_end_meets_a_measured_budget_and_resumes(tmp_path: Path, db_url: str) -> None:
    space = get_space("flownas", {"input_height": 32, "input_width": 32})
    runner = get_target("systolic-edge32")
    ends = [
        runner.measure(export_arch(space, arch, tmp_path / f"{i}.onnx"), TimingProtocol()).latency_ms.median
        for i, arch in enumerate((space.smallest(), space.largest()))
    ]
    budget = sum(ends) / 2  # rules out part of the space, never all of it
    out = tmp_path / "run"
    args = ["search", "--method", "flownas", "-t", "systolic-edge32", *OPTIONS, "--latency-budget", f"{budget:.6f}"]
    args += ["--latency-from", "measured", "--pairs", "8,4,4", "--teacher-epochs", "1", "--epochs", "1"]
    args += ["--batch-size", "4", "--out", str(out)] + [f"--evolution={e}" for e in EVOLUTION]
    proc = run_cli(*args, db=db_url)
    result = json.loads((out / "result.json").read_text())
    measured = result["measured_latency_ms"]["median"]
    assert measured <= budget and result["meets_budget_measured"]
    assert result["constraint_latency_ms"] == pytest.approx(measured)  # the searched and the exported graph agree
    assert space.parse(result["encoder"]) and result["test_epe"] > 0 and result["teacher"]["test_epe"] > 0
    assert result["teacher"]["measured_latency_ms"] == pytest.approx(ends[1])
    evolution = result["evolution"]
    assert evolution["drawn"] == 4 + 2 + 2 + evolution["rejected"]  # the population, then one breeding
    assert evolution["rejected_share"] == evolution["rejected"] / evolution["drawn"]
    assert all(row["latency_ms"] <= budget for row in result["population"])
    assert [r["generation"] for r in evolution["history"]] == [1, 2]
    for name in ("pareto.png", "encoder.onnx", "encoder.pt", "teacher.pt", "supernet.pt"):
        assert (out / name).stat().st_size > 0
    assert "teacher 1/1" in proc.stderr and "supernet 1/1" in proc.stderr and "evolution 2/2" in proc.stderr
    assert f"budget {float(f'{budget:.6f}'):g} ms met" in proc.stdout

    # The same search again, in the spelling before methods had their flag: the finished result, nothing retrained.
    same = run_cli(*["--space" if a == "--method" else a for a in args], db=db_url)
    assert "teacher 1/1" not in same.stderr and json.loads((out / "result.json").read_text()) == result
    assert "warning: space 'flownas' without a method is deprecated" in same.stderr
    looser = [
        *args[: args.index("--latency-budget")],
        "--latency-budget",
        f"{1.01 * ends[1]:.6f}",
        *args[args.index("--latency-from") :],
    ]
    resumed = run_cli(*looser, db=db_url)  # another budget: both trained stages are reused, only the evolution runs
    assert "resumed: the teacher" in resumed.stderr and "resumed: the supernet" in resumed.stderr
    again = json.loads((out / "result.json").read_text())
    assert again["latency_budget_ms"] == pytest.approx(1.01 * ends[1]) and again["evolution"]["rejected"] == 0

    tight = [*args[: args.index("--latency-budget")], "--latency-budget", "1e-6", "--latency-from", "measured"]
    refused = run_cli(*tight, "--out", str(tmp_path / "tight"), db=db_url, check=False)
    assert refused.returncode == 2 and "the smallest encoder takes" in refused.stderr  # before any training
    assert not (tmp_path / "tight" / "teacher.pt").exists()
