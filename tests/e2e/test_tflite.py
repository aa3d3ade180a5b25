"""End to end (slow), beside tests/backends/test_tflite.py: liteRT targets: conversion (float32, int8), its cache,
tflite-cpu through the CLI and search, and edgetpu.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backends.test_tflite import TINY  # noqa: F401
from tests.conftest import run_cli, stored_predictor


@pytest.mark.slow
def test_search_on_an_int8_target_reports_its_accuracy_there(tmp_path: Path, db_url: str) -> None:
    # What is checked is the search's end on an int8 LiteRT target: conversion, measurement, int8 accuracy (not
    # following, which would convert a dozen more networks), with a predictor of latencies stored as if measured.
    target = ["-t", "tflite-cpu", "-o", "precision=int8", "-o", "calibration=digits"]
    predictor = stored_predictor(target, db_url, tmp_path / "predictor.pt", TINY)
    args = ["search", *target, *TINY, "--predictor", str(predictor), "--out", str(tmp_path / "run"), "--no-follow"]
    printed = run_cli(*args, "--epochs", "1", "--retrain-epochs", "2", db=db_url).stdout
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    on_target = result["on_target"]
    assert f"{on_target['test_accuracy']:.4f} in int8 on the target" in printed
    assert result["target_config"]["precision"] == "int8" and result["measured_latency_ms"]["median"] > 0
    assert on_target["precision"] == "int8" and 0 <= on_target["test_accuracy"] <= 1
    assert on_target["drop"] == pytest.approx(result["test_accuracy"] - on_target["test_accuracy"])
    assert abs(on_target["drop"]) < 0.2  # int8 of the same network, not a broken conversion
