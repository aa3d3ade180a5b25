"""The fast engine: cycles of every layer on a systolic array, from closed forms and a fold-level memory model.

Compute follows SCALE-Sim's mapping exactly. A layer is a GEMM of an
(output pixels Npx) x (window W) operand and a (W) x (filters F) operand; the
dataflow decides which two dimensions lie on the array and which streams in time:

    dataflow  rows  cols  streamed  lines per fold
    os        Npx   F     W         W + R + C - 2
    ws        W     F     Npx       Npx + 2R + C - 2
    is        W     Npx   F         F + 2R + C - 2

with ceil(rows/R) * ceil(cols/C) folds (R x C the array). The memory model is
SCALE-Sim's double-buffered scratchpad at the granularity it itself uses: each
read SRAM holds a window of 1/100-of-its-size sets of the operand's fetch stream
(half active, half prefetch); a demand outside the window slides it by the
prefetch half, which costs that half's transfer over the DRAM port; the array
stalls when a slide is not back by the time its data is demanded. Writes drain
half the ofmap SRAM at a time and stall the array when it is full. Walking folds
instead of SCALE-Sim's per-cycle, per-element traces is what makes this engine
thousands of times faster; `benchmarks/systolic_agreement.py` checks it against
SCALE-Sim layer by layer.

Binary (1-bit) layers pack `binary_macs_per_pe` MACs per processing element and
cycle: their window shrinks by that factor, and so do their operands' bytes.
Pooling and element-wise work runs on a vector unit of `lanes` elements a cycle,
bounded by DRAM traffic.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.systolic.accelerator import Accelerator
from backends.systolic.layers import ConvLayer, VectorLayer

_SETS = 100  # SCALE-Sim splits each read SRAM into this many sets
_ACTIVE = 0.5  # share of each SRAM that the array reads from while the rest is refilled or drained


@dataclass(frozen=True)
class LayerCost:
    """What one layer costs: cycles split into compute and stalls, utilisation, DRAM bytes."""

    name: str
    kind: str  # "gemm" or "vector"
    compute_cycles: int
    stall_cycles: int
    macs: int
    utilization: float  # MACs done / (MAC units x total cycles)
    dram_read_bytes: int
    dram_write_bytes: int

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "macs": self.macs,
            "utilization": round(self.utilization, 4),
            "dram_read_bytes": self.dram_read_bytes,
            "dram_write_bytes": self.dram_write_bytes,
        }


@dataclass(frozen=True)
class _Folds:
    """The folds of one GEMM in demand order, and where each operand's demand of each fold lies."""

    lines: int  # lines (cycles without stalls) of one fold
    rows_used: np.ndarray  # array rows and columns each fold occupies
    cols_used: np.ndarray
    ifmap: np.ndarray  # (folds, 4): first and last fetch-stream entry demanded, first line, lines spanned
    filter: np.ndarray
    writes: np.ndarray  # (folds, 3): ofmap entries written, first line, lines spanned


def _blocks(size: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, size, tile)
    return starts, np.minimum(starts + tile, size)


