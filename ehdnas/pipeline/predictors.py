"""A search's latency predictor from the store: train one on a key's measurements, or find (or make) the one a
search uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError
from ehdnas.core.events import Progress, no_progress
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace
from perf_models.dataset import Dataset
from perf_models.predictor import Predictor
from perf_models.train import TrainReport, train_predictors


def train_and_save(
    store: Store,
    space: SearchSpace,
    key: MeasurementKey,
    out: Path | None = None,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    on_progress: Progress = no_progress,
) -> tuple[TrainReport, Dataset, Path]:
    """Train on the stored measurements of `key`; save the best differentiable kind.

    Without `out`, the file goes where `search` looks for it (`key.predictor_path()`).
    """
    out = out or key.predictor_path()
    data = load_dataset(store, space, key)
    report = train_predictors(data, kinds, seed, on_progress)
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
    on_progress: Progress = no_progress,
) -> Predictor:
    """The predictor at `path` (default: where train-predictor saves for this key).

    Missing, and with `auto_samples`: measure that many sampled networks into
    `store` and train one (mlp and lut) first; without it, `NoPredictor`.
    """
    from backends import TimingProtocol
    from ehdnas.pipeline import measure
    from perf_models import load_predictor

    key = MeasurementKey.of(runner, space)
    path = path or key.predictor_path()
    if not path.is_file():
        if not auto_samples:
            raise NoPredictor(space.name, runner.name, path)
        measure.collect(runner, space, auto_samples, seed, TimingProtocol(), store, on_progress)
        train_and_save(store, space, key, path, ["mlp", "lut"], seed)
    return load_predictor(path, space=space.name, space_config=space.config_dict())
