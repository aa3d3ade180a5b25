"""Which CPU core is idle now, and pinning the timing thread to it for one round.

Another process on the core a network is timed on stretches some of its runs
(seen here: cv 0.3, median +60%). On a host with an idle core, the timed thread
is moved there for a round; the load is read from `/proc/stat` just before, so
a core that a competitor took since the last round is left. Only the calling
thread is pinned (a 1-thread runtime runs its work there), and its affinity is
put back after the round, as `tvm_llvm._affinity_kept` does for TVM's pool.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

PROC_STAT = Path("/proc/stat")
_IDLE_FIELDS = (3, 4)  # idle and iowait, of: user nice system idle iowait irq softirq steal


def _core_jiffies() -> dict[int, tuple[int, int]]:
    """Per core: (busy, total) clock ticks since boot, from /proc/stat's `cpuN` lines."""
    counts = {}
    for line in PROC_STAT.read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(x) for x in fields[:8]]
            idle = sum(ticks[i] for i in _IDLE_FIELDS)
            counts[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return counts


def core_loads(interval_s: float) -> dict[int, float]:
    """Per core: the fraction of the next `interval_s` it spent busy (0 idle .. 1 busy); {} where unknown."""
    try:
        before = _core_jiffies()
        time.sleep(interval_s)
        after = _core_jiffies()
    except (OSError, ValueError):  # no /proc (not Linux), or a format this does not read
        return {}
    loads = {}
    for core, (busy, total) in after.items():
        busy0, total0 = before.get(core, (busy, total))
        loads[core] = (busy - busy0) / (total - total0) if total > total0 else 0.0
    return loads


def idlest_core(loads: Mapping[int, float], allowed: set[int], max_load: float) -> int | None:
    """The least busy of the `allowed` cores if its load is at most `max_load`, else None (no core is idle).

    Ties go to the lowest core number, so the same loads always give the same core.
    """
    candidates = sorted((load, core) for core, load in loads.items() if core in allowed)
    if not candidates or candidates[0][0] > max_load:
        return None
    return candidates[0][1]


def allowed_cores() -> set[int]:
    """The cores this thread may run on now (every core where affinity cannot be read)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Run the calling thread on `core` alone for the block (None: as it is), then restore its affinity."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)
