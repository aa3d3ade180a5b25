"""The store's measurements of one key as a predictor's training data."""

from __future__ import annotations

import numpy as np

from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace
from perf_models.dataset import Dataset


def load_dataset(store: Store, space: SearchSpace, key: MeasurementKey) -> Dataset:
    """Everything the store holds for `key` (of `space`), oldest first, but flagged measurements.

    A flagged measurement stayed noisier than its protocol's bound: its median may be a competitor's as much as
    the network's, and a predictor fitted to it learns the host's load. `meta["flagged_skipped"]` counts them.
    """
    every = store.measurements(key)
    rows = [(text, m) for text, m in every if not m.flagged]
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
            "target": key.target,
            "target_config": key.target_config,
            "host": key.host,
            "flagged_skipped": len(every) - len(rows),
        },
    )
