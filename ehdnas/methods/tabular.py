"""Tabular searches: evolution and random search whose fitness is read from an accuracy table, not trained.

This is how the field benchmarks search strategies (on NAS-Bench-style
tables): a strategy's cost is its number of table queries, its quality the
accuracy of what it finds under the latency budget. Both methods search any
registered space the table covers, and hold every candidate to the budget on
the target first (`evolve`: one over it is redrawn, never queried), the
latency predicted or measured (`latency_from`). `random` is the evolution's
first generation alone: `samples` draws within the budget. The chosen
architecture is measured on the target at the end, next to what the search saw.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, throttled, tick
from ehdnas.core.settings import SettingError, check_fields, setting
from ehdnas.methods.accuracy_table import load_accuracy_table
from ehdnas.methods.evolution import (
    EVOLUTION_HELP,
    EvolutionResult,
    EvolutionSettings,
    check_evolution,
    evolution_settings,
    evolve,
    spelled_out,
)
from ehdnas.methods.latency import budget_setting, latency_function, source_setting
from ehdnas.methods.registry import register_method
from ehdnas.methods.saved import RESULT, saved_result
from ehdnas.spaces import SearchSpace, get_space

SPACES = ("nb201", "darts", "flownas")  # the default first: a space a benchmark table covers


@dataclass(frozen=True)
class TabularSettings:
    """What both tabular searches take; `space` is filled in from the space searched, like the target."""

    target: str = "ort-cpu"
    target_options: dict[str, Any] = field(default_factory=dict)
    space_options: dict[str, Any] = field(default_factory=dict)
    space: str = SPACES[0]
    accuracy_table: str | None = setting(
        None, help="Required: a .csv or .json table of architecture (text form or index) and accuracy, read as the "
        "fitness instead of training; it must cover every architecture the search draws.",
    )  # fmt: skip
    latency_budget_ms: float | None = budget_setting()
    latency: str = source_setting()
    seed: int = setting(0, ge=0, help="Seed of the draws.")
    method: str = ""  # the registered method these settings are for (stored with the result)

    def check(self) -> None:
        check_fields(self)
        if self.accuracy_table is None:
            raise SettingError("accuracy_table", f"a {self.method} search reads its fitness from an accuracy table")
        if self.latency_budget_ms is None:
            raise SettingError("latency_budget_ms", f"a {self.method} search needs a latency budget (ms) on the target")
        try:
            load_accuracy_table(self.accuracy_table, get_space(self.space, self.space_options))
        except UserError as err:
            raise SettingError("accuracy_table", str(err), "the accuracy table is unreadable or a row is bad") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TabularEvolutionSettings(TabularSettings):
    evolution: dict[str, Any] = setting({}, help=EVOLUTION_HELP)
    method: str = "evolution"

    def __post_init__(self) -> None:
        object.__setattr__(self, "evolution", spelled_out(self.evolution))

    def check(self) -> None:
        super().check()
        check_evolution(self.evolution)

    def evolution_settings(self) -> EvolutionSettings:
        return evolution_settings(self.evolution)


@dataclass(frozen=True)
class RandomSettings(TabularSettings):
    samples: int = setting(100, ge=1, help="Architectures drawn within the budget; a repeat is not queried again.")
    method: str = "random"

    def evolution_settings(self) -> EvolutionSettings:
        """Random search as evolution: one generation of `samples` draws, no offspring."""
        return EvolutionSettings(population=self.samples, generations=1, parents=1, mutations=0, crossovers=0)


Settings = TabularEvolutionSettings | RandomSettings


def run_tabular(
    settings: Settings, stage: str, predictor: Any, store: Any, out: Path, on_event: Events
) -> dict[str, Any]:
    """Search `settings.space` by the accuracy table under the budget; measure the chosen architecture on the
    target; write `out/result.json` (a finished search with the same settings and table is read back instead)."""
    from backends import TimingProtocol, get_target
    from ehdnas.pipeline.measure import measure_archs

    settings.check()
    on_event = throttled(on_event)
    space = get_space(settings.space, settings.space_options)
    runner = get_target(settings.target, settings.target_options)
    table = load_accuracy_table(settings.accuracy_table or "", space)
    finished = out / RESULT
    previous = saved_result(finished) or {}
    if previous.get("settings") == settings.to_dict() and previous.get("table") == table.provenance():
        on_event({"stage": "done", "reused": str(finished)})
        return previous
    latency = latency_function(settings.latency, space, runner, predictor, store)
    evolution = settings.evolution_settings()
    budget_ms = settings.latency_budget_ms
    assert budget_ms is not None  # check() says so otherwise

    def generation(record: dict[str, float]) -> None:
        on_event({"stage": stage, "generations": evolution.generations, **_accuracies(record)})

    def step(done: float, message: str) -> None:
        on_event(tick(stage, done, evolution.generations, message))

    started = time.perf_counter()
    found: EvolutionResult = evolve(
        space, lambda arch: -table(arch), latency, budget_ms, evolution, np.random.default_rng(settings.seed),
        generation, step,
    )  # fmt: skip
    search_s = time.perf_counter() - started
    best = found.best
    on_event(tick("finish", 0, 1, f"measuring the chosen architecture on {runner.name}"))
    (measured,) = measure_archs(runner, space, [best.arch], TimingProtocol(), store)
    measured_ms = measured.measurement.latency_ms
    result = {
        "arch": space.to_text(best.arch),
        "accuracy": -best.fitness,
        "latency_budget_ms": budget_ms,
        "constraint_latency_ms": best.latency_ms,  # as the search saw it (settings.latency)
        "measured_latency_ms": measured_ms.to_dict(),
        "meets_budget_measured": measured_ms.median <= budget_ms,
        "table": table.provenance(),
        "table_queries": table.queries,
        "evolution": {"evaluated": len(found.seen), "drawn": found.drawn, "rejected": found.rejected,
                      "rejected_share": found.rejected / found.drawn,
                      "history": [_accuracies(r) for r in found.history]},
        "cost": {"search_s": search_s},
        "target": runner.name,
        "target_config": runner.config_dict(),
        "host": measured.measurement.host,
        "space": space.name,
        "space_config": space.config_dict(),
        "settings": settings.to_dict(),
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    finished.write_text(json.dumps(result, indent=2) + "\n")
    on_event({"stage": "done", "accuracy": result["accuracy"], "measured_ms": measured_ms.median})
    return result


def _accuracies(record: dict[str, float]) -> dict[str, float]:
    """An evolution record in the table's terms: the fitness is the accuracy negated."""
    named = {"best_fitness": "best_accuracy", "mean_fitness": "mean_accuracy"}
    return {named.get(k, k): -v if k in named else v for k, v in record.items()}


class _Tabular:
    """What both tabular methods share; each names its settings and its stage."""

    spaces = SPACES
    stage: ClassVar[str]

    def space(self, name: str, space_options: dict[str, Any]) -> SearchSpace:
        return get_space(name, space_options)

    def uses_predictor(self, settings: Settings) -> bool:
        return settings.latency == "predictor"

    def stages(self, settings: Settings) -> tuple[dict[str, int], int]:
        return {self.stage: settings.evolution_settings().generations}, 1

    def run(self, settings: Settings, predictor: Any, store: Any, out: Path, on_event: Events) -> dict[str, Any]:
        return run_tabular(settings, self.stage, predictor, store, out, on_event)


@register_method
class TabularEvolution(_Tabular):
    """Evolution (FlowNAS's, without the supernet) with an accuracy table as its fitness."""

    name = "evolution"
    summary = "evolution under a latency budget on the target, its fitness read from an accuracy table"
    settings = TabularEvolutionSettings
    stage = "evolution"


@register_method
class RandomSearch(_Tabular):
    """Random search within a latency budget, each draw's accuracy read from an accuracy table."""

    name = "random"
    summary = "random search within a latency budget on the target, its accuracy read from an accuracy table"
    settings = RandomSettings
    stage = "sample"
