"""The correction a search's predictor gets from new measurements: exact where measured, the base far from data."""

from __future__ import annotations

import numpy as np
import torch

from perf_models.baselines import LUTPredictor
from perf_models.correction import Corrected

CHOICES = [3, 3, 2]


def _base() -> LUTPredictor:
    base = LUTPredictor(CHOICES)
    with torch.no_grad():
        base.bias.fill_(1.0)
        base.table.fill_(0.1)
    return base


def test_a_multiplicative_error_of_the_base_is_learned_where_it_was_measured() -> None:
    corrected = Corrected(_base(), ridge=1e-6)
    indices = np.array([[a, b, c] for a in range(3) for b in range(3) for c in range(2)])
    with torch.no_grad():
        base_ms = corrected.base(corrected.one_hot(indices)).numpy()
    truth = base_ms * np.exp(0.3 * (indices[:, 0] == 2) - 0.2 * (indices[:, 2] == 1))  # what the target says
    corrected.fit(indices, truth, np.ones(len(indices)))
    with torch.no_grad():
        predicted = corrected(corrected.one_hot(indices)).numpy()
    np.testing.assert_allclose(predicted, truth, rtol=1e-6)


def test_ridge_keeps_the_base_where_nothing_was_measured_and_weights_pull_the_fit() -> None:
    corrected = Corrected(_base(), ridge=1.0)
    measured = np.array([[0, 0, 0], [0, 0, 0]])
    # Two disagreeing measurements of one architecture: the heavier one wins.
    corrected.fit(measured, np.array([2.0, 4.0]), np.array([1.0, 9.0]))
    with torch.no_grad():
        near = float(corrected(corrected.one_hot(measured[:1]))[0])
    assert 3.0 < near < 4.0
    # Choices never measured get no factor of their own: there the correction is the shared bias alone.
    assert corrected.table[0, 1:].abs().max() < 1e-9 and corrected.table[2, 1:].abs().max() < 1e-9
    assert corrected.shared[1:].abs().max() < 1e-9


def test_the_corrected_latency_stays_differentiable_in_the_soft_architecture() -> None:
    corrected = Corrected(_base())
    corrected.fit(np.array([[1, 2, 0], [0, 1, 1]]), np.array([0.5, 3.0]), np.ones(2))
    soft = torch.full((3, 3), 1 / 3, requires_grad=True)
    corrected(soft).backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
