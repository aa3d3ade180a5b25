"""The up-front checks both faces make: every bad input refused before any work, by the field's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import get_target
from ehdnas.core.errors import UserError
from ehdnas.core.limits import Limits
from ehdnas.methods.requests import check_measure, check_search, check_train
from ehdnas.methods.resolve import SettingErrors
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.predictors import train_and_save
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from tests.pipeline.test_predictors import TINY, store_latencies

PROTOCOL = {"repeats": 3, "min_time": 0.0, "warmup": 1, "max_spread": 0.1, "clock": "wall"}


def problems(check, *args, **kwargs) -> dict:  # noqa: ANN001
    with pytest.raises(SettingErrors) as caught:
        check(*args, **kwargs)
    return {error.field: error.message for error in caught.value.problems}


def test_a_measurement_request_names_every_problem_at_once() -> None:
    found = problems(
        check_measure, "systolic-edge32", {"accelerator": {"rows": 100_000}}, "darts", {"channels": 5000},
        {**PROTOCOL, "min_time": float("nan")}, Limits(), archs=["x"], samples=10**9, seed=-1, strategy="best",
    )  # fmt: skip
    assert set(found) == {("options", "rows"), ("space_options", "channels"), ("samples",), ("seed",),
                          ("strategy",), ("archs", 0), ("min_time",)}  # fmt: skip
    assert found[("options", "rows")].startswith("100,000 is over the limit of 4,096 (limit 'array'")
    assert found[("min_time",)] == "nan is not a finite number"


def test_limits_are_raised_by_the_environment_on_both_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHDNAS_LIMITS__SAMPLES", "50000")
    limits = Limits.from_env()
    assert limits.samples == 50_000 and limits.epochs == Limits().epochs
    check_measure("systolic-edge32", {}, "darts", TINY, PROTOCOL, limits, samples=40_000)
    from server.settings import Settings

    assert Settings.load().limits.samples == 50_000  # the server reads the same variable
    monkeypatch.setenv("EHDNAS_LIMITS__SAMPLES", "-1")
    with pytest.raises(UserError, match="limit samples must be positive"):
        Limits.from_env()


def test_a_search_is_refused_before_it_measures_or_trains() -> None:
    found = problems(check_search, "ort-cpu", {}, None, TINY, None,
                     {"lambdas": [0, float("nan")], "auto_predictor": True}, Limits())  # fmt: skip
    assert found == {("lambdas",): "nan is not a finite number"}
    hinge = problems(check_search, "ort-cpu", {}, None, TINY, None, {"loss_form": "hinge", "auto_predictor": True},
                     Limits())  # fmt: skip
    assert hinge == {("target_ms",): "the hinge form needs a latency budget in ms, above 0"}
    budget = problems(check_search, "ort-cpu", {}, None, TINY, None, {"target_ms": 1.0, "auto_predictor": True},
                      Limits())  # fmt: skip
    assert budget[("target_ms",)] == "a latency budget applies to loss_form hinge only, not to eh-dnas"
    over = problems(check_search, "ort-cpu", {"threads": 1000}, None, TINY, None,
                    {"epochs": 1000, "lambdas": list(range(9)), "auto_predictor": True}, Limits())  # fmt: skip
    assert set(over) == {("options", "threads"), ("epochs",), ("lambdas",)}
    assert check_search("ort-cpu", {}, None, TINY, None, {"auto_predictor": True}, Limits()).space.name == "darts"


def test_a_predictor_made_for_another_target_is_refused(db_url: str, tmp_path: Path) -> None:
    runner, space, store = get_target("systolic-edge32"), get_space("darts", TINY), Store(db_url)
    store_latencies(store, runner, space, space.sample_many(60, 0))
    path = tmp_path / "edge32.pt"
    train_and_save(store, space, MeasurementKey.of(runner, space), path, ["lut"], 0)
    assert check_search("systolic-edge32", {}, None, TINY, None, {"predictor": str(path)}, Limits()).predictor
    other = problems(check_search, "systolic-eyeriss", {}, None, TINY, None, {"predictor": str(path)}, Limits())
    assert other == {("predictor",): f"{path}: this predictor was trained for target 'systolic-edge32', not "
                                     "'systolic-eyeriss'"}  # fmt: skip
    wider = problems(check_search, "systolic-edge32", {"engine": "scalesim"}, None, TINY, None,
                     {"predictor": str(path)}, Limits())  # fmt: skip
    assert "this predictor was trained for systolic-edge32 with settings" in wider[("predictor",)]
    missing = problems(check_search, "systolic-edge32", {}, None, TINY, None, {"predictor": "no.pt"}, Limits())
    assert missing == {("predictor",): "no.pt: no such predictor file"}


def test_a_training_request_names_unknown_kinds() -> None:
    found = problems(check_train, "systolic-edge32", {}, "darts", TINY, ["mlp", "forest"], 2**40, Limits())
    assert set(found) == {("kinds", 1), ("seed",)}
