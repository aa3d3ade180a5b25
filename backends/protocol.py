"""The measurement protocol: how a latency is timed, and the statistics derived from it.

Like TVM's time_evaluator, the protocol is explicit and the raw samples are kept;
every statistic is computed from them. Units are in the names.

A shared host disturbs timing in bursts: another process takes the core for a
while, and the runs it overlaps are stretched. So the timed runs are split into
short rounds, each on the core that is idle just then (when one is), and the
statistics come from the quietest rounds alone. What a measurement reports is
their median, so its noise is how far the kept rounds' medians lie apart (the
spread): while it is above `max_spread` more rounds are timed, and one that
stays so is flagged, not passed off as a clean value (the store keeps it
flagged; training skips it; `collect` times it again). The runs' cv is
reported beside it but bounds nothing: a sub-millisecond network's runs have a
heavy tail (a timer interrupt, a page fault: one 5 ms run among 6,000 of
0.13 ms lifts the cv by 0.4) that leaves the median where it was.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from backends.cores import allowed_cores, core_loads, idlest_core, pinned
from ehdnas.core.errors import UserError

CLOCKS = ("wall", "cpu")  # what a sample is: elapsed time, or the timed thread's CPU time


@dataclass(frozen=True)
class TimingProtocol:
    """Warm-up runs are discarded; then `rounds` short rounds are timed, the `keep_rounds` fastest giving the
    statistics, which hold at least `min_repeats` runs and `min_time_s` seconds (or `max_repeats` runs)."""

    warmup: int = 10
    min_repeats: int = 20
    min_time_s: float = 1.0  # measured here: medians of 6 runs of a DARTS net spread 5% at 0.5 s, 2% at 1 s
    max_repeats: int = 10_000
    # Interference only ever adds time, so the rounds with the lowest medians are the least disturbed ones.
    rounds: int = 5
    keep_rounds: int = 3
    round_warmup: int = 2  # untimed runs before each later round: it may start on another core
    # Each round of a 1-thread runtime runs pinned to the least busy core, if that one was busy at most
    # `idle_core_load` of the `load_sample_s` before it (read from /proc/stat); else where the OS puts it.
    pin_idle_core: bool = True
    idle_core_load: float = 0.25
    load_sample_s: float = 0.03  # 3 of /proc/stat's 10 ms ticks: enough to tell idle from busy
    # Another process competing for the core inflates the median (seen here: +60% for a second or two at a
    # time); while the kept rounds' medians differ by more than max_spread (the slowest over the fastest, less
    # 1), or they had less than `min_cpu_share` of a core each (process CPU time over wall time, per timed
    # thread: below it the OS ran something else in between), `rounds` more are timed, up to `retries` times,
    # and the quietest `keep_rounds` of all kept. One still so is flagged. Measured here on an idle host, 20
    # small DARTS nets timed twice, twice: the kept medians lay within 5% in 79 of 80 measurements (median 1%).
    max_spread: float = 0.05
    min_cpu_share: float = 0.8
    retries: int = 2
    # wall: each run's elapsed time, the latency. cpu: the timed thread's CPU time in each run, which a
    # competitor taking the core does not stretch: the figure that ranks networks on an oversubscribed host.
    # Equal to wall on a quiet one (1 thread, runtime on the CPU); no CPU share is asked of it.
    clock: str = "wall"

    def check(self) -> None:
        if self.warmup < 0 or self.min_repeats < 1 or self.min_time_s < 0:
            raise UserError("timing protocol: warmup >= 0, repeats >= 1 and min time >= 0 are required")
        if self.max_spread <= 0 or self.retries < 0:
            raise UserError("timing protocol: max spread must be above 0 and retries at least 0")
        if self.max_repeats < self.min_repeats:
            raise UserError("timing protocol: max repeats must be at least the minimum repeats")
        if not 1 <= self.keep_rounds <= self.rounds or self.round_warmup < 0:
            raise UserError("timing protocol: 1 <= rounds kept <= rounds and round warm-up >= 0 are required")
        if not 0 <= self.idle_core_load <= 1 or not 0 <= self.min_cpu_share <= 1 or self.load_sample_s < 0:
            raise UserError("timing protocol: idle core load and CPU share within 0..1, load sample time >= 0")
        if self.clock not in CLOCKS:
            raise UserError(f"timing protocol: clock must be one of {', '.join(CLOCKS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def round_protocol(self, first: bool) -> TimingProtocol:
        """What one round times: a `keep_rounds`-th of the minimums, so the kept rounds together meet them."""
        return dataclasses.replace(
            self,
            warmup=self.warmup if first else self.round_warmup,
            min_repeats=math.ceil(self.min_repeats / self.keep_rounds),
            min_time_s=self.min_time_s / self.keep_rounds,
            max_repeats=max(1, math.ceil(self.max_repeats / self.keep_rounds)),
            rounds=1,
            keep_rounds=1,
        )


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
    """Call `run` under `protocol`; return the latency of every timed call in ms, on the protocol's clock."""
    for _ in range(protocol.warmup):
        run()
    clock = time.thread_time_ns if protocol.clock == "cpu" else time.perf_counter_ns
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < protocol.max_repeats and (
        len(samples) < protocol.min_repeats or time.perf_counter() - start < protocol.min_time_s
    ):
        t0 = clock()
        run()
        samples.append((clock() - t0) / 1e6)
    return samples


