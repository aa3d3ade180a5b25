"""End to end (slow), beside tests/backends/test_tvm.py: target `tvm-llvm`: real TVM builds, checked against ONNX
Runtime, cached, tuned, and used end to end.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from backends import get_target, load_model
from tests.backends.test_tvm import QUICK  # noqa: F401
from tests.conftest import LIGHT_MODELS, search_end_to_end, stored_predictor, tiny_conv_model


def _build(path: Path) -> float:
    compiled = get_target("tvm-llvm").compile(load_model(path))
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
def test_tuning_tunes_each_kernel_once(tmp_path: Path) -> None:
    runner = get_target("tvm-llvm", ["mode=tuned", "trials=4"])
    first = runner.measure(tiny_conv_model(tmp_path / "a.onnx"), QUICK)
    assert first.details["kernels"] >= 1 and first.details["kernels_tuned_now"] == first.details["kernels"]
    records = Path(first.details["tuning_dir"]) / "database_tuning_record.json"
    assert records.read_text().count("\n") >= 1
    # The same kernels in another file (other batch of weights, same shapes): nothing new to tune.
    other = tiny_conv_model(tmp_path / "b.onnx", opset=14)
    second = runner.measure(other, QUICK)
    assert second.details["kernels_tuned_now"] == 0 and second.details["from_cache"] is False


@pytest.mark.slow
def test_search_on_tvm_end_to_end(tmp_path: Path, db_url: str) -> None:
    # The search's end on TVM: the searched network built, measured and reported. Its predictor comes from latencies
    # stored as if measured (collecting would build 50 networks, about 12 s each here), and it does not follow
    # (following is checked on the cheaper targets; here it would build a dozen more).
    predictor = stored_predictor(["-t", "tvm-llvm"], db_url, tmp_path / "predictor.pt")
    result = search_end_to_end("tvm-llvm", tmp_path / "run", db_url, "--no-follow", "--predictor", str(predictor))
    assert not result["followed"] and result["measured_latency_ms"]["n"] >= 1
