"""The measurement protocol: how a latency is timed, and the statistics derived from it.

Like TVM's time_evaluator, the protocol is explicit and the raw samples are kept;
every statistic is computed from them. Units are in the names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ehdnas.core.errors import UserError


@dataclass(frozen=True)
class TimingProtocol:
    """Warm-up runs are discarded; then runs repeat until both minimums are met or `max_repeats`."""

    warmup: int = 10
    min_repeats: int = 20
    min_time_s: float = 1.0  # measured here: medians of 6 runs of a DARTS net spread 5% at 0.5 s, 2% at 1 s
    max_repeats: int = 10_000
    # Another process competing for the core inflates the median (seen here: cv 0.3, median +60%);
    # a run whose cv exceeds max_cv is timed again, up to `retries` times, keeping the quietest run.
    max_cv: float = 0.10
    retries: int = 2

    def check(self) -> None:
        if self.warmup < 0 or self.min_repeats < 1 or self.min_time_s < 0:
            raise UserError("timing protocol: warmup >= 0, repeats >= 1 and min time >= 0 are required")
        if self.max_cv <= 0 or self.retries < 0:
            raise UserError("timing protocol: max cv must be above 0 and retries at least 0")
        if self.max_repeats < self.min_repeats:
            raise UserError("timing protocol: max repeats must be at least the minimum repeats")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LatencyStats:
    """Statistics of latency samples, in milliseconds; `cv` is std / mean (unitless)."""

    median: float
    mean: float
    std: float
    p10: float
    p90: float
    n: int
    cv: float

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> LatencyStats:
        x = np.asarray(samples_ms, dtype=np.float64)
        if x.size == 0:
            raise ValueError("no latency samples")
        mean = float(x.mean())
        std = float(x.std(ddof=1)) if x.size > 1 else 0.0
        p10, median, p90 = (float(v) for v in np.percentile(x, [10, 50, 90]))
        return cls(median, mean, std, p10, p90, int(x.size), std / mean if mean > 0 else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_runs(run: Callable[[], object], protocol: TimingProtocol) -> list[float]:
    """Call `run` under `protocol`; return the latency of every timed call in ms."""
    for _ in range(protocol.warmup):
        run()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < protocol.max_repeats and (
        len(samples) < protocol.min_repeats or time.perf_counter() - start < protocol.min_time_s
    ):
        t0 = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples
