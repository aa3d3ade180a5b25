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


def test_the_supernet_ticks_after_every_step_between_its_epoch_records() -> None:
    from ehdnas.core.events import is_tick
    from ehdnas.methods.flownas import train_supernet
    from ehdnas.spaces import get_space
    from ehdnas.tasks.flow_data import load_flow_data
    from ehdnas.tasks.flow_model import FlowHead, FlowModel

    space = get_space("flownas", {"input_height": 32, "input_width": 32})
    data = load_flow_data("photos", 32, 32, train=4, val=2, test=2)
    teacher = FlowModel(space.build(space.largest()), FlowHead(space.config.out_dim))  # untrained will do
    settings = FlowSearchSettings(latency_budget_ms=1.0, epochs=2, batch_size=2, iterations=2, random_subnets=0)
    events: list[dict] = []
    train_supernet(settings, space, data, teacher, events.append)
    assert [(e["stage"], e.get("done", e.get("epoch"))) for e in events] == [
        ("supernet", 0.5), ("supernet", 1.0), ("supernet", 1), ("supernet", 1.5), ("supernet", 2.0), ("supernet", 2),
    ]  # fmt: skip
    assert [is_tick(e) for e in events] == [True, True, False] * 2
    assert events[3]["message"] == "supernet epoch 2/2, step 1/2" and events[3]["total"] == 2
