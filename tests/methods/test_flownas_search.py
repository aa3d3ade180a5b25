"""`search --space flownas`: teacher, supernet, evolution under a measured latency budget, the chosen encoder."""

from __future__ import annotations

import pytest

from ehdnas.core.errors import UserError
from ehdnas.methods.flownas import FlowSearchSettings
from ehdnas.methods.resolve import resolve

OPTIONS = ["--space-option", "input_height=32", "--space-option", "input_width=32"]
EVOLUTION = ["population=4", "generations=2", "parents=2", "mutations=2", "crossovers=2"]


def test_settings_are_checked_with_one_line_errors() -> None:
    asked = {"latency_budget_ms": 1.0, "latency_from": "measured", "epochs": 1, "teacher_epochs": 1, "batch_size": 4,
             "pairs": [8, 4, 4]}  # fmt: skip
    settings = resolve(
        "systolic-edge32", {}, None, {}, "flownas", {**asked, "evolution": {"population": "12"}}
    ).settings
    assert settings.data == "photos" and settings.evolution["population"] == 12 and settings.evolution["parents"] == 10
    assert settings.evolution_settings().generations == 20  # FlowNAS's defaults fill what is not set
    for bad, message in (
        ({"latency_budget_ms": 0.0}, "latency_budget_ms: must be greater than 0"),
        ({"latency_budget_ms": 1.0, "latency": "guessed"}, "'guessed' is not one of predictor, measured"),
        ({"latency_budget_ms": 1.0, "pairs": [8, 4]}, "pairs: three counts"),
        ({"latency_budget_ms": 1.0, "evolution": {"parents": 99}}, "parents cannot outnumber"),
    ):
        with pytest.raises(UserError, match=message):
            FlowSearchSettings(**bad).check()
    with pytest.raises(UserError, match="unknown evolution option 'generation'"):
        resolve("systolic-edge32", {}, None, {}, "flownas", {**asked, "evolution": {"generation": 3}})
