"""End to end (slow), beside tests/methods/test_search.py: the supernet against the derived network, and the search end
to end on the embedded digits.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import pytest

from backends import get_target
from ehdnas.core.errors import UserError
from ehdnas.core.events import is_tick
from ehdnas.methods.darts import SearchSettings, run_search
from ehdnas.methods.resolve import SettingErrors, resolve
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from tests.methods.test_search import TINY, tiny_predictor  # noqa: F401


@pytest.mark.slow
def test_search_end_to_end_and_resume(tmp_path: Path) -> None:
    space = get_space("darts", TINY)
    predictor = tiny_predictor(space)
    settings = SearchSettings(  # one neighbour per followed network: the mechanism, at half the measurements
        space_options=space.config_dict(),
        epochs=2,
        retrain_epochs=1,
        batch_size=128,
        lambdas=[1.0],
        follow_neighbours=1,
    )
    events: list[dict] = []
    store = Store(f"sqlite:///{tmp_path}/store.db")

    def stop_after_first_epoch(event: dict) -> None:
        events.append(event)
        if event["stage"] == "search" and event.get("epoch") == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(settings, predictor, store, tmp_path, stop_after_first_epoch)
    result = run_search(settings, predictor, store, tmp_path, events.append)
    assert {"stage": "resume", "epoch": 1} in events
    assert [e["epoch"] for e in events if e["stage"] == "search" and not is_tick(e)] == [1, 2]
    for name in ("genotype.txt", "genotype.json", "weights.pt", "model.onnx", "result.json", "search.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["genotype"] == result["genotype"] == (tmp_path / "genotype.txt").read_text().strip()
    assert space.parse(result["genotype"]) == space.from_dict(json.loads((tmp_path / "genotype.json").read_text()))
    assert 0.0 <= saved["test_accuracy"] <= 1.0 and saved["measured_latency_ms"]["median"] > 0
    assert saved["predicted_latency_ms"] > 0 and 0 < saved["cost"]["predictor_share"] < 1
    # The predictor followed the search: each epoch's derived network was measured, the predictor corrected there.
    searched = [e for e in events if e["stage"] == "search" and not is_tick(e)]
    assert saved["followed"] and all(e["follow_measured_ms"] > 0 for e in searched)
    assert saved["predicted_latency_ms"] == searched[-1]["predicted_ms_derived"]
    assert len(store.stored_archs(MeasurementKey.of(get_target("ort-cpu"), space))) >= 2
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 8, 8]
    assert run_search(settings, predictor, store, tmp_path, events.append) == saved  # finished: reused, not rerun
    assert events[-1]["stage"] == "done" and "reused" in events[-1]
    other = SearchSettings(space_options=space.config_dict(), epochs=3, retrain_epochs=1, batch_size=128)
    with pytest.raises(UserError, match="holds a search with other settings"):
        run_search(other, predictor, store, tmp_path, events.append)


@pytest.mark.slow
def test_sweep_adds_the_darts_baseline_and_plots_the_pareto_view(tmp_path: Path) -> None:
    from ehdnas.methods.darts import run_sweep

    space = get_space("darts", TINY)
    settings = SearchSettings(  # following is checked above
        space_options=space.config_dict(), epochs=1, retrain_epochs=1, batch_size=256, follow=False
    )
    store = Store(f"sqlite:///{tmp_path}/store.db")
    sweep = run_sweep(settings, [2.0], tiny_predictor(space), store, tmp_path / "sweep", lambda event: None)
    assert [row["lambda"] for row in sweep["runs"]] == [0.0, 2.0]
    assert sweep["runs"][0]["speedup_vs_lambda0"] == 1.0 and sweep["runs"][1]["speedup_vs_lambda0"] > 0
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == sweep
    assert (tmp_path / "sweep" / "pareto.png").stat().st_size > 10_000
    assert (tmp_path / "sweep" / "lambda-0" / "result.json").is_file()
    assert (tmp_path / "sweep" / "lambda-2" / "model.onnx").is_file()


@pytest.mark.slow
def test_eh_dnas_searches_the_nb201_space_and_measures_its_result(tmp_path: Path) -> None:
    options = {"cells": 1, "channels": 4, "input_size": 8}
    values = {"lambdas": [1.0], "epochs": 1, "retrain_epochs": 1, "batch_size": 256, "follow_neighbours": 1}
    resolved = resolve("systolic-edge32", {}, "nb201", options, "eh-dnas", values)
    assert resolved.settings.space == "nb201" and resolved.document()["settings"]["space"] == "nb201"
    predictor = tiny_predictor(resolved.space, slow_op="nor_conv_3x3")
    store = Store(f"sqlite:///{tmp_path}/store.db")
    result = resolved.method.run(resolved.settings, predictor, store, tmp_path, lambda event: None)
    cell = resolved.space.parse(result["genotype"])
    assert result["genotype"] == cell.to_text() and result["genotype"].startswith("|")
    assert result["measured_latency_ms"]["median"] > 0 and result["followed"]
    assert len(store.stored_archs(MeasurementKey.of(resolved.runner, resolved.space))) >= 2
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 8, 8]
    with pytest.raises(SettingErrors, match="darts searches only, not to nb201"):
        resolve("systolic-edge32", {}, "nb201", options, "dcp-nas", {})
