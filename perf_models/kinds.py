"""The predictor kinds, in one registry: how each is fitted, and the module class of those a search can use.

A differentiable kind is a `torch.nn.Module` over the soft architecture (its
class is what a predictor file is loaded into); the others are baselines that
`train-predictor` reports beside them.

A kind trained in epochs (`mlp`) reports each one through the `on_epoch` its
fit is handed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ehdnas.core.registry import Registry
from perf_models.baselines import LUTPredictor, fit_flops, fit_lut, fit_xgboost
from perf_models.mlp import MLPPredictor, fit_mlp
from perf_models.predictor import Predictor


@dataclass(frozen=True)
class PredictorKind:
    name: str
    fit: Callable[..., Any]  # (train, val, seed=) -> a fitted predictor with .predict(Dataset)
    module: type[Predictor] | None = None  # differentiable kinds: the class a saved file loads into
    complexity: int = 0  # simplicity order: on a validation tie, train_predictors keeps the lowest
    in_epochs: bool = False  # trained in epochs: its fit takes `on_epoch(done, epochs)`

    @property
    def differentiable(self) -> bool:
        return self.module is not None


KINDS: Registry[PredictorKind] = Registry("predictor kind")
for _kind in (
    PredictorKind(
        "mlp", fit_mlp, MLPPredictor, complexity=3, in_epochs=True
    ),  # an ensemble of MLPs beside a lookup table
    PredictorKind("lut", fit_lut, LUTPredictor, complexity=2),  # one cost per (decision, choice)
    PredictorKind("flops", fit_flops, complexity=1),  # three coefficients
    PredictorKind("xgboost", fit_xgboost, complexity=4),
):
    KINDS.register(_kind.name)(_kind)


def kind_names() -> list[str]:
    """Every kind, in the order `train-predictor` trains and reports them."""
    return KINDS.names(order="registered")


def differentiable_kinds() -> list[str]:
    return [name for name in kind_names() if KINDS.get(name).differentiable]
