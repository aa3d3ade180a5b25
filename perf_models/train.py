"""Train every predictor kind on one split of the measurements and keep the best differentiable one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ehdnas.core.errors import UserError
from perf_models.dataset import Dataset, split
from perf_models.kinds import KINDS, differentiable_kinds, kind_names
from perf_models.metrics import evaluate
from perf_models.predictor import Predictor

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
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    on_progress: Callable[[int, int, str], None] = lambda done, total, label: None,
) -> TrainReport:
    """Fit each kind (default: every one) on the train split, pick among differentiable kinds on validation,
    report on test."""
    kinds = list(kinds or kind_names())
    for kind in kinds:
        KINDS.get(kind)  # an unknown kind is refused with the known ones
    if not set(kinds) & set(differentiable_kinds()):
        raise UserError(f"choose at least one differentiable kind ({' or '.join(differentiable_kinds())}) to save")
    if len(data) < MIN_MEASUREMENTS:
        raise TooFewMeasurements(len(data))
    train_rows, val_rows, test_rows = split(len(data), seed)
    train, val, test = data.subset(train_rows), data.subset(val_rows), data.subset(test_rows)
    metrics, fitted, validation = {}, {}, {}
    for i, kind in enumerate(kinds):
        start = time.perf_counter()
        fitted[kind] = KINDS.get(kind).fit(train, val, seed=seed)
        seconds = time.perf_counter() - start
        metrics[kind] = {**evaluate(fitted[kind].predict(test), test.latency_ms), "fit_s": seconds}
        validation[kind] = evaluate(fitted[kind].predict(val), val.latency_ms)["mape"]
        on_progress(i + 1, len(kinds), kind)
    best = min((k for k in kinds if KINDS.get(k).differentiable), key=validation.__getitem__)
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    return TrainReport(metrics=metrics, best=best, predictor=fitted[best], sizes=sizes)
