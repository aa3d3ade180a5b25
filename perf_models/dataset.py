"""Measured architectures as the arrays predictors train on, and the split they are judged on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Architectures of a space with their measured latency and graph size."""

    indices: np.ndarray  # (N, D) int: the chosen choice of every decision
    latency_ms: np.ndarray  # (N,) measured median latency
    macs: np.ndarray  # (N,) multiply-accumulates of the exported network
    params: np.ndarray  # (N,) parameters of the exported network
    archs: tuple[str, ...]  # (N,) canonical text forms
    meta: dict[str, Any] = field(default_factory=dict)  # space, target, configurations, host

    def __len__(self) -> int:
        return len(self.archs)

    def subset(self, rows: np.ndarray) -> Dataset:
        return Dataset(
            self.indices[rows],
            self.latency_ms[rows],
            self.macs[rows],
            self.params[rows],
            tuple(self.archs[i] for i in rows),
            self.meta,
        )


def split(n: int, seed: int = 0, val: float = 0.1, test: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed random train / validation / test split of n rows."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test), round(n * val)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
