"""Train every predictor kind on one split of the measurements and keep the best differentiable one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ehdnas.errors import UserError
from ehdnas.spaces import SearchSpace
from ehdnas.store import Store
from perf_models.baselines import fit_flops, fit_lut, fit_xgboost
from perf_models.dataset import Dataset, load_dataset, split
from perf_models.metrics import evaluate
from perf_models.mlp import fit_mlp
from perf_models.predictor import Predictor, default_predictor_path

KINDS: dict[str, Callable[..., Any]] = {"mlp": fit_mlp, "lut": fit_lut, "flops": fit_flops, "xgboost": fit_xgboost}
DIFFERENTIABLE = ("mlp", "lut")  # the kinds that are torch modules over the soft architecture
MIN_MEASUREMENTS = 50  # below this the held-out split is too small to say anything


class TooFewMeasurements(UserError):
    def __init__(self, have: int) -> None:
        self.have, self.missing = have, MIN_MEASUREMENTS - have
        super().__init__(f"only {have} measurements; at least {MIN_MEASUREMENTS} are needed ({self.missing} more)")


@dataclass(frozen=True)
class TrainReport:
    metrics: dict[str, dict[str, float]]  # kind -> held-out metrics (and fit time)
    best: str  # the differentiable kind with the lowest validation MAPE
    predictor: Predictor
    sizes: dict[str, int]  # train / val / test rows

    def meta(self, data: Dataset) -> dict[str, Any]:
        """What a saved predictor file records about itself."""
        return {
            **data.meta,
            "kind": self.best,
            "measurements": len(data),
            "split": self.sizes,
            "metrics": self.metrics[self.best],
            "all_metrics": self.metrics,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def train_predictors(
    data: Dataset,
    kinds: Sequence[str] = tuple(KINDS),
    seed: int = 0,
    on_progress: Callable[[int, int, str], None] = lambda done, total, label: None,
) -> TrainReport:
    """Fit each kind on the train split, pick among differentiable kinds on validation, report on test."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UserError(f"unknown predictor kind {unknown[0]!r}; known: {', '.join(KINDS)}")
    if not set(kinds) & set(DIFFERENTIABLE):
        raise UserError(f"choose at least one differentiable kind ({' or '.join(DIFFERENTIABLE)}) to save")
    if len(data) < MIN_MEASUREMENTS:
        raise TooFewMeasurements(len(data))
    train_rows, val_rows, test_rows = split(len(data), seed)
    train, val, test = data.subset(train_rows), data.subset(val_rows), data.subset(test_rows)
    metrics, fitted, validation = {}, {}, {}
    for i, kind in enumerate(kinds):
        start = time.perf_counter()
        fitted[kind] = KINDS[kind](train, val, seed=seed)
        seconds = time.perf_counter() - start
        metrics[kind] = {**evaluate(fitted[kind].predict(test), test.latency_ms), "fit_s": seconds}
        validation[kind] = evaluate(fitted[kind].predict(val), val.latency_ms)["mape"]
        on_progress(i + 1, len(kinds), kind)
    best = min((k for k in kinds if k in DIFFERENTIABLE), key=validation.__getitem__)
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    return TrainReport(metrics=metrics, best=best, predictor=fitted[best], sizes=sizes)


def train_and_save(
    store: Store,
    space: SearchSpace,
    target: str,
    target_config: dict,
    host: dict,
    out: Path | None = None,
    kinds: Sequence[str] = tuple(KINDS),
    seed: int = 0,
    on_progress: Callable[[int, int, str], None] = lambda done, total, label: None,
) -> tuple[TrainReport, Dataset, Path]:
    """Train on the stored measurements of (space, target, host); save the best differentiable kind.

    Without `out`, the file goes where `search` looks for it (`default_predictor_path`).
    """
    out = out or default_predictor_path(space.name, space.config_dict(), target, target_config, host)
    data = load_dataset(store, space, target, target_config, host)
    report = train_predictors(data, kinds, seed, on_progress)
    report.predictor.save(out, report.meta(data))
    return report, data, out
