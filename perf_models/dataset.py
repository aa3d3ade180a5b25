"""Measurements of one (space, target, configuration, host) from the store, as arrays predictors train on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ehdnas.spaces import SearchSpace
from ehdnas.store import Store


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


def load_dataset(store: Store, space: SearchSpace, target: str, target_config: dict, host: dict) -> Dataset:
    """Everything the store holds for this key, oldest first."""
    rows = store.measurements(target, target_config, host, space.name, space.config_dict())
    macs_model = space.choice_macs()
    archs = [space.parse(text) for text, _ in rows]
    measurements = [m for _, m in rows]
    return Dataset(
        indices=np.array([space.encode(a) for a in archs], dtype=np.int64).reshape(len(archs), len(space.decisions)),
        latency_ms=np.array([m.latency_ms.median for m in measurements], dtype=np.float64),
        macs=np.array([m.model.get("macs") or 0 for m in measurements], dtype=np.float64),
        params=np.array([m.model.get("params") or 0 for m in measurements], dtype=np.float64),
        archs=tuple(text for text, _ in rows),
        meta={
            "space": space.name,
            "space_config": space.config_dict(),
            "decisions": [[d.name, list(d.choices)] for d in space.decisions],
            "choice_macs": None if macs_model is None else {"table": macs_model[0].tolist(), "rest": macs_model[1]},
            "target": target,
            "target_config": target_config,
            "host": host,
        },
    )


def split(n: int, seed: int = 0, val: float = 0.1, test: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed random train / validation / test split of n rows."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test), round(n * val)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