def _folds(npx: int, window: int, filters: int, acc: Accelerator) -> _Folds:
    """Fold order and per-fold demands, as SCALE-Sim's compute modules generate them."""
    r, c = acc.rows, acc.cols
    if acc.dataflow == "os":
        f0, f1 = _blocks(filters, c)  # outer loop: column folds
        p0, p1 = _blocks(npx, r)  # inner loop: row folds
        outer0, outer1 = np.repeat(f0, len(p0)), np.repeat(f1, len(p0))
        inner0, inner1 = np.tile(p0, len(f0)), np.tile(p1, len(f0))
        lines = window + r + c - 2
        base = np.arange(len(outer0)) * lines
        span = np.full(len(base), window)
        ifmap = np.stack([inner0 * window, inner1 * window, base, span], axis=1)
        flt = np.stack([outer0 * window, outer1 * window, base, span], axis=1)
        writes = np.stack([(inner1 - inner0) * (outer1 - outer0), base + window, np.full(len(base), r + c - 2)], 1)
        rows_used, cols_used = inner1 - inner0, outer1 - outer0
    elif acc.dataflow == "ws":
        f0, f1 = _blocks(filters, c)
        w0, w1 = _blocks(window, r)
        outer0, outer1 = np.repeat(f0, len(w0)), np.repeat(f1, len(w0))
        inner0, inner1 = np.tile(w0, len(f0)), np.tile(w1, len(f0))
        lines = npx + 2 * r + c - 2
        base = np.arange(len(outer0)) * lines
        cv = outer1 - outer0
        ifmap = np.stack([inner0 * npx, inner1 * npx, base + r, np.full(len(base), npx)], axis=1)
        flt = np.stack([outer0 * window + inner0 * cv, outer0 * window + inner1 * cv, base, np.full(len(base), r)], 1)
        writes = np.stack([npx * cv, base + 2 * r, np.full(len(base), npx + c - 2)], axis=1)
        rows_used, cols_used = inner1 - inner0, cv
    else:  # "is"
        p0, p1 = _blocks(npx, c)
        w0, w1 = _blocks(window, r)
        outer0, outer1 = np.repeat(p0, len(w0)), np.repeat(p1, len(w0))
        inner0, inner1 = np.tile(w0, len(p0)), np.tile(w1, len(p0))
        lines = filters + 2 * r + c - 2
        base = np.arange(len(outer0)) * lines
        cv = outer1 - outer0
        ifmap = np.stack([outer0 * window + inner0 * cv, outer0 * window + inner1 * cv, base, np.full(len(base), r)], 1)
        flt = np.stack([inner0 * filters, inner1 * filters, base + r, np.full(len(base), filters)], axis=1)
        writes = np.stack([filters * cv, base + 2 * r, np.full(len(base), filters + c - 2)], axis=1)
        rows_used, cols_used = inner1 - inner0, cv
    return _Folds(lines, rows_used, cols_used, ifmap.astype(np.int64), flt.astype(np.int64), writes.astype(np.int64))


@dataclass(frozen=True)
class _Sram:
    """One read SRAM in SCALE-Sim's set model, for an operand stream of `entries` elements."""

    entry_per_set: int
    sets: int
    active: int  # sets in the active window
    prefetch: int  # sets one slide brings in; 0 when the operand fits
    slide_lines: int  # cycles one slide takes on the DRAM port (one more for the port's latency)
    fill: int  # words of the first fill, before the layer starts
    slide_words: int  # words one slide moves


def _sram(entries: int, words: int, words_per_cycle: int) -> _Sram:
    per_set = math.ceil(words / _SETS)
    sets = entries // per_set + 1  # SCALE-Sim always closes with a (possibly empty) last set
    active_words = math.ceil(words * _ACTIVE)
    active = min(sets, math.ceil(active_words / per_set))
    prefetch = min(sets - active, math.ceil((words - active_words) / per_set))
    half = words - active_words
    return _Sram(
        per_set, sets, active, prefetch, math.ceil(half / words_per_cycle) + 1, min(entries, active_words), half
    )


def _read_misses(demand: np.ndarray, sram: _Sram) -> list[tuple[int, int]]:
    """(line, slides) for every demand that falls outside the SRAM's window, walking the folds in order."""
    if sram.prefetch == 0:
        return []
    events: list[tuple[int, int]] = []
    start, n, a, p = 0, sram.sets, sram.active, sram.prefetch
    for first, last, line, span in demand.tolist():
        s0, s1 = first // sram.entry_per_set, (last - 1) // sram.entry_per_set + 1
        per_set = span / max(s1 - s0, 1)
        rel = (s0 - start) % n
        if rel >= a:  # the fold starts outside the window: slide until its first set is in
            slides = math.ceil((rel - a + 1) / p)
            events.append((line, slides))
            start = (start + slides * p) % n
            rel = (s0 - start) % n
        s = s0 + (a - rel)  # the first set past the window
        while s < s1:
            events.append((line + int((s - s0) * per_set), 1))
            start = (start + p) % n
            s += p
    return events


def _write_events(writes: np.ndarray, drain: int) -> list[tuple[int, int]]:
    """(line, count) of the ofmap writes that start a drain (count j*drain + 1) or fill the SRAM ((j+1)*drain)."""
    total = int(writes[:, 0].sum())
    if drain <= 0 or total <= drain:
        return []
    done = np.cumsum(writes[:, 0])
    marks = np.arange(drain + 1, total + 1, drain)
    counts = np.sort(np.concatenate([marks, marks[1:] - 1]))
    fold = np.searchsorted(done, counts)
    before = np.where(fold > 0, done[np.maximum(fold - 1, 0)], 0)
    frac = (counts - before) / writes[fold, 0]
    lines = writes[fold, 1] + (frac * writes[fold, 2]).astype(np.int64)
    return list(zip(lines.tolist(), counts.tolist(), strict=True))


