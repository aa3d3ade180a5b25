"""A search's latency predictor from the store: train one on a key's measurements, or find (or make) the one a
search uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, is_tick, no_events, tick
from ehdnas.core.writable import writable_file
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace
from perf_models.dataset import Dataset
from perf_models.kinds import kind_names
from perf_models.predictor import Predictor
from perf_models.train import TrainReport, train_predictors


def train_and_save(
    store: Store,
    space: SearchSpace,
    key: MeasurementKey,
    out: Path | None = None,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    on_event: Events = no_events,
) -> tuple[TrainReport, Dataset, Path]:
    """Train on the stored measurements of `key`; save the best differentiable kind.

    Without `out`, the file goes where `search` looks for it (`key.predictor_path()`). Ticks `on_event`
    (stage "predictor-train", in kinds: one per epoch of a kind trained in epochs, one per kind trained).
    """
    out = writable_file(out or key.predictor_path(), "the predictor file")  # said before the training, not after
    data = load_dataset(store, space, key)
    names = list(kinds or kind_names())

    def trained(done: int, total: int, kind: str) -> None:
        on_event(tick("predictor-train", done, total, f"trained {kind} ({done}/{total} kinds)"))

    def epoch(kind: str, done: int, epochs: int) -> None:
        at = names.index(kind) + done / epochs
        on_event(tick("predictor-train", at, len(names), f"training {kind} (epoch {done}/{epochs})"))

    report = train_predictors(data, names, seed, trained, epoch)
    report.predictor.save(out, report.meta(data))
    return report, data, out


class NoPredictor(UserError):
    """No predictor file where the search looks, and no permission to make one."""

    def __init__(self, space: str, target: str, path: Path) -> None:
        self.path = path
        super().__init__(f"no latency predictor for {space} on {target} at {path}")


def ensure_predictor(
    runner: Any,
    space: Any,
    path: Path | None,
    auto_samples: int | None,
    seed: int,
    store: Store,
    on_event: Events = no_events,
) -> Predictor:
    """The predictor at `path` (default: where train-predictor saves for this key).

    Missing, and with `auto_samples`: measure that many sampled networks into
    `store` and train one (mlp and lut) first; without it, `NoPredictor`. Making
    it ticks `on_event` (stages "predictor-measure", then "predictor-train": a
    tick per network measured, per epoch, per kind) and ends with one
    "predictor" event: what was saved, where, how accurate on the test split.
    """
    from backends import TimingProtocol
    from ehdnas.pipeline import measure

    key = MeasurementKey.of(runner, space)
    path = path or key.predictor_path()
    if not path.is_file():
        if not auto_samples:
            raise NoPredictor(space.name, runner.name, path)
        writable_file(path, "the predictor file")  # said before measuring and training, not after

        def measured(done: int, total: int, label: str) -> None:
            on_event(tick("predictor-measure", done, total, f"predictor: measured {done}/{total} {label}"))

        def training(record: dict[str, Any]) -> None:
            on_event({**record, "message": f"predictor: {record['message']}"} if is_tick(record) else record)

        measure.collect(runner, space, auto_samples, seed, TimingProtocol(), store, measured)
        kinds = ["mlp", "lut"]
        training(tick("predictor-train", 0, len(kinds), f"training {' and '.join(kinds)}"))
        report, data, _ = train_and_save(store, space, key, path, kinds, seed, training)
        metrics = report.metrics[report.best]
        on_event({"stage": "predictor", "kind": report.best, "measurements": len(data), "path": str(path),
                  "test_mape": metrics["mape"], "fit_s": metrics["fit_s"]})  # fmt: skip
    return _load_for(path, runner, space)


def _load_for(path: Path, runner: Any, space: Any) -> Predictor:
    """The predictor at `path`, refused if it was trained for another space or target (or their settings)."""
    from perf_models import load_predictor

    return load_predictor(path, space.name, space.config_dict(), target=runner.name, target_config=runner.config_dict())


def predictor_problem(path: Path, runner: Any, space: Any) -> str | None:
    """Why the predictor file at `path` cannot serve a search of `space` on `runner`, or None: a search checks
    this at its start, not after measuring and training for an hour."""
    try:
        _load_for(path, runner, space)
    except UserError as err:
        return str(err)
    return None
