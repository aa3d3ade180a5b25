"""Active collection: measure next what the predictor ensemble disagrees on most."""

from __future__ import annotations

import numpy as np
import torch

from perf_models.dataset import Dataset, split
from perf_models.mlp import MLPPredictor, fit_mlp


def most_uncertain(predictor: MLPPredictor, indices: np.ndarray, k: int) -> np.ndarray:
    """Rows of `indices` (N, D) with the largest ensemble spread, most uncertain first."""
    with torch.no_grad():
        spread = predictor.uncertainty(predictor.one_hot(indices)).numpy()
    return np.argsort(-spread, kind="stable")[:k]


def fit_for_selection(data: Dataset, seed: int) -> MLPPredictor:
    """A quick ensemble on all measurements (15% held out for early stopping) to rank candidates."""
    train, val, _ = split(len(data), seed, val=0.15, test=0.0)
    return fit_mlp(data.subset(train), data.subset(val), seed=seed, epochs=150, patience=20)
