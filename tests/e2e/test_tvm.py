"""End to end (slow), beside tests/backends/test_tvm.py: target `tvm-llvm`: real TVM builds, checked against ONNX
Runtime, cached, tuned, and used end to end.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from backends import get_target, load_model
from backends.tvm_llvm import MS_LOGGER
from tests.backends.test_tvm import QUICK, UNTUNED, random_conv_net
from tests.conftest import LIGHT_MODELS, search_end_to_end, stored_predictor, tiny_conv_model


def _build(path: Path) -> float:
    compiled = get_target("tvm-llvm", UNTUNED).compile(load_model(path))
    assert compiled.input_names
    return compiled.info["compile_s"]


@pytest.mark.slow
def test_tvm_builds_every_classic_opset9_classifier() -> None:
    """Two builds at a time, one per core (TVM's build is single-threaded: 250 s one after another here)."""
    paths = sorted(LIGHT_MODELS.glob("*.onnx"))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        builds = {path.stem: pool.submit(_build, path) for path in paths}
        failed = {name: repr(build.exception()) for name, build in builds.items() if build.exception() is not None}
    assert not failed, failed
    assert len(builds) == 9 and all(build.result() > 0 for build in builds.values())


@pytest.mark.slow
def test_tuning_spends_the_models_budget_once_per_kernel_and_says_how_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[dict] = []
    runner = get_target("tvm-llvm", ["trials=4"])  # tuned is the default
    runner.on_event = ticks.append
    # A handler MetaSchedule did not make on its logger (an application's; pytest's own log capture puts one there
    # after a first tuning): its reconfiguration of that logger failed on it.
    monkeypatch.setattr(logging.getLogger(MS_LOGGER), "handlers", [logging.NullHandler()])
    first = runner.measure(tiny_conv_model(tmp_path / "a.onnx"), QUICK)
    kernels = first.details["kernels"]
    assert kernels >= 1 and first.details["kernels_tuned_now"] == kernels
    assert first.details["kernels_from_database"] == 0
    assert first.details["trials"] == 4 and 1 <= first.details["trials_spent"] <= 4
    # The expected time comes before any trial, then the trials are counted up to those spent.
    assert ticks[0]["done"] == 0 and ticks[0]["total"] == 4 and f"tuning {kernels} kernels" in ticks[0]["message"]
    assert first.details["expected_tune_s"] > 0 and "left" in ticks[0]["message"]
    assert ticks[-1]["done"] == first.details["trials_spent"]
    records = Path(first.details["tuning_dir"]) / "database_tuning_record.json"
    assert records.read_text().count("\n") >= 1
    # The same kernels in another file (other batch of weights, same shapes): nothing new to tune, no trials.
    ticks.clear()
    second = runner.measure(tiny_conv_model(tmp_path / "b.onnx", opset=14), QUICK)
    assert second.details["kernels_tuned_now"] == 0 and second.details["kernels_from_database"] == kernels
    assert second.details["trials_spent"] == 0 and second.details["from_cache"] is False and not ticks


@pytest.mark.slow
def test_a_sampled_build_agrees_with_onnx_runtime(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = load_model(random_conv_net(tmp_path / "net.onnx"))
    feeds = model.fixed_inputs()
    expected = ort.InferenceSession(str(model.path)).run(None, feeds)[0]
    compiled = get_target("tvm-llvm", ["mode=sampled", "seed=3"]).compile(model)
    assert compiled.info["kernels_sampled"] == compiled.info["kernels"] >= 3  # two convolutions, pools, the dense
    np.testing.assert_allclose(compiled.run(feeds)[0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_search_on_tvm_end_to_end(tmp_path: Path, db_url: str) -> None:
    # The search's end on TVM: the searched network built, measured and reported. Its predictor comes from latencies
    # stored as if measured (collecting would build 50 networks, about 12 s each here), and it does not follow
    # (following is checked on the cheaper targets; here it would build a dozen more).
    target = ["-t", "tvm-llvm", "-o", "mode=untuned"]  # the search's end, not tuning (tested above)
    predictor = stored_predictor(target, db_url, tmp_path / "predictor.pt")
    extra = ["--no-follow", "--predictor", str(predictor), *target[2:]]
    result = search_end_to_end("tvm-llvm", tmp_path / "run", db_url, *extra)
    assert not result["followed"] and result["measured_latency_ms"]["n"] >= 1
