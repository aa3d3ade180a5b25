"""Baselines that put every number of `mlp` in context.

- `lut`: latency is a sum of one cost per (decision, choice) plus a constant,
  fitted by least squares: the per-op lookup table of FBNet / ProxylessNAS.
  It is linear in the probabilities, so it is differentiable too.
- `flops`: latency fitted linearly on the network's MACs and parameters.
- `xgboost`: gradient-boosted trees on the one-hot encoding; strong, not differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from perf_models.dataset import Dataset
from perf_models.predictor import Predictor, SoftArch


class LUTPredictor(Predictor):
    kind = "lut"

    def __init__(self, choices: Sequence[int]) -> None:
        super().__init__(choices)
        self.table = nn.Parameter(torch.zeros(len(self.choices), self.max_choices))  # (D, K) ms per choice
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, arch: SoftArch) -> torch.Tensor:
        x, batched = self.as_soft(arch)  # (B, D, K)
        latency = self.bias + (x * self.table).sum((1, 2))  # (B,)
        return latency if batched else latency[0]


def _one_hot_matrix(data: Dataset, max_choices: int) -> np.ndarray:
    """(N, D*K) one-hot features."""
    n, d = data.indices.shape
    features = np.zeros((n, d, max_choices))
    np.put_along_axis(features, data.indices[:, :, None], 1.0, axis=2)
    return features.reshape(n, d * max_choices)


def fit_lut(train: Dataset, val: Dataset, seed: int = 0) -> LUTPredictor:
    model = LUTPredictor([len(c) for _, c in train.meta["decisions"]])
    features = np.hstack([_one_hot_matrix(train, model.max_choices), np.ones((len(train), 1))])
    solution, *_ = np.linalg.lstsq(features, train.latency_ms, rcond=None)  # minimum-norm: one-hots are collinear
    with torch.no_grad():
        model.table.copy_(torch.as_tensor(solution[:-1]).view_as(model.table))
        model.bias.fill_(float(solution[-1]))
    return model.eval()


@dataclass
class FlopsPredictor:
    """latency = a * MACs + b * params + c; needs the graph sizes, so it predicts measured archs only."""

    coefficients: np.ndarray
    kind = "flops"

    def predict(self, data: Dataset) -> np.ndarray:
        return np.column_stack([data.macs, data.params, np.ones(len(data))]) @ self.coefficients


def fit_flops(train: Dataset, val: Dataset, seed: int = 0) -> FlopsPredictor:
    features = np.column_stack([train.macs, train.params, np.ones(len(train))])
    coefficients, *_ = np.linalg.lstsq(features, train.latency_ms, rcond=None)
    return FlopsPredictor(coefficients)


@dataclass
class XGBoostPredictor:
    booster: Any
    max_choices: int
    kind = "xgboost"

    def predict(self, data: Dataset) -> np.ndarray:
        import xgboost

        features = xgboost.DMatrix(_one_hot_matrix(data, self.max_choices))
        rounds = (0, self.booster.best_iteration + 1) if hasattr(self.booster, "best_iteration") else (0, 0)
        return np.exp(self.booster.predict(features, iteration_range=rounds))


def fit_xgboost(train: Dataset, val: Dataset, seed: int = 0) -> XGBoostPredictor:
    """Trees on log latency; early stopping on the validation split."""
    import xgboost

    max_choices = max(len(c) for _, c in train.meta["decisions"])
    params = {
        "max_depth": 4,
        "eta": 0.03,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
        "seed": seed,
        "nthread": 2,
        "objective": "reg:squarederror",
    }
    dtrain = xgboost.DMatrix(_one_hot_matrix(train, max_choices), label=np.log(train.latency_ms))
    dval = xgboost.DMatrix(_one_hot_matrix(val, max_choices), label=np.log(val.latency_ms))
    booster = xgboost.train(
        params, dtrain, num_boost_round=2000, evals=[(dval, "val")], early_stopping_rounds=100, verbose_eval=False
    )
    return XGBoostPredictor(booster, max_choices)
