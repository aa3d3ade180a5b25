"""End to end (slow), beside tests/cli/test_cli.py: the `ehdnas` command as users run it: a real process, a real SQLite
file, real ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import SMALL_DARTS, rows  # noqa: F401
from tests.conftest import EHDNAS, FAST, run_cli


@pytest.mark.slow
def test_collect_resumes_after_an_interruption(db_url: str) -> None:
    args = [*EHDNAS, "collect", *SMALL_DARTS, "-t", "ort-cpu", "--samples", "8", *FAST]
    proc = subprocess.Popen(
        args,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EHDNAS_DB": db_url},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as at a terminal, even if CI ignores it
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("[2/8]"):
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again to resume" in rest
    stored = rows(db_url)
    assert 2 <= stored < 8
    resumed = json.loads(run_cli(*args[1:], "--json", db=db_url).stdout)
    assert (resumed["already_stored"], resumed["measured"]) == (stored, 8 - stored) and rows(db_url) == 8


@pytest.mark.slow
def test_two_collectors_share_one_store(db_url: str) -> None:
    env = {**os.environ, "EHDNAS_DB": db_url}
    base = [*EHDNAS, "collect", *SMALL_DARTS, "-t", "ort-cpu", "--samples", "4", *FAST]
    procs = [subprocess.Popen([*base, "--seed", seed], env=env, stderr=subprocess.PIPE) for seed in ("0", "1", "0")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert rows(db_url) == 8  # seeds 0 and 1, each architecture once
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow
def test_collect_train_and_collect_actively(db_url: str, tmp_path: Path) -> None:
    from perf_models import load_predictor

    run_cli("collect", *SMALL_DARTS, "-t", "ort-cpu", "--samples", "50", *FAST, db=db_url)
    out = tmp_path / "predictor.pt"
    doc = json.loads(
        run_cli("train-predictor", *SMALL_DARTS, "-t", "ort-cpu", "--out", str(out), "--json", db=db_url).stdout
    )
    assert set(doc) >= {"mlp", "lut", "flops", "xgboost", "best", "split"} and doc["best"] in ("mlp", "lut")
    assert set(doc["mlp"]) >= {"mape", "rmse_ms", "acc5", "acc10", "kendall_tau", "spearman_rho"}
    predictor = load_predictor(out, space="darts")
    assert predictor.meta["target"] == "ort-cpu" and predictor.meta["measurements"] == 50
    assert predictor.meta["space_config"]["layers"] == 3 and predictor.meta["host"]["cores"] >= 1

    active = ["collect", *SMALL_DARTS, "-t", "ort-cpu", "--samples", "62", "--strategy", "uncertain", "--json", *FAST]
    report = json.loads(run_cli(*active, db=db_url).stdout)
    assert (report["strategy"], report["already_stored"], report["measured"]) == ("uncertain", 50, 12)
    assert rows(db_url) == 62
    again = json.loads(run_cli(*active, db=db_url).stdout)
    assert again["measured"] == 0 and rows(db_url) == 62


@pytest.mark.slow
def test_search_command_end_to_end(tmp_path: Path) -> None:
    from ehdnas.spaces import get_space
    from tests.methods.test_search import tiny_predictor

    space = get_space("darts", {"layers": 3, "channels": 4, "input_size": 8})
    predictor = tiny_predictor(space)
    predictor.save(tmp_path / "p.pt", predictor.meta)
    args = ["search", "-t", "ort-cpu", "--out", str(tmp_path / "run"), "--predictor", str(tmp_path / "p.pt")]
    args += ["--space-option", "layers=3", "--space-option", "channels=4", "--space-option", "input_size=8"]
    result = json.loads(
        run_cli(*args, "--epochs", "1", "--retrain-epochs", "1", "--batch-size", "256", "--json").stdout
    )
    assert space.parse(result["genotype"]) and result["measured_latency_ms"]["n"] >= 20
    assert (tmp_path / "run" / "search.png").stat().st_size > 10_000
