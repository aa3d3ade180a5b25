"""The timing protocol on a shared host: round selection and core choice (properties), and a real competitor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from backends import TimingProtocol, get_target
from backends.base import TARGETS
from backends.cores import core_loads, idlest_core, pinned
from backends.ort_cpu import OrtCpuRunner
from backends.protocol import disturbed, kept_samples, quietest_rounds, round_spread, split_rounds, time_rounds
from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import export_model

MEDIANS = st.lists(st.floats(0.01, 1e4, allow_nan=False), min_size=1, max_size=30)
LOADS = st.dictionaries(st.integers(0, 63), st.floats(0, 1), min_size=1, max_size=16)
SHORT = TimingProtocol(warmup=1, min_repeats=6, min_time_s=0.0, load_sample_s=0.0)


@given(MEDIANS, st.integers(1, 40))
def test_the_rounds_kept_are_the_fastest_in_order(medians: list[float], keep: int) -> None:
    kept = quietest_rounds(medians, keep)
    assert len(kept) == min(keep, len(medians)) and list(kept) == sorted(set(kept))
    dropped = [medians[i] for i in range(len(medians)) if i not in kept]
    assert not dropped or max(medians[i] for i in kept) <= min(dropped)


@given(MEDIANS, st.integers(1, 40), st.floats(1.01, 100))
def test_a_slower_round_more_changes_nothing_kept(medians: list[float], keep: int, factor: float) -> None:
    if len(medians) < keep:
        return
    assert quietest_rounds([*medians, max(medians) * factor], keep) == quietest_rounds(medians, keep)


@given(st.lists(st.integers(1, 20), min_size=1, max_size=10), st.data())
def test_rounds_split_and_keep_the_samples_in_order(rounds: list[int], data: st.DataObject) -> None:
    samples = [float(i) for i in range(sum(rounds))]
    parts = split_rounds(samples, rounds)
    assert [len(p) for p in parts] == rounds and [x for p in parts for x in p] == samples
    kept = tuple(sorted(data.draw(st.sets(st.integers(0, len(rounds) - 1), min_size=1))))
    assert kept_samples(samples, rounds, kept) == [x for i in kept for x in parts[i]]
    assert kept_samples(samples, (), ()) == samples  # a row stored before rounds: one round, all kept


@given(LOADS, st.sets(st.integers(0, 63), max_size=16), st.floats(0, 1))
def test_the_core_chosen_is_an_allowed_idle_one_or_none(loads: dict, allowed: set[int], max_load: float) -> None:
    core = idlest_core(loads, allowed, max_load)
    usable = {c: load for c, load in loads.items() if c in allowed}
    if not usable or min(usable.values()) > max_load:
        assert core is None
    else:
        assert core in usable and usable[core] == min(usable.values()) and usable[core] <= max_load


def test_a_measurement_is_disturbed_by_the_spread_of_its_rounds_or_by_a_starved_wall_clock() -> None:
    quiet, noisy = round_spread([1.0, 1.01, 0.99], [1, 1, 1], [0, 1, 2]), round_spread([1.0, 2.0], [1, 1], [0, 1])
    assert quiet == pytest.approx(1.01 / 0.99 - 1) and noisy == pytest.approx(1.0)
    assert round_spread([1.0, 5.0], [2], [0]) == 0.0  # one round: nothing to compare
    wall, cpu = TimingProtocol(), TimingProtocol(clock="cpu")
    assert not disturbed(quiet, 0.95, wall) and disturbed(noisy, 0.95, wall) and disturbed(quiet, 0.5, wall)
    assert not disturbed(quiet, 0.5, cpu) and not disturbed(quiet, None, wall)  # CPU time is not stretched


def test_a_heavy_tail_of_runs_leaves_a_measurement_clean_where_its_rounds_agree() -> None:
    # What a sub-millisecond network's runs look like on an idle host: a tight core and a rare run 40x as long.
    def run(protocol: TimingProtocol) -> list[float]:
        return [0.13 * (1 + 0.001 * i) for i in range(protocol.min_repeats - 1)] + [5.0]

    timed = time_rounds(run, SHORT, threads=2, on_host=False)
    assert timed.stats.cv > 0.5 and timed.spread < 0.01 and not timed.flagged and timed.attempts == 1


def test_bursts_of_interference_are_left_out_of_the_statistics() -> None:
    calls = []

    def run(protocol: TimingProtocol) -> list[float]:  # every other round overlaps a competitor: twice as slow
        calls.append(protocol)
        slow = 2.0 if len(calls) % 2 == 0 else 1.0
        return [slow * (1 + 0.01 * i) for i in range(protocol.min_repeats)]

    timed = time_rounds(run, SHORT, threads=2, on_host=False)
    assert timed.kept_rounds == (0, 2, 4) and timed.stats.median < 1.05 and not timed.flagged
    assert calls[0].warmup == 1 and all(p.warmup == SHORT.round_warmup for p in calls[1:])
    assert timed.stats.n == SHORT.min_repeats and len(timed.samples_ms) == 5 * 2  # every raw sample is kept


def test_a_measurement_noisy_in_every_round_is_retried_then_flagged() -> None:
    rng = np.random.default_rng(0)

    def run(protocol: TimingProtocol) -> list[float]:
        return list(rng.lognormal(0, 1, protocol.min_repeats))

    timed = time_rounds(run, SHORT, threads=2, on_host=False)
    assert timed.flagged and timed.attempts == SHORT.retries + 1
    assert len(timed.rounds) == SHORT.rounds * (SHORT.retries + 1) and len(timed.kept_rounds) == SHORT.keep_rounds


def test_pinning_moves_the_thread_for_the_block_then_restores_it() -> None:
    before = os.sched_getaffinity(0)
    core = min(before)
    with pinned(core):
        assert os.sched_getaffinity(0) == {core}
    assert os.sched_getaffinity(0) == before
    loads = core_loads(0.02)
    assert set(loads) >= before and all(0 <= x <= 1 for x in loads.values())


def test_a_target_refuses_a_clock_it_cannot_time_on(tiny_model: Path) -> None:
    with pytest.raises(UserError, match="clock must be one of wall, cpu"):
        TimingProtocol(clock="tsc").check()
    # TVM's time_evaluator clocks its runs itself; an Edge TPU's host thread only waits on the device.
    assert TARGETS.get("tvm-llvm").clocks == TARGETS.get("edgetpu").clocks == ("wall",)

    class WallOnly(OrtCpuRunner):
        clocks = ("wall",)

    with pytest.raises(UserError, match="'ort-cpu' times on the wall clock, not cpu"):
        WallOnly().measure(tiny_model, TimingProtocol(clock="cpu"))


@pytest.fixture
def competitor_on_one_core() -> int:
    """This process and a spinning one on the same single core (the competitor is killed after the test)."""
    saved = os.sched_getaffinity(0)
    core = max(saved)
    os.sched_setaffinity(0, {core})
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(spinner.pid, {core})
    try:
        yield core
    finally:
        spinner.kill()
        spinner.wait()
        os.sched_setaffinity(0, saved)


def test_a_competitor_on_the_core_is_flagged_on_the_wall_clock_and_resisted_on_the_cpu_clock(
    tmp_path: Path, competitor_on_one_core: int
) -> None:
    # Runs of several ms, longer than a scheduler time slice, so that the competitor stretches most of them.
    layers = [torch.nn.Conv2d(3, 16, 3, padding=1), *[torch.nn.Conv2d(16, 16, 3, padding=1) for _ in range(3)]]
    model = export_model(torch.nn.Sequential(*layers), (1, 3, 96, 96), tmp_path / "net.onnx")
    runner = get_target("ort-cpu")
    wall = runner.measure(model, TimingProtocol(warmup=3, min_repeats=15, min_time_s=0.2, retries=0))
    cpu = runner.measure(model, TimingProtocol(warmup=3, min_repeats=15, min_time_s=0.2, retries=0, clock="cpu"))
    # The spinner takes about half the core: the wall clock's rounds had less of it than the protocol asks.
    assert wall.flagged and max(wall.cpu_share) < TimingProtocol.min_cpu_share, wall.cpu_share
    assert wall.cores == (None,) * TimingProtocol.rounds  # one core allowed, and a busy one: nowhere to move
    # The thread's CPU time is what the network costs when it runs: the runs the competitor stretched on the
    # wall clock (the mean and spread show them) are not stretched on the CPU clock.
    assert cpu.latency_ms.mean < 0.5 * wall.latency_ms.mean and cpu.latency_ms.cv < wall.latency_ms.cv / 3, (
        cpu.latency_ms,
        wall.latency_ms,
    )
