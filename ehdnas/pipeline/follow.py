"""The predictor follows the search: where the search stands is measured, and the predictor corrected there.

A predictor trained on uniform samples is frozen while the search drives the
architecture to where those samples are thin, and it was measured 40-180% off
at the searched network. After each search epoch (or generation), `Follower`
measures the architecture the search would return now and a few of its
one-decision neighbours, through the ordinary runner and store (so nothing is
measured twice, and every later job reuses them), then refits the correction of
`perf_models.correction.Corrected` on everything the store holds for the key,
the search's own measurements weighted up. The search's hardware term reads the
same module, so the next epoch sees the corrected latency.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.measure import measure_archs
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace
from perf_models.correction import Corrected
from perf_models.predictor import Predictor

FOLLOW_WEIGHT = 30.0  # weight of a search's own measurements against the uniform samples in the correction


class Follower:
    """Measures where a search stands and keeps `predictor` (a `Corrected` over the search's base) right there."""

    def __init__(
        self,
        base: Predictor,
        runner: Any,
        space: SearchSpace,
        store: Store,
        neighbours: int,
        weight: float,
        seed: int,
        protocol: Any = None,
    ) -> None:
        from backends import TimingProtocol

        self.predictor = Corrected(base)
        self.runner, self.space, self.store = runner, space, store
        self.neighbours, self.weight = neighbours, weight
        self.protocol = protocol or TimingProtocol()
        self.rng = np.random.default_rng(seed)
        self.searched: set[str] = set()  # text forms of what the search measured: weighted in the refit
        self.centres: set[str] = set()  # the architectures observed, whose neighbourhood is measured already
        self.slowest_refit_s = 0.0

    def predict(self, arch: Any) -> float:
        """The followed predictor's latency (ms) of a discrete architecture."""
        device = self.predictor.table.device
        with torch.no_grad():
            return float(self.predictor([torch.as_tensor(v, device=device) for v in self.space.one_hot(arch)]))

    def observe(self, arch: Any) -> dict[str, float]:
        """Measure `arch` and its neighbours, refit; the figures an epoch's record keeps.

        `predicted_ms` is the prediction before this refit: what the search optimised against.
        """
        predicted = self.predict(arch)
        text = self.space.to_text(arch)
        again = text in self.centres  # seen before: its measurement is stored and the predictor already fitted there
        archs = [arch] if again else [arch, *self.space.neighbours(arch, self.neighbours, self.rng)]
        started = time.perf_counter()
        results = measure_archs(self.runner, self.space, archs, self.protocol, self.store)
        measure_s = time.perf_counter() - started
        self.centres.add(text)
        self.searched |= {result.arch for result in results if result.arch is not None}
        refit_s = 0.0 if again else self.refit()
        measured = results[0].measurement.latency_ms.median
        return {
            "predicted_ms": predicted,
            "measured_ms": measured,
            "error": predicted / measured - 1,
            "measured_new": sum(not result.cached for result in results),
            "measure_s": measure_s,
            "refit_s": refit_s,
        }

    def refit(self) -> float:
        """Fit the correction on the store's measurements of this key; the seconds it took."""
        started = time.perf_counter()
        data = load_dataset(self.store, self.space, MeasurementKey.of(self.runner, self.space))
        if len(data):
            weights = np.array([self.weight if arch in self.searched else 1.0 for arch in data.archs])
            self.predictor.fit(data.indices, data.latency_ms, weights)
        seconds = time.perf_counter() - started
        self.slowest_refit_s = max(self.slowest_refit_s, seconds)
        return seconds

    def state_dict(self) -> dict[str, Any]:
        return {"searched": sorted(self.searched), "centres": sorted(self.centres), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the searched set and generator, and the correction refitted from the store."""
        self.searched, self.centres = set(state["searched"]), set(state["centres"])
        self.rng.bit_generator.state = state["rng"]
        self.refit()