def split_rounds(samples_ms: Sequence[float], rounds: Sequence[int]) -> list[list[float]]:
    """`samples_ms` cut into consecutive rounds of `rounds[i]` samples (no rounds: one round of them all)."""
    if not rounds:
        return [list(samples_ms)]
    if sum(rounds) != len(samples_ms):
        raise ValueError(f"{len(samples_ms)} samples are not rounds of {list(rounds)}")
    bounds = np.cumsum([0, *rounds])
    return [list(samples_ms[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def quietest_rounds(medians_ms: Sequence[float], keep: int) -> tuple[int, ...]:
    """Indices, in order, of the `keep` rounds with the lowest medians (a tie goes to the earlier round)."""
    ranked = sorted(range(len(medians_ms)), key=lambda i: (medians_ms[i], i))
    return tuple(sorted(ranked[:keep]))


def round_spread(samples_ms: Sequence[float], rounds: Sequence[int], kept: Sequence[int]) -> float:
    """How far the kept rounds' medians lie apart: the slowest over the fastest, less 1 (0 for one round)."""
    if len(kept) < 2:
        return 0.0
    parts = split_rounds(samples_ms, rounds)
    medians = [float(np.median(parts[i])) for i in kept]
    return max(medians) / min(medians) - 1 if min(medians) > 0 else 0.0


def kept_samples(samples_ms: Sequence[float], rounds: Sequence[int], kept: Sequence[int]) -> list[float]:
    """The samples of the kept rounds, in timing order: what a measurement's statistics come from."""
    if not rounds:
        return list(samples_ms)
    parts = split_rounds(samples_ms, rounds)
    return [x for i in kept for x in parts[i]]


@dataclass(frozen=True)
class Timed:
    """One measurement's timing: every sample in timing order, how they split into rounds, which were kept."""

    samples_ms: tuple[float, ...]
    rounds: tuple[int, ...]  # samples in each round, in order
    kept_rounds: tuple[int, ...]  # indices of the rounds the statistics come from
    cores: tuple[int | None, ...]  # the core each round was pinned to; None: not pinned (no idle core)
    cpu_share: tuple[float, ...]  # per round: process CPU time over wall time, per timed thread (1: undisturbed)
    attempts: int  # sets of `rounds` rounds timed: more than 1 when the first was too noisy
    stats: LatencyStats  # of the kept rounds' samples
    spread: float  # how far the kept rounds' medians lie apart (`round_spread`)
    flagged: bool  # the kept rounds are still noisier than the protocol allows

    def kept_cpu_share(self) -> float:
        return float(np.mean([self.cpu_share[i] for i in self.kept_rounds]))


def disturbed(spread: float, cpu_share: float | None, protocol: TimingProtocol) -> bool:
    """Whether kept rounds this far apart, with this CPU share (None: not asked), are noisier than `protocol` allows."""
    starved = cpu_share is not None and protocol.clock == "wall" and cpu_share < protocol.min_cpu_share
    return spread > protocol.max_spread or starved


def time_rounds(
    run: Callable[[TimingProtocol], list[float]], protocol: TimingProtocol, threads: int, on_host: bool = True
) -> Timed:
    """Time `run` (one round of the protocol it is given: its samples in ms) in rounds under `protocol`.

    `threads`: the runtime's timed threads; a 1-thread one is moved to an idle core for each round where there
    is one. `on_host`: the work runs on this host's CPU, so its CPU share says whether it had the core.
    """
    samples: list[float] = []
    rounds: list[int] = []
    cores: list[int | None] = []
    shares: list[float] = []
    attempts = 0
    while True:
        attempts += 1
        for _ in range(protocol.rounds):
            core, allowed = None, allowed_cores()
            if threads == 1 and protocol.pin_idle_core and len(allowed) > 1:
                core = idlest_core(core_loads(protocol.load_sample_s), allowed, protocol.idle_core_load)
            with pinned(core):
                wall, cpu = time.perf_counter(), time.process_time()
                got = run(protocol.round_protocol(first=not rounds))
                shares.append((time.process_time() - cpu) / max(time.perf_counter() - wall, 1e-9) / threads)
            samples += got
            rounds.append(len(got))
            cores.append(core)
        medians = [float(np.median(part)) for part in split_rounds(samples, rounds)]
        kept = quietest_rounds(medians, protocol.keep_rounds)
        stats = LatencyStats.from_samples(kept_samples(samples, rounds, kept))
        spread = round_spread(samples, rounds, kept)
        share = float(np.mean([shares[i] for i in kept]))
        noisy = disturbed(spread, share if on_host else None, protocol)
        if not noisy or attempts > protocol.retries:
            return Timed(
                tuple(samples), tuple(rounds), kept, tuple(cores), tuple(shares), attempts, stats, spread, noisy
            )
