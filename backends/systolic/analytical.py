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

import dataclasses
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


def _blocks(size: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, size, tile)
    return starts, np.minimum(starts + tile, size)


def _fold_shape(npx: int, window: int, filters: int, acc: Accelerator) -> tuple[int, int, int]:
    """(row folds, column folds, lines per fold) of a GEMM, per SCALE-Sim's mapping (module docstring)."""
    r, c = acc.rows, acc.cols
    dims = {"os": (npx, filters, window), "ws": (window, filters, npx), "is": (window, npx, filters)}
    rows, cols, streamed = dims[acc.dataflow]
    extra = r + c - 2 if acc.dataflow == "os" else 2 * r + c - 2
    return math.ceil(rows / r), math.ceil(cols / c), streamed + extra


def _writes(npx: int, window: int, filters: int, acc: Accelerator) -> np.ndarray:
    """(ofmap words written, first line, lines spanned) of each fold, in fold order.

    Output stationary writes each output once, at the end of its fold; the other two
    write a partial sum per row fold, streamed over the fold.
    """
    row_folds, col_folds, lines = _fold_shape(npx, window, filters, acc)
    base = np.arange(row_folds * col_folds) * lines
    r, c = acc.rows, acc.cols
    if acc.dataflow == "os":
        f0, f1 = _blocks(filters, c)
        p0, p1 = _blocks(npx, r)
        words = np.outer(f1 - f0, p1 - p0).ravel()
        return np.stack([words, base + window, np.full(len(base), r + c - 2)], 1)
    outputs = npx if acc.dataflow == "ws" else filters  # written by each column of the array
    c0, c1 = _blocks(filters if acc.dataflow == "ws" else npx, c)
    words = np.repeat((c1 - c0) * outputs, row_folds)
    return np.stack([words, base + 2 * r, np.full(len(base), outputs + c - 2)], 1)


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


