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


def _counted(progress: Progress, what: str = "") -> measure.Progress:
    """A (done, total, label) callback over `progress`."""
    return lambda done, total, label: progress(done / max(total, 1), f"{what}{done}/{total} {label}")


@_executes(BenchmarkSpec)
def _benchmark(spec: BenchmarkSpec, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    runner, space = spec.runner(), spec.the_space()
    archs = [space.parse(text) for text in spec.archs]
    archs += space.sample_many(spec.sample_count(), spec.seed)
    protocol = spec.protocol()
    results = measure.measure_archs(runner, space, archs, protocol, store, spec.fresh, _counted(progress, "measured "))
    return measure.report(runner, protocol, results)


@_executes(CollectSpec)
def _collect(spec: CollectSpec, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    runner, space = spec.runner(), spec.the_space()
    strategy = measure.STRATEGIES[spec.strategy]
    report = strategy(runner, space, spec.samples, spec.seed, spec.protocol(), store, _counted(progress, "measured "))
    return {"space": space.name, "target": runner.name, "strategy": spec.strategy, **report.to_dict()}


@_executes(TrainPredictorSpec)
def _train_predictor(spec: TrainPredictorSpec, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    from ehdnas.pipeline.key import MeasurementKey
    from ehdnas.pipeline.predictors import train_and_save

    runner, space = spec.runner(), spec.the_space()
    report, data, path = train_and_save(
        store,
        space,
        MeasurementKey.of(runner, space),
        None,
        list(spec.kinds),
        spec.seed,
        _counted(progress, "trained "),
    )
    shutil.copyfile(path, folder / "predictor.pt")  # the artifact; the original is where searches look
    return {"metrics": report.metrics, "best": report.best, "split": report.sizes, "measurements": len(data),
            "predictor": str(path)}  # fmt: skip


@_executes(SearchSpec)
def _search(spec: Any, folder: Path, store: Store, progress: Progress, event: Event) -> Any:
    from ehdnas.pipeline.predictors import ensure_predictor

    resolved = spec.resolve()
    method, settings, choice = resolved.method, resolved.settings, resolved.predictor
    predictor = None
    if choice is not None:
        auto = choice.auto_samples if choice.auto_predictor else None
        collecting = _counted(lambda _, message: progress(0.0, message), "predictor: measured ")
        predictor = ensure_predictor(
            resolved.runner, resolved.space, spec.predictor_path(), auto, settings.seed, store, collecting
        )
    track = SearchProgress(*method.stages(settings))

    def on_event(record: dict[str, Any]) -> None:
        progress(*track(record))
        event({k: v for k, v in record.items() if k != "alpha"})  # alpha is in the checkpoint and the plot

    return method.run(settings, predictor, store, folder, on_event)


class SearchProgress:
    """The fraction of a search (or sweep) done, from the events it emits.

    `stages` counts the units (epochs, generations) of each stage, in the order they run; an event of a stage
    says how many of its units are done. A flownas search resumes after a saved stage, a darts one at an epoch.
    """

    COUNTS = (("epoch", "epochs"), ("generation", "generations"))  # units done, units in the stage
    RESUMED = {"teacher": "flow-train", "supernet": "supernet"}  # flownas: a saved stage, reused

    def __init__(self, stages: dict[str, int], runs: int = 1) -> None:
        self.runs, self.run, self.done = runs, 0, 0
        self.start = dict(zip(stages, itertools.accumulate(stages.values(), initial=0)))  # units before a stage
        self.end = {stage: self.start[stage] + units for stage, units in stages.items()}
        self.units = max(sum(stages.values()), 1)

    def __call__(self, event: dict[str, Any]) -> tuple[float, str]:
        stage, message = event["stage"], event["stage"]
        count = next(((event[done], event.get(total, "?")) for done, total in self.COUNTS if done in event), None)
        if count is not None:
            message = f"{stage} {count[0]}/{count[1]}"
        if stage == "sweep":
            self.run, self.done = event["index"] - 1, 0
        elif stage in self.start and count is not None:
            self.done = self.start[stage] + count[0]
        elif stage == "resume":
            self.done = self.end[self.RESUMED[event["what"]]] if "what" in event else event["epoch"]
            message += f" after the {event['what']}" if "what" in event else ""
        elif stage == "done":
            self.done = self.units
        if self.runs > 1:
            message = f"run {self.run + 1}/{self.runs}: {message}"
        return (self.run + self.done / self.units) / self.runs, message
