"""Latencies measured elsewhere: imported under external:NAME, trained on, searched against, refused row by row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from backends import get_target
from ehdnas.core.errors import UserError
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.imports import import_measurements
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.predictors import train_and_save
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from tests.conftest import run_main

# A device whose latency is 1 ms plus a cost per op on each edge: a law a predictor can learn.
OP_COST_MS = {"none": 0.0, "skip_connect": 0.01, "nor_conv_1x1": 0.05, "nor_conv_3x3": 0.3, "avg_pool_3x3": 0.02}


def device_table(path: Path, count: int, by_index: bool = False) -> dict[str, float]:
    """A HW-NAS-Bench-style CSV of `count` NAS-Bench-201 cells (by string, or by index), latencies in us."""
    space = get_space("nb201")
    truth = {}
    lines = ["index,latency,unit" if by_index else "arch,latency,unit"]
    for index in np.random.default_rng(0).choice(15_625, size=count, replace=False):
        cell = space.from_index(int(index))
        ms = 1.0 + sum(OP_COST_MS[op] for op in cell.ops)
        truth[cell.to_text()] = ms
        lines.append(f"{index if by_index else cell.to_text()},{ms * 1000:.1f},us")
    path.write_text("\n".join(lines) + "\n")
    return truth


def test_imported_latencies_are_stored_with_provenance_and_train_a_predictor(tmp_path: Path) -> None:
    store, space = Store(f"sqlite:///{tmp_path}/s.db"), get_space("nb201")
    truth = device_table(tmp_path / "pixel3.csv", 120, by_index=True)
    summary = import_measurements(store, space, "pixel3", tmp_path / "pixel3.csv")
    assert summary["target"] == "external:pixel3" and summary["stored"] == 120 and summary["already_stored"] == 0
    assert summary["columns"] == {"arch": "index", "value": "latency", "unit": "unit"}
    runner = get_target("external:pixel3")
    key = MeasurementKey.of(runner, space)
    assert key.host == {"external": "pixel3"}  # found from any machine, not this one's fingerprint
    stored = dict(store.measurements(key))
    assert {arch: m.latency_ms.median for arch, m in stored.items()} == pytest.approx(truth)  # us -> ms
    measurement = stored[next(iter(truth))]
    provenance = measurement.details["imported"]
    assert provenance["file"] == "pixel3.csv" and provenance["sha256"] == summary["sha256"]
    assert provenance["unit"] == "us" and provenance["imported_at"] and 1 <= provenance["row"] <= 120
    assert measurement.model["macs"] > 0  # the space's exact MACs, a predictor feature like a measured row's
    again = import_measurements(store, space, "pixel3", tmp_path / "pixel3.csv")
    assert again["stored"] == 0 and again["already_stored"] == 120  # imported once
    assert len(load_dataset(store, space, key)) == 120
    report, _, path = train_and_save(store, space, key, tmp_path / "p.pt", kinds=["lut"])
    assert path.is_file() and report.metrics["lut"]["mape"] < 5  # additive law: the LUT learns it


def test_bad_rows_are_one_line_naming_the_row(tmp_path: Path) -> None:
    store, space = Store(f"sqlite:///{tmp_path}/s.db"), get_space("nb201")
    good = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    cases = {
        f"arch,latency\n{good},2.0\n|none~0|+|none~0|none~1|,1.0\n": "row 2 (line 3): nb201 cell: expected 3 nodes",
        f"arch,latency\n{good},-1\n": "row 1 (line 2): latency '-1' is not a positive number",
        f"arch,latency\n{good},fast\n": "row 1 (line 2): latency 'fast' is not a positive number",
        f"arch,latency,unit\n{good},2.0,min\n": "unit 'min' is not one of ms, us, s",
        f"arch,latency\n{good},2.0\n{good},3.0\n": "row 2 (line 3): the same architecture as row 1",
        "index,latency\n15625,2.0\n": "row 1 (line 2): nb201 index 15625 out of range 0..15624",
        f"arch,time\n{good},2.0\n": "no value column 'latency'",
        f"arch,latency\n{good},2.0,extra\n": "row 1 (line 2): not as many cells",
    }
    for text, message in cases.items():
        (tmp_path / "t.csv").write_text(text)
        with pytest.raises(UserError, match=re.escape(message)):
            import_measurements(store, space, "pixel3", tmp_path / "t.csv")
    assert store.count() == 0  # every row is checked before any is stored
    (tmp_path / "t.json").write_text(json.dumps([{"arch": good, "latency": 2.0}, {"index": 3, "latency": 1.0}]))
    with pytest.raises(UserError, match=r"t.json row 2: no 'arch' value"):
        import_measurements(store, space, "pixel3", tmp_path / "t.json")
    with pytest.raises(UserError, match="space 'darts' has no architecture index"):
        (tmp_path / "d.csv").write_text("index,latency\n3,1.0\n")
        import_measurements(store, get_space("darts"), "pixel3", tmp_path / "d.csv")
    with pytest.raises(UserError, match="needs a device name"):
        import_measurements(store, space, "no spaces", tmp_path / "t.json")


@pytest.mark.slow
def test_the_cli_imports_trains_and_searches_against_predicted_latency_only(tmp_path: Path, db_url: str) -> None:
    small = ["--space", "nb201", "--space-option", "cells=1", "--space-option", "channels=4",
             "--space-option", "input_size=8"]  # fmt: skip
    truth = device_table(tmp_path / "edge-gpu.csv", 60)
    (tmp_path / "edge-gpu.json").write_text(
        json.dumps([{"arch": arch, "latency": ms} for arch, ms in truth.items()])  # ms, the default unit
    )
    shown = run_main("import-measurements", str(tmp_path / "edge-gpu.json"), *small, "--device", "edge-gpu", db=db_url)
    assert shown.returncode == 0, shown.stderr
    assert "60 stored" in shown.stdout and "--target external:edge-gpu" in shown.stdout
    bad = run_main("import-measurements", str(tmp_path / "missing.csv"), *small, "--device", "x", db=db_url)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1
    predictor = tmp_path / "edge-gpu.pt"
    trained = run_main("train-predictor", *small, "-t", "external:edge-gpu", "--kinds", "lut", "--out", str(predictor),
                       db=db_url)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    measured = run_main("benchmark", *small, "-t", "external:edge-gpu", "--samples", "1", db=db_url)
    assert measured.returncode == 2 and "cannot measure" in measured.stderr
    out = tmp_path / "search"
    args = ["search", *small, "-t", "external:edge-gpu", "--predictor", str(predictor), "--epochs", "1",
            "--retrain-epochs", "1", "--batch-size", "512"]  # fmt: skip
    searched = run_main(*args, "--lambda", "1", "--out", str(out), db=db_url)
    assert searched.returncode == 0, searched.stderr
    printed = searched.stdout
    assert "not measured" in printed and "predictor's only" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["latency_source"] == "predicted" and result["measured_latency_ms"] is None
    assert result["target"] == "external:edge-gpu" and not result["followed"] and "predictor's only" in result["note"]
    assert (out / "model.onnx").is_file()
    sweep = run_main(*args, "--lambda", "0,1", "--out", str(tmp_path / "sweep"), db=db_url)
    assert sweep.returncode == 2 and "cannot measure: one lambda at a time" in sweep.stderr