def _antidiagonal(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block's values in SCALE-Sim's skewed order (anti-diagonals, bottom row first), and each one's diagonal."""
    rows, cols = np.indices(block.shape)
    order = np.lexsort((-rows.ravel(), (rows + cols).ravel()))
    values, diagonals = block.ravel()[order], (rows + cols).ravel()[order]
    keep = values >= 0  # -1 pads a partial fold
    return values[keep], diagonals[keep]


def _tiles(matrix: np.ndarray, size: int, axis: int) -> np.ndarray:
    """`matrix` cut into tiles of `size` along `axis` (the last one padded with -1), stacked on a new first axis."""
    pad = -matrix.shape[axis] % size
    widths = [(0, 0), (0, 0)]
    widths[axis] = (0, pad)
    padded = np.pad(matrix, widths, constant_values=-1)
    if axis == 0:
        return padded.reshape(-1, size, matrix.shape[1])
    return padded.reshape(matrix.shape[0], -1, size).transpose(1, 0, 2)


def _ifmap_values(layer: ConvLayer) -> np.ndarray:
    """The (output pixel x window tap) matrix of input addresses SCALE-Sim builds, taps channel-innermost."""
    npx, window, _ = layer.gemm
    pixel, tap = np.arange(npx)[:, None], np.arange(window)[None, :]
    out_row, out_col = np.divmod(pixel, layer.out_w)
    ky, rest = np.divmod(tap, layer.filter_w * layer.channels)
    kx, channel = np.divmod(rest, layer.channels)
    return ((out_row * layer.stride_h + ky) * layer.ifmap_w + out_col * layer.stride_w + kx) * layer.channels + channel


@dataclass(frozen=True)
class _Stream:
    """How SCALE-Sim fetches one read operand and demands it fold by fold."""

    fetch: np.ndarray  # values in fetch order
    blocks: list[tuple[np.ndarray, np.ndarray]]  # distinct fold demands: values in demand order, line of each
    order: np.ndarray  # the block each fold demands, in fold order
    prefix: int  # idle lines at the start of a fold before the first demand


def _diagonal_stream(tiles: np.ndarray, order: np.ndarray, prefix: int) -> _Stream:
    """Tiles stacked and fetched by anti-diagonal; a fold demands one tile, skewed."""
    fetch = _antidiagonal(tiles.reshape(-1, tiles.shape[2]))[0]
    return _Stream(fetch, [_antidiagonal(tile) for tile in tiles], order, prefix)


def _stationary_stream(tiles: np.ndarray, rows: int) -> _Stream:
    """Tiles stacked and fetched row by row; each fold loads its own `rows`-row block, one row a line, bottom first."""
    fetch = tiles.reshape(-1)
    blocks = []
    for tile in tiles:
        for block in _tiles(tile, rows, 0):
            flipped = block[::-1]
            line = np.repeat(np.arange(rows), flipped.shape[1])
            keep = flipped.ravel() >= 0
            blocks.append((flipped.ravel()[keep], line[keep]))
    return _Stream(fetch[fetch >= 0], blocks, np.arange(len(blocks)), 0)


def _streams(layer: ConvLayer, acc: Accelerator) -> tuple[_Stream, _Stream]:
    """The ifmap and filter streams of SCALE-Sim's compute module for the layer's dataflow."""
    values = _ifmap_values(layer)
    npx, window, filters = layer.gemm
    weights = np.arange(filters)[None, :] * window + np.arange(window)[:, None]  # (taps x filters), filter-major
    r, c = acc.rows, acc.cols
    row_folds, col_folds, _ = _fold_shape(npx, window, filters, acc)
    inner = np.tile(np.arange(row_folds), col_folds)  # fold order: column folds outer, row folds inner
    outer = np.repeat(np.arange(col_folds), row_folds)
    if acc.dataflow == "os":  # ifmap: pixel tiles (taps x R); filter: filter tiles (taps x C)
        return (
            _diagonal_stream(_tiles(values, r, 0).transpose(0, 2, 1), inner, 0),
            _diagonal_stream(_tiles(weights, c, 1), outer, 0),
        )
    if acc.dataflow == "ws":  # ifmap: tap tiles (pixels x R); filter: stationary (R taps x C filters)
        return _diagonal_stream(_tiles(values, r, 1), inner, r), _stationary_stream(_tiles(weights, c, 1), r)
    # "is": ifmap: stationary (R taps x C pixels); filter: tap tiles (filters x R)
    return (
        _stationary_stream(_tiles(values.T, c, 1), r),
        _diagonal_stream(_tiles(weights, r, 0).transpose(0, 2, 1), inner, r),
    )


def _misses(stream: _Stream, sram: _Sram, fold_lines: int) -> list[tuple[int, int]]:
    """(line, slides) each time a demanded value is in no set of the SRAM's window, as SCALE-Sim looks values up.

    The window only moves forward, by the prefetch half, round the ring of sets; a
    value just behind it (diagonal order interleaves neighbouring folds; stationary
    blocks are loaded bottom row first) sends it all the way round. A value that recurs
    (overlapping convolution windows) is found in whichever set holds it. Demands are
    checked a window's worth at a time against each value's sorted sets.
    """
    if sram.prefetch == 0:
        return []
    n, a, p = sram.sets, sram.active, sram.prefetch
    keys = np.unique(stream.fetch * (n + 1) + np.arange(len(stream.fetch)) // sram.entry_per_set)

    def count(wanted: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return np.searchsorted(keys, wanted * (n + 1) + hi) - np.searchsorted(keys, wanted * (n + 1) + lo)

    def present(wanted: np.ndarray, start: int) -> np.ndarray:
        end = start + a
        return (count(wanted, start, min(end, n)) + (count(wanted, 0, end - n) if end > n else 0)) > 0

    events: list[tuple[int, int]] = []
    start, chunk = 0, a * sram.entry_per_set
    for fold, index in enumerate(stream.order.tolist()):
        block, diagonals = stream.blocks[index]
        i = 0
        while i < len(block):
            hit = present(block[i : i + chunk], start)
            if hit.all():
                i += chunk
                continue
            i += int(np.argmin(hit))
            slides = 0
            while not present(block[i : i + 1], start)[0]:
                start, slides = (start + p) % n, slides + 1
            events.append((fold * fold_lines + stream.prefix + int(diagonals[i]), slides))
            i += 1
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
    this engine is checked against it. A drain of half the ofmap SRAM starts with the first write
    after the SRAM is over half full and the last drain has ended (a read stall can delay it); a
    full SRAM waits for it. On one line the array waits for the slowest of the three.
    """
    events = sorted(
        [(line, port, n) for port, misses in enumerate(reads) for line, n in misses]
        + [(line, 2, count) for line, count in writes]
    )
    stall, ready = 0, [-1, -1]
    drain_end, pending, previous = 0, False, -1  # a drain waits for the last one to end while `pending`
    for line, group in itertools.groupby(events, key=lambda e: e[0]):
        if pending and line + stall >= drain_end:  # it started with the first write past the last drain's end
            drain_end, pending = max(drain_end, previous + 1 + stall) + drain_lines, False
        cycle, wait = line + stall, 0
        for _, port, n in group:
            if port < 2:
                offset = 1
                for _ in range(n):
                    ready[port] += slides[port]
                    gap = ready[port] - (cycle + offset)
                    offset += gap + max(gap, 0)
                wait = max(wait, offset - 1)
            elif n % drain == 1 or drain == 1:  # over half full: drain now, or once the last drain ends
                if cycle >= drain_end:
                    drain_end = cycle + drain_lines
                else:
                    pending = True
            elif pending:  # full before the waiting drain could start: wait for it
                wait = max(wait, drain_end - cycle)
                drain_end, pending = drain_end + drain_lines, False
        stall += wait
        previous = line
    return stall


def gemm_cost(layer: ConvLayer, acc: Accelerator) -> LayerCost:
    """Cycles, stalls, utilisation and DRAM traffic of one convolution (all its groups, one after another)."""
    packed = acc.binary_macs_per_pe if layer.binary and acc.binary_macs_per_pe else 1
    # XNOR-popcount lanes: `packed` 1-bit channels share one word, and one PE does them in one cycle.
    words_layer = dataclasses.replace(layer, channels=math.ceil(layer.channels / packed))
    npx, window, filters = words_layer.gemm
    row_folds, col_folds, lines = _fold_shape(npx, window, filters, acc)
    words = [kb * 1024 * 8 // acc.bits for kb in (acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb)]
    bw = max(1, acc.dram_bytes_per_cycle * 8 // acc.bits)  # SRAM words a DRAM port moves per cycle
    srams = [_sram(npx * window, words[0], bw), _sram(window * filters, words[1], bw)]
    misses: list[list[tuple[int, int]]] = [[], []]
    if any(sram.prefetch for sram in srams):  # else both operands fit: nothing to slide
        misses = [_misses(stream, sram, lines) for stream, sram in zip(_streams(words_layer, acc), srams, strict=True)]
    writes = _writes(npx, window, filters, acc)
    drain = words[2] - math.ceil(words[2] * _ACTIVE)
    drain_lines = math.ceil(drain / bw) + 1
    stall = _stalls(misses, [s.slide_lines for s in srams], _write_events(writes, drain), drain, drain_lines)
    compute = row_folds * col_folds * lines - 1  # SCALE-Sim counts to the last line's cycle
    read_words = sum(s.fill + s.slide_words * sum(n for _, n in m) for s, m in zip(srams, misses, strict=True))
    total = (compute + stall) * layer.groups
    return LayerCost(
        name=layer.name,
        kind="gemm",
        compute_cycles=compute * layer.groups,
        stall_cycles=stall * layer.groups,
        macs=layer.macs,
        utilization=layer.macs / (acc.rows * acc.cols * packed * total),
        dram_read_bytes=read_words * layer.groups * acc.bits // 8,
        dram_write_bytes=int(writes[:, 0].sum()) * layer.groups * acc.bits // 8,
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