def _stalls(
    reads: list[list[tuple[int, int]]], slides: list[int], writes: list[tuple[int, int]], drain: int, drain_lines: int
) -> int:
    """Stall cycles from the read misses and the ofmap writes, kept line by line as SCALE-Sim keeps them.

    A read port's transfers queue one after another from the start (the first fill is free); a slide
    that ends after its data is demanded stalls the array. SCALE-Sim adds a positive gap twice and a
    negative one once, so a late slide overshoots and the next one catches up: kept as it is, since
    this engine is checked against it. A drain of half the ofmap SRAM starts once the SRAM is over
    half full and the last drain has ended; a full SRAM waits for it. On one line the array waits
    for the slowest of the three.
    """
    events = sorted(
        [(line, port, n) for port, misses in enumerate(reads) for line, n in misses]
        + [(line, 2, count) for line, count in writes]
    )
    stall, ready, drains = 0, [1, 1], [0]
    for line, group in itertools.groupby(events, key=lambda e: e[0]):
        cycle, wait = line + stall, 0
        for _, port, n in group:
            if port < 2:
                offset = 1
                for _ in range(n):
                    ready[port] += slides[port]
                    gap = ready[port] - (cycle + offset)
                    offset += gap + max(gap, 0)
                wait = max(wait, offset - 1)
            elif n % drain == 1 or drain == 1:  # a drain starts when the last one has ended
                drains.append(max(cycle, drains[-1]) + drain_lines)
            else:  # the SRAM is full: wait for the drain that makes room to start
                wait = max(wait, drains[-1] - drain_lines - cycle)
        stall += wait
    return stall


def gemm_cost(layer: ConvLayer, acc: Accelerator) -> LayerCost:
    """Cycles, stalls, utilisation and DRAM traffic of one convolution (all its groups, one after another)."""
    npx, window, filters = layer.gemm
    packed = acc.binary_macs_per_pe if layer.binary and acc.binary_macs_per_pe else 1
    window = math.ceil(window / packed)  # XNOR-popcount lanes: `packed` 1-bit MACs in one PE and cycle
    folds = _folds(npx, window, filters, acc)
    words = [kb * 1024 * 8 // acc.bits for kb in (acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb)]
    bw = max(1, acc.dram_bytes_per_cycle * 8 // acc.bits)  # SRAM words a DRAM port moves per cycle
    srams = [_sram(npx * window, words[0], bw), _sram(window * filters, words[1], bw)]
    misses = [_read_misses(folds.ifmap, srams[0]), _read_misses(folds.filter, srams[1])]
    drain = words[2] - math.ceil(words[2] * _ACTIVE)
    writes = _write_events(folds.writes, drain)
    stall = _stalls(misses, [s.slide_lines for s in srams], writes, drain, math.ceil(drain / bw) + 1)
    compute = len(folds.rows_used) * folds.lines
    read_words = sum(s.fill + s.slide_words * sum(n for _, n in m) for s, m in zip(srams, misses, strict=True))
    write_words = int(folds.writes[:, 0].sum())
    total = (compute + stall) * layer.groups
    return LayerCost(
        name=layer.name,
        kind="gemm",
        compute_cycles=compute * layer.groups,
        stall_cycles=stall * layer.groups,
        macs=layer.macs,
        utilization=layer.macs / (acc.rows * acc.cols * packed * total),
        dram_read_bytes=read_words * layer.groups * acc.bits // 8,
        dram_write_bytes=write_words * layer.groups * acc.bits // 8,
    )


def vector_cost(layer: VectorLayer, acc: Accelerator) -> LayerCost:
    """Vector-unit work: the slower of the arithmetic at `lanes` a cycle and the DRAM traffic."""
    compute = math.ceil(layer.ops / acc.lanes)
    traffic = math.ceil((layer.read_elems + layer.write_elems) * acc.word_bytes / acc.dram_bytes_per_cycle)
    return LayerCost(
        name=layer.name,
        kind="vector",
        compute_cycles=compute,
        stall_cycles=max(0, traffic - compute),
        macs=0,
        utilization=0.0,
        dram_read_bytes=layer.read_elems * acc.word_bytes,
        dram_write_bytes=layer.write_elems * acc.word_bytes,
    )
