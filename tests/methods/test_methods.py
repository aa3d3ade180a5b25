"""The method registry's contract, and the two faces (CLI, HTTP) resolving the same search the same way."""

from __future__ import annotations

import json

import pytest

from ehdnas.core.settings import options
from ehdnas.methods.registry import get_method, method_names
from ehdnas.methods.resolve import SettingErrors, resolve

SMALL = {
    "darts": {"layers": 3, "channels": 4, "input_size": 8},
    "flownas": {"input_height": 32, "input_width": 32},
    "nb201": {"cells": 1, "channels": 4, "input_size": 8},
}
REQUIRED = {"flownas": {"latency_budget_ms": 1.0}}  # options without a default


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each method's options without a default; a tabular search's table is one made here (nb201, one row)."""
    table = tmp_path_factory.mktemp("table") / "accuracy.csv"
    table.write_text("arch,accuracy\n0,0.5\n")
    tabular = {"accuracy_table": str(table), "latency_budget_ms": 1.0}
    return {**REQUIRED, "evolution": tabular, "random": tabular}


def test_five_methods_are_registered() -> None:
    assert method_names() == ["dcp-nas", "eh-dnas", "evolution", "flownas", "random"]


@pytest.mark.parametrize("name", method_names())
def test_every_method_accepts_its_defaults_on_its_smallest_space(name: str, required: dict[str, dict]) -> None:
    method = get_method(name)
    space = method.spaces[0]
    resolved = resolve("systolic-edge32", {}, space, SMALL[space], name, required.get(name, {}))
    assert resolved.method.name == name and resolved.space.name == space
    for option in options(method.settings):  # unset options take the settings class's own default
        if option.name not in required.get(name, {}):
            assert getattr(resolved.settings, option.field) == getattr(method.settings(), option.field)


@pytest.mark.parametrize("name", method_names())
def test_every_method_refuses_the_options_of_the_others(name: str, required: dict[str, dict]) -> None:
    method = get_method(name)
    own = {o.name for o in options(method.settings)}
    foreign = {o.name for other in method_names() for o in options(get_method(other).settings)} - own
    assert foreign, "every method has options the others lack"
    space = method.spaces[0]
    for option in sorted(foreign):
        with pytest.raises(SettingErrors) as refused:
            resolve("systolic-edge32", {}, space, SMALL[space], name, {**required.get(name, {}), option: 1})
        assert [p.field for p in refused.value.problems] == [(option,)], option
        assert "searches only" in refused.value.problems[0].message


@pytest.mark.parametrize("name", method_names())
def test_every_method_round_trips_its_settings_through_json(name: str, required: dict[str, dict]) -> None:
    method = get_method(name)
    space = method.spaces[0]
    settings = resolve("systolic-edge32", {}, space, SMALL[space], name, required.get(name, {})).settings
    assert method.settings(**json.loads(json.dumps(settings.to_dict()))) == settings


def test_bounds_are_enforced_with_the_option_named() -> None:
    with pytest.raises(SettingErrors, match="arch_lr: must be at least 0"):
        resolve("systolic-edge32", {}, "darts", SMALL["darts"], "eh-dnas", {"arch_lr": -1})
    with pytest.raises(SettingErrors, match="gumbel_tau: must be at least 0"):
        resolve("systolic-edge32", {}, "darts", SMALL["darts"], "eh-dnas", {"gumbel_tau": -1})


def test_flownas_recipe_is_the_measured_one_and_space_flownas_alone_is_deprecated() -> None:
    resolved = resolve("systolic-edge32", {}, "flownas", SMALL["flownas"], None, REQUIRED["flownas"])
    assert resolved.method.name == "flownas" and resolved.settings.batch_size == 8
    assert resolved.notes and "deprecated" in resolved.notes[0]


# Specs covering every method; each is given to the CLI as flags and to the server as a spec.
SPECS = [
    {"method": "eh-dnas", "space_options": SMALL["darts"], "lambdas": [0.0, 0.5], "epochs": 3, "auto_predictor": True},
    {"method": "dcp-nas", "space_options": SMALL["darts"], "dcp_lambda": 0.01, "auto_predictor": True,
     "follow": False, "skip_cap": 8},
    {"method": "flownas", "space_options": SMALL["flownas"], "latency_budget_ms": 2.0, "latency_from": "measured",
     "evolution": {"population": 12}, "pairs": [8, 4, 4]},
]  # fmt: skip
INVALID = [
    {"method": "flownas", "latency_budget_ms": 2.0, "latency_from": "measured", "lambdas": [3.0]},
    {"method": "eh-dnas", "arch_lr": -1, "auto_predictor": True},
    {"method": "dcp-nas", "space_options": {"binary": False}, "auto_predictor": True},
]


def _flags(spec: dict) -> list[str]:
    """The CLI flags for a spec (the same inputs)."""
    flags = ["-t", "systolic-edge32"]
    for key, value in spec.items():
        flag = {"lambdas": "--lambda", "latency_budget_ms": "--latency-budget"}.get(key, "--" + key.replace("_", "-"))
        if key == "space_options":
            flags += [item for k, v in value.items() for item in ("--space-option", f"{k}={v}".lower())]
        elif key == "evolution":
            flags += [item for k, v in value.items() for item in ("--evolution", f"{k}={v}")]
        elif isinstance(value, bool):
            flags += [flag if value else "--no-" + flag.removeprefix("--")]
        elif isinstance(value, list):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, str(value)]
    return flags
