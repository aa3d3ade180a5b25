"""One job's work: the library calls the CLI's commands make, writing into the job's folder.

Runs in the job's own process (see `server.worker`). `progress(fraction,
message)` and `event(record)` are how it reports; what it returns is the job's
result, also written to `result.json` in the folder.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ehdnas.core.events import is_tick
from ehdnas.pipeline import measure
from ehdnas.pipeline.store import Store
from server.specs import SPECS, BenchmarkSpec, CollectSpec, SearchSpec, TrainPredictorSpec

Progress = Callable[[float, str], None]  # fraction done, what is happening
Event = Callable[[dict[str, Any]], None]


def run_job(kind: str, spec: dict[str, Any], folder: Path, db_url: str, progress: Progress, event: Event) -> Any:
    """Run a job of `kind` whose spec passed submission; its result document."""
    parsed = SPECS[kind].model_validate(spec)
    result = _EXECUTORS[type(parsed)](parsed, folder, Store(db_url), progress, event)
    (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


_EXECUTORS: dict[type, Callable[..., Any]] = {}  # spec class -> what runs a job of that kind


def _executes(spec: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the executor of jobs whose spec is `spec`."""

    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        _EXECUTORS[spec] = run
        return run

    return register


def _measuring(runner: Any, progress: Progress) -> measure.Progress:
    """A (done, total, label) callback over `progress`; a runner that reports on its own long work (tvm-llvm's
    tuning: its expected time, then how far it is) sets the job's message meanwhile, at the fraction measured."""
    measured = [0.0]

    def counted(done: int, total: int, label: str) -> None:
        measured[0] = done / max(total, 1)
        progress(measured[0], f"measured {done}/{total} {label}")

    if hasattr(runner, "on_event"):
        runner.on_event = lambda record: progress(measured[0], record["message"])
    return counted


@_executes(BenchmarkSpec)
def _benchmark(spec: BenchmarkSpec, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    runner, space = spec.runner(), spec.the_space()
    archs = [space.parse(text) for text in spec.archs]
    archs += space.sample_many(spec.sample_count(), spec.seed)
    protocol = spec.protocol()
    results = measure.measure_archs(runner, space, archs, protocol, store, spec.fresh, _measuring(runner, progress))
    return measure.report(runner, protocol, results)


@_executes(CollectSpec)
def _collect(spec: CollectSpec, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    runner, space = spec.runner(), spec.the_space()
    strategy = measure.STRATEGIES[spec.strategy]
    report = strategy(runner, space, spec.samples, spec.seed, spec.protocol(), store, _measuring(runner, progress))
    return {"space": space.name, "target": runner.name, "strategy": spec.strategy, **report.to_dict()}


@_executes(TrainPredictorSpec)
def _train_predictor(spec: TrainPredictorSpec, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    from ehdnas.pipeline.key import MeasurementKey
    from ehdnas.pipeline.predictors import train_and_save

    runner, space = spec.runner(), spec.the_space()

    def trained(record: dict[str, Any]) -> None:  # ticks, in kinds
        progress(record["done"] / max(record["total"], 1), record["message"])

    report, data, path = train_and_save(
        store, space, MeasurementKey.of(runner, space), None, list(spec.kinds), spec.seed, trained
    )
    shutil.copyfile(path, folder / "predictor.pt")  # the artifact; the original is where searches look
    return {"metrics": report.metrics, "best": report.best, "split": report.sizes, "measurements": len(data),
            "predictor": str(path)}  # fmt: skip


@_executes(SearchSpec)
def _search(spec: Any, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    from ehdnas.pipeline.predictors import ensure_predictor

    resolved = spec.resolve()
    method, settings, choice = resolved.method, resolved.settings, resolved.predictor
    track = SearchProgress(*method.stages(settings))

    def on_event(record: dict[str, Any]) -> None:
        progress(*track(record))
        if not is_tick(record):  # a tick moves the job's progress and message, and no more
            event({k: v for k, v in record.items() if k != "alpha"})  # alpha is in the checkpoint and the plot

    predictor = None
    if choice is not None:
        auto = choice.auto_samples if choice.auto_predictor else None
        predictor = ensure_predictor(
            resolved.runner, resolved.space, spec.predictor_path(), auto, settings.seed, store, on_event
        )
    return method.run(settings, predictor, store, folder, on_event)


class SearchProgress:
    """The fraction of a search (or sweep) done, and what it is doing, from the events it emits.

    `stages` counts the units (epochs, generations) of each stage, in the order they run; an event of a stage
    says how many of its units are done, a tick (`ehdnas.core.events.tick`) how much of the stage so far
    (`done` of its `total`) and what to show. A flownas search resumes after a saved stage, a darts one at an epoch.
    A search that first makes its predictor (stages `MAKING`) gives that the first `MAKING_SHARE` of the job.
    """

    COUNTS = (("epoch", "epochs"), ("generation", "generations"))  # units done, units in the stage
    RESUMED = {"teacher": "flow-train", "supernet": "supernet"}  # flownas: a saved stage, reused
    MAKING_SHARE = 0.2  # of a job that measures and trains its predictor before it searches
    MAKING = {"predictor-measure": (0.0, 0.8), "predictor-train": (0.8, 1.0), "predictor": (1.0, 1.0)}  # of that

    def __init__(self, stages: dict[str, int], runs: int = 1) -> None:
        self.runs, self.run, self.done = runs, 0, 0.0
        self.start = dict(zip(stages, itertools.accumulate(stages.values(), initial=0)))  # units before a stage
        self.end = {stage: self.start[stage] + units for stage, units in stages.items()}
        self.units = max(sum(stages.values()), 1)
        self.making: float | None = None  # how much of the predictor's making is done, once it started

    def __call__(self, event: dict[str, Any]) -> tuple[float, str]:
        stage, message = event["stage"], event["stage"]
        if stage in self.MAKING:
            low, high = self.MAKING[stage]
            part = event["done"] / max(event["total"], 1) if is_tick(event) else 1.0
            self.making = low + (high - low) * min(max(part, 0.0), 1.0)
            if is_tick(event):
                return self.MAKING_SHARE * self.making, event["message"]
            return self.MAKING_SHARE, (
                f"predictor: {event['kind']} from {event['measurements']} measurements, "
                f"test MAPE {event['test_mape']:.1f}%"
            )
        if is_tick(event):
            message = event["message"]
            if stage in self.start:  # the share of the stage done, in case its total is not the stage's units
                units = self.end[stage] - self.start[stage]
                self.done = self.start[stage] + units * min(max(event["done"] / max(event["total"], 1e-9), 0.0), 1.0)
        else:
            message = self._finished(event)
        if self.runs > 1:
            message = f"run {self.run + 1}/{self.runs}: {message}"
        searched = (self.run + self.done / self.units) / self.runs
        lead = 0.0 if self.making is None else self.MAKING_SHARE
        return lead + (1 - lead) * searched, message

    def _finished(self, event: dict[str, Any]) -> str:
        """The message of an ordinary event; sets how much is done."""
        stage, message = event["stage"], event["stage"]
        count = next(((event[done], event.get(total, "?")) for done, total in self.COUNTS if done in event), None)
        if count is not None:
            message = f"{stage} {count[0]}/{count[1]}"
        if stage == "sweep":
            self.run, self.done = event["index"] - 1, 0.0
        elif stage in self.start and count is not None:
            self.done = self.start[stage] + count[0]
        elif stage == "resume":
            self.done = self.end[self.RESUMED[event["what"]]] if "what" in event else event["epoch"]
            message += f" after the {event['what']}" if "what" in event else ""
        elif stage == "done":
            self.done = self.units
        return message
