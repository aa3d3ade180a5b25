"""Accuracy metrics of a latency predictor, always computed on a held-out split.

The field reports these side by side (nn-Meter: share within ±10%; HELP and
BRP-NAS: rank correlations), so every predictor here gets all of them.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

METRICS = ("mape", "rmse_ms", "acc5", "acc10", "kendall_tau", "spearman_rho")


def mape(predicted_ms: np.ndarray, measured_ms: np.ndarray) -> float:
    """Mean absolute percentage error, in %."""
    return float(100 * np.mean(np.abs(predicted_ms - measured_ms) / measured_ms))


def evaluate(predicted_ms: np.ndarray, measured_ms: np.ndarray) -> dict[str, float]:
    """MAPE (%), RMSE (ms), shares within ±5% / ±10% (0..1), Kendall tau, Spearman rho."""
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    relative = np.abs(predicted - measured) / measured
    return {
        "mape": mape(predicted, measured),
        "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
        "acc5": float((relative <= 0.05 + 1e-12).mean()),  # inclusive, whatever the float rounding
        "acc10": float((relative <= 0.10 + 1e-12).mean()),
        "kendall_tau": float(stats.kendalltau(predicted, measured).statistic),
        "spearman_rho": float(stats.spearmanr(predicted, measured).statistic),
    }
