"""The predictor kinds, in one registry: how each is fitted, and the module class of those a search can use.

A differentiable kind is a `torch.nn.Module` over the soft architecture (its
class is what a predictor file is loaded into); the others are baselines that
`train-predictor` reports beside them.

A kind trained in epochs (`mlp`) reports each one to the hook of the
innermost `reporting_epochs` block it is fitted in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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

    @property
    def differentiable(self) -> bool:
        return self.module is not None


EpochHook = Callable[[str, int, int], None]  # kind, epochs done, epochs at most
_ON_EPOCH: ContextVar[EpochHook | None] = ContextVar("perf_models_on_epoch", default=None)


@contextmanager
def reporting_epochs(on_epoch: EpochHook | None) -> Iterator[None]:
    """Within the block, a kind trained in epochs reports each finished one: `on_epoch(kind, done, epochs)`.

    A context, not an argument, because `train_predictors` calls every kind's fit alike, with the data and
    the seed only; None reports nothing.
    """
    token = _ON_EPOCH.set(on_epoch)
    try:
        yield
    finally:
        _ON_EPOCH.reset(token)


def _in_epochs(kind: str, fit: Callable[..., Any]) -> Callable[..., Any]:
    """`fit` (which takes `on_epoch(done, epochs)`), reporting to the current `reporting_epochs` hook."""

    def fit_reporting(train: Any, val: Any, **kwargs: Any) -> Any:
        hook = _ON_EPOCH.get()
        if hook is not None and "on_epoch" not in kwargs:
            kwargs["on_epoch"] = lambda done, epochs: hook(kind, done, epochs)
        return fit(train, val, **kwargs)

    return fit_reporting


KINDS: Registry[PredictorKind] = Registry("predictor kind")
for _kind in (
    PredictorKind("mlp", _in_epochs("mlp", fit_mlp), MLPPredictor),
    PredictorKind("lut", fit_lut, LUTPredictor),
    PredictorKind("flops", fit_flops),
    PredictorKind("xgboost", fit_xgboost),
):
    KINDS.register(_kind.name)(_kind)


def kind_names() -> list[str]:
    """Every kind, in the order `train-predictor` trains and reports them."""
    return KINDS.names(order="registered")


def differentiable_kinds() -> list[str]:
    return [name for name in kind_names() if KINDS.get(name).differentiable]
