"""The fast engine: cycles of every layer on a systolic array, SCALE-Sim's model without its per-cycle traces.

Compute follows SCALE-Sim's mapping exactly. A layer is a GEMM of an
(output pixels Npx) x (window W) operand and a (W) x (filters F) operand; the
dataflow decides which two dimensions lie on the array and which streams in time:

    dataflow  rows  cols  streamed  lines per fold
    os        Npx   F     W         W + R + C - 2
    ws        W     F     Npx       Npx + 2R + C - 2
    is        W     Npx   F         F + 2R + C - 2

with ceil(rows/R) * ceil(cols/C) folds (R x C the array), one cycle a line.

Memory is SCALE-Sim's double-buffered scratchpad: each read SRAM holds a window
over its operand's fetch order, in sets of 1/100 of its size, half active and
half prefetch; a demanded value in no set of the window slides the window by the
prefetch half, which takes that half's transfer over the DRAM port, and the array
stalls when a slide is not back in time. The ofmap SRAM drains half at a time and
stalls the array when full; a drain starts only on a written word, so when the
SRAM fills with a fold's last word the next drain waits for the next fold's
first one, and a fold opens with lines that write nothing (2R - 1 of them under
ws and is). Layers whose writes outrun the DRAM port (1x1 layers of many filters
under is) pay those lines on every drain: an engine that started the drain as
soon as the full SRAM's wait ended was 5.7% low on ResNet-50's 56x56x64 1x1 to
256 under is (`_OfmapSram`). SCALE-Sim generates every operand address of every
cycle and walks them one by one; this engine builds the same fetch and demand
orders as arrays and checks a window's worth of demands at once, and places the
ofmap words on their lines by the skew of its demand matrix, so its slides and
drains, and hence its cycles, are SCALE-Sim's (`benchmarks/systolic_agreement.py`
checks it layer by layer) at a small fraction of the time.

Binary (1-bit) layers pack `binary_macs_per_pe` channels into a word and into one
PE-cycle. Pooling and element-wise work runs on a vector unit of `lanes` elements
a cycle, bounded by DRAM traffic.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.systolic.accelerator import Accelerator
from backends.systolic.layers import ConvLayer, VectorLayer

ENGINE_VERSION = 3  # part of every measurement's key: raise it when a change alters any figure
_SETS = 100  # SCALE-Sim splits each read SRAM into this many sets
_FIRST_CHUNK = 256  # demands checked at once after a miss
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


def _fold_shape(npx: int, window: int, filters: int, acc: Accelerator) -> tuple[int, int, int]:
    """(row folds, column folds, lines per fold) of a GEMM, per SCALE-Sim's mapping (module docstring)."""
    r, c = acc.rows, acc.cols
    dims = {"os": (npx, filters, window), "ws": (window, filters, npx), "is": (window, npx, filters)}
    rows, cols, streamed = dims[acc.dataflow]
    extra = r + c - 2 if acc.dataflow == "os" else 2 * r + c - 2
    return math.ceil(rows / r), math.ceil(cols / c), streamed + extra


class _WriteOrder:
    """When the array writes each ofmap word, line by line, as SCALE-Sim's ofmap demand matrix has it.

    Each fold writes a block of h rows x w columns, skewed one line a column (SCALE-Sim's
    `skew_matrix`), from line `first` of the fold: h x w words over h + w - 1 lines, rising and
    falling at the ends, and none in the fold's first `first` lines. Output stationary writes
    its R x C outputs (partial row folds at the bottom) after streaming the window, so
    `first` = T - 1 (+ the unused rows); the other two write a partial sum per row fold, h =
    the outputs of one column (pixels under ws, filters under is), from `first` = 2R - 1.
    """

    def __init__(self, npx: int, window: int, filters: int, acc: Accelerator) -> None:
        r, c = acc.rows, acc.cols
        row_folds, col_folds, self.fold_lines = _fold_shape(npx, window, filters, acc)
        columns = npx if acc.dataflow == "is" else filters  # what lies along the array's columns
        col_used = np.minimum(c, columns - np.arange(col_folds) * c)
        if acc.dataflow == "os":
            row_used = np.minimum(r, npx - np.arange(row_folds) * r)
            shapes = [(window - 1 + r - int(h), int(h), int(w)) for w in col_used for h in row_used]
        else:
            outputs = npx if acc.dataflow == "ws" else filters  # written by each column of the array
            shapes = [(2 * r - 1, outputs, int(w)) for w in col_used for _ in range(row_folds)]
        kinds = list(dict.fromkeys(shapes))  # at most four distinct folds: partial rows and columns
        self.kind = np.array([kinds.index(shape) for shape in shapes])
        self.cum = [self._cumulative(*shape) for shape in kinds]
        self.before_fold = np.concatenate([[0], np.cumsum([h * w for _, h, w in shapes])])
        self.total = int(self.before_fold[-1])

    def _cumulative(self, first: int, h: int, w: int) -> np.ndarray:
        """Words a fold of this shape writes before each of its lines (one more entry: the fold's total)."""
        k = np.arange(self.fold_lines) - first  # skewed row of each line
        per_line = np.clip(np.minimum(k, w - 1) - np.maximum(0, k - h + 1) + 1, 0, None)
        return np.concatenate([[0], np.cumsum(per_line)])

    def written_before(self, line: int) -> int:
        """Words written on the lines before `line`."""
        fold, local = divmod(max(line, 0), self.fold_lines)
        if fold >= len(self.kind):
            return self.total
        return int(self.before_fold[fold] + self.cum[self.kind[fold]][local])

    def line_of(self, word: int) -> int:
        """The line on which the `word`-th word (from 1) is written."""
        fold = int(np.searchsorted(self.before_fold, word)) - 1
        local = int(np.searchsorted(self.cum[self.kind[fold]], word - self.before_fold[fold])) - 1
        return fold * self.fold_lines + local


class _OfmapSram:
    """SCALE-Sim's ofmap SRAM (its `write_buffer`), drain by drain rather than word by word.

    SCALE-Sim checks each written word: while a drain runs (cycle < its end), a word that
    leaves no free space stalls the array until the drain ends, and nothing else happens;
    otherwise, once fewer than the active half are free, the word starts a drain of the next
    half's worth of trace lines. So a drain only ever starts on a write: after a full SRAM
    waits for the last drain, the next drain starts with the next word, not when the wait
    ends. When the SRAM fills with a fold's last word, as it does for a layer whose fold writes
    a power of two dividing half the SRAM (1x1 layers with 2^k filters under is), that next
    word is a fold's `first` write-free lines later, and every drain pays those lines too.
    The space a drain frees is counted in trace lines of `words_per_cycle` words, of which
    only the last is checked for padding; each drain start closes a partial line, so a
    partial line inside a later drain counts as full, and the free space drifts as SCALE-Sim's
    does.
    """

    def __init__(self, order: _WriteOrder, words: int, words_per_cycle: int) -> None:
        self.order, self.bw = order, words_per_cycle
        self.active = math.ceil(words * _ACTIVE)  # a drain starts once fewer words than this are free
        self.drain_lines = math.ceil((words - self.active) / words_per_cycle)  # trace lines one drain moves
        self.free = words
        self.written = 0  # words written up to the last event
        self.settled = 0  # words on the lines already run, which can start nothing more
        self.drain_end = 0  # cycle of the running drain's last line
        self.closed = 0  # words written when the last drain started
        self.lines = 0  # trace lines so far
        self.drained = 0  # trace lines drained so far
        self.partial: dict[int, int] = {}  # words in each trace line that a drain start closed early

    def _next(self, stall: int) -> tuple[int, bool] | None:
        """The next word that stalls (False) or starts a drain (True), if words from here on are `stall` late."""
        first = max(self.written, self.settled) + 1
        late = self.order.written_before(self.drain_end - stall) + 1  # the first word at or after the drain's end
        full = max(first, self.written + self.free)  # the word that leaves no free space
        event = (full, False) if full < late else (max(first, self.written + self.free - self.active + 1, late), True)
        return event if event[0] <= self.order.total else None

    def next_line(self, stall: int) -> int | None:
        """The line of the next event, if lines from here on are `stall` cycles late."""
        event = self._next(stall)
        return None if event is None else self.order.line_of(event[0])

    def run_line(self, line: int, stall: int) -> int:
        """Every event on `line`, which starts `stall` cycles late; returns the cycles the ofmap holds it."""
        wait = 0
        while (event := self._next(stall + wait)) is not None and self.order.line_of(event[0]) == line:
            word, starts = event
            self.free -= word - self.written
            self.written = word
            if starts:
                self._drain(line + stall + wait)
            else:
                wait = self.drain_end - line - stall
        return wait

    def settle(self, line: int) -> None:
        """Lines up to `line` have run: a stall found there (a late read) delays only the words after them."""
        self.settled = self.order.written_before(line + 1)

    def _drain(self, cycle: int) -> None:
        segment, self.closed = self.written - self.closed, self.written
        if segment % self.bw:
            self.partial[self.lines + segment // self.bw] = segment % self.bw
        self.lines += math.ceil(segment / self.bw)
        end = min(self.drained + self.drain_lines, self.lines)
        self.free += (end - self.drained - 1) * self.bw + self.partial.get(end - 1, self.bw)
        self.drain_end = cycle + end - self.drained - 1  # one trace line a cycle, the port adding no latency
        self.drained = end


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


@functools.lru_cache(maxsize=64)  # layers of a network share tile shapes; the arrays are only read
def _antidiagonal_order(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major indices of a rows x cols matrix in SCALE-Sim's skewed order, and each one's diagonal.

    Anti-diagonal by anti-diagonal, bottom row first within one; placed by counting, no sort.
    """
    r, c = np.divmod(np.arange(rows * cols), cols)
    d = r + c
    diagonals = np.arange(rows + cols - 1)
    lengths = np.minimum(diagonals, rows - 1) - np.maximum(0, diagonals - cols + 1) + 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    order = np.empty(rows * cols, dtype=np.int64)
    order[starts[d] + c - (d - np.minimum(d, rows - 1))] = np.arange(rows * cols)
    return order, d[order]


def _tiles(matrix: np.ndarray, size: int, axis: int) -> np.ndarray:
    """`matrix` cut into tiles of `size` along `axis` (the last one padded with -1), stacked on a new first axis."""
    pad = -matrix.shape[axis] % size
    widths = [(0, 0), (0, 0)]
    widths[axis] = (0, pad)
    padded = np.pad(matrix, widths, constant_values=-1)
    if axis == 0:
        return padded.reshape(-1, size, matrix.shape[1])
    return padded.reshape(matrix.shape[0], -1, size).transpose(1, 0, 2)


@dataclass(frozen=True)
class _Stream:
    """How SCALE-Sim fetches one read operand and demands it: operand entries (row-major ids) in order."""

    fetch: np.ndarray  # entry ids in fetch order
    demand: np.ndarray  # entry ids in demand order over all folds, -1 where a partial fold is padded
    lines: np.ndarray  # the line of each demand


def _diagonal_stream(tiles: np.ndarray, order: np.ndarray, prefix: int, fold_lines: int) -> _Stream:
    """Tiles stacked and fetched by anti-diagonal; fold k demands tile `order[k]`, skewed, after `prefix` lines."""
    count, rows, cols = tiles.shape
    stacked, _ = _antidiagonal_order(count * rows, cols)
    fetch = tiles.reshape(-1)[stacked]
    within, diagonals = _antidiagonal_order(rows, cols)
    demand = tiles.reshape(count, -1)[:, within][order]
    lines = (np.arange(len(order)) * fold_lines + prefix)[:, None] + diagonals[None, :]
    return _Stream(fetch[fetch >= 0], demand.reshape(-1), lines.reshape(-1))


def _stationary_stream(tiles: np.ndarray, rows: int, fold_lines: int) -> _Stream:
    """Tiles stacked and fetched row by row; each fold loads its own `rows`-row block, one row a line, bottom first."""
    count, height, cols = tiles.shape
    fetch = tiles.reshape(-1)
    pad = -height % rows
    blocks = np.pad(tiles, ((0, 0), (0, pad), (0, 0)), constant_values=-1).reshape(-1, rows, cols)[:, ::-1]
    lines = (np.arange(len(blocks)) * fold_lines)[:, None] + np.repeat(np.arange(rows), cols)[None, :]
    return _Stream(fetch[fetch >= 0], blocks.reshape(-1), lines.reshape(-1))


def _stream(layer: ConvLayer, acc: Accelerator, fold_lines: int, operand: str) -> _Stream:
    """The ifmap or filter stream of SCALE-Sim's compute module for the layer's dataflow.

    Entry ids are row-major in the ifmap operand (pixels x taps) and the filter operand
    (taps x filters); folds go column fold outer, row fold inner.
    """
    npx, window, filters = layer.gemm
    r, c = acc.rows, acc.cols
    row_folds, col_folds, _ = _fold_shape(npx, window, filters, acc)
    row_fold = np.tile(np.arange(row_folds), col_folds)  # each fold's row fold
    col_fold = np.repeat(np.arange(col_folds), row_folds)  # and column fold
    if operand == "ifmap":
        ids = np.arange(npx * window).reshape(npx, window)
        if acc.dataflow == "os":  # pixel tiles (taps x R)
            return _diagonal_stream(_tiles(ids, r, 0).transpose(0, 2, 1), row_fold, 0, fold_lines)
        if acc.dataflow == "ws":  # tap tiles (pixels x R)
            return _diagonal_stream(_tiles(ids, r, 1), row_fold, r, fold_lines)
        return _stationary_stream(_tiles(ids.T, c, 1), r, fold_lines)  # is: (R taps x C pixels) blocks
    ids = np.arange(window * filters).reshape(window, filters)
    if acc.dataflow == "os":  # filter tiles (taps x C)
        return _diagonal_stream(_tiles(ids, c, 1), col_fold, 0, fold_lines)
    if acc.dataflow == "ws":  # (R taps x C filters) blocks
        return _stationary_stream(_tiles(ids, c, 1), r, fold_lines)
    return _diagonal_stream(
        _tiles(ids, r, 0).transpose(0, 2, 1), row_fold, r, fold_lines
    )  # is: tap tiles (filters x R)


class _Values:
    """What an operand's entries hold. A filter's every entry is its own value; an ifmap's are input
    addresses, which overlapping convolution windows repeat (SCALE-Sim builds them taps channel-innermost)."""

    def __init__(self, layer: ConvLayer | None) -> None:
        self.layer = layer
        self.table: np.ndarray | None = None
        if layer is not None:
            npx, window, _ = layer.gemm
            out_row, out_col = np.divmod(np.arange(npx), layer.out_w)
            ky, rest = np.divmod(np.arange(window), layer.filter_w * layer.channels)
            kx, channel = np.divmod(rest, layer.channels)
            row = (out_row * layer.stride_h)[:, None] + ky[None, :]
            col = (out_col * layer.stride_w)[:, None] + kx[None, :]
            self.table = ((row * layer.ifmap_w + col) * layer.channels + channel[None, :]).reshape(-1)

    def of(self, ids: np.ndarray) -> np.ndarray:
        return ids if self.table is None else self.table[ids]

    def holders(self, value: int) -> np.ndarray:
        """The entry ids that hold `value`."""
        layer = self.layer
        if layer is None:
            return np.array([value])
        position, channel = divmod(value, layer.channels)
        y, x = divmod(position, layer.ifmap_w)
        ky, kx = np.divmod(np.arange(layer.filter_h * layer.filter_w), layer.filter_w)
        py, ry = np.divmod(y - ky, layer.stride_h)
        px, rx = np.divmod(x - kx, layer.stride_w)
        ok = (ry == 0) & (rx == 0) & (py >= 0) & (py < layer.out_h) & (px >= 0) & (px < layer.out_w)
        taps = (ky[ok] * layer.filter_w + kx[ok]) * layer.channels + channel
        return (py[ok] * layer.out_w + px[ok]) * layer.gemm[1] + taps


def _misses(stream: _Stream, values: _Values, sram: _Sram) -> list[tuple[int, int]]:
    """(line, slides) each time a demanded value is in no set of the SRAM's window, as SCALE-Sim looks values up.

    The window only moves forward, by the prefetch half, round the ring of sets; a
    value just behind it (diagonal order interleaves neighbouring folds; stationary
    blocks are loaded bottom row first) sends it all the way round. Demands are checked
    in growing runs, up to a window's worth at a time: by the set of their own entry when every value is held
    once, else against the values stamped in the window (overlapping convolution windows
    repeat values, and SCALE-Sim finds one in whichever set holds it). At a miss the
    slides follow from the sets of the value's holders.
    """
    n, a, p, e = sram.sets, sram.active, sram.prefetch, sram.entry_per_set
    position = np.empty(int(stream.fetch.max()) + 1, dtype=np.int64)
    position[stream.fetch] = np.arange(len(stream.fetch))
    if values.table is None:

        def present(ids: np.ndarray, start: int) -> np.ndarray:
            return (ids < 0) | ((position[np.maximum(ids, 0)] // e - start) % n < a)

        def restamp(start: int) -> None:
            pass

    else:
        fetched = values.of(stream.fetch)
        padding = int(fetched.max()) + 1
        stamp = np.zeros(padding + 1, dtype=np.int64)
        demanded = values.of(np.maximum(stream.demand, 0))
        demanded[stream.demand < 0] = padding  # always present
        window = [0]

        def present(ids: np.ndarray, start: int) -> np.ndarray:
            return stamp[demanded[ids]] == window[0]

        def restamp(start: int) -> None:
            window[0] += 1
            end = start + a
            stamp[fetched[start * e : min(end, n) * e]] = window[0]
            if end > n:
                stamp[fetched[: (end - n) * e]] = window[0]
            stamp[padding] = window[0]

    events: list[tuple[int, int]] = []
    start, i, chunk = 0, 0, _FIRST_CHUNK
    restamp(start)
    steps = np.arange(1, n // p + 2)
    everything = np.arange(len(stream.demand)) if values.table is not None else stream.demand
    while i < len(stream.demand):
        hit = present(everything[i : i + chunk], start)
        if hit.all():
            i, chunk = i + chunk, min(2 * chunk, a * e)  # misses come in runs: look a little way first
            continue
        chunk = _FIRST_CHUNK
        i += int(np.argmin(hit))
        value = int(values.of(stream.demand[i : i + 1])[0])
        sets = position[values.holders(value)] // e
        inside = ((sets[None, :] - start - steps[:, None] * p) % n) < a  # (slides, holders)
        slides = int(steps[np.argmax(inside.any(axis=1))])
        start = (start + slides * p) % n
        restamp(start)
        events.append((int(stream.lines[i]), slides))
        i += 1
    return events


def _slides_done(ready: int, cycle: int, length: int, count: int) -> tuple[int, int]:
    """`count` back-to-back slides of `length` cycles each, asked for at `cycle`: when the port is free, and the stall.

    SCALE-Sim steps its clock per slide, adding a positive gap twice and a negative one
    once. The gap g of the next slide is `length - max(g, 0)`: within three steps it
    lies in [0, length] and then alternates between g and length - g, so a trip round
    the ring of thousands of slides costs a few steps here.
    """
    gap = ready + length - (cycle + 1)
    for _ in range(min(count, 3) - 1):
        gap = length - max(gap, 0)
    if count > 3 and (count - 3) % 2:
        gap = length - gap
    ready += count * length
    return ready, ready + max(gap, 0) - cycle - 1


def _stalls(reads: list[list[tuple[int, int]]], slides: list[int], ofmap: _OfmapSram) -> int:
    """Stall cycles from the read misses and the ofmap writes, kept line by line as SCALE-Sim keeps them.

    A read port's transfers queue one after another from the start (the first fill is free); a slide
    that ends after its data is demanded stalls the array. SCALE-Sim adds a positive gap twice and a
    negative one once, so a late slide overshoots and the next one catches up: kept as it is, since
    this engine is checked against it (`_slides_done`). The ofmap's events follow from the stall so
    far (`_OfmapSram`), so the next line with an event of either kind is taken in turn; on one line
    the array waits for the slowest of the three.
    """
    events = sorted((line, port, n) for port, misses in enumerate(reads) for line, n in misses)
    by_line = [(line, list(group)) for line, group in itertools.groupby(events, key=lambda e: e[0])]
    stall, ready, i = 0, [-1, -1], 0
    while True:
        written = ofmap.next_line(stall)
        line = min(x for x in (written, by_line[i][0] if i < len(by_line) else None, math.inf) if x is not None)
        if line == math.inf:
            return stall
        wait = ofmap.run_line(line, stall) if line == written else 0
        if i < len(by_line) and by_line[i][0] == line:
            for port in (0, 1):  # one port's misses on one line: its slides run back to back
                count = sum(n for _, kind, n in by_line[i][1] if kind == port)
                if count:
                    ready[port], late = _slides_done(ready[port], line + stall, slides[port], count)
                    wait = max(wait, late)
            i += 1
        stall += wait
        ofmap.settle(line)


def as_words(layer: ConvLayer, acc: Accelerator) -> ConvLayer:
    """The layer as the array runs it: a binary layer's 1-bit channels packed `binary_macs_per_pe` to a word
    (XNOR-popcount lanes: one PE does them in one cycle)."""
    if not (layer.binary and acc.binary_macs_per_pe):
        return layer
    return dataclasses.replace(layer, channels=math.ceil(layer.channels / acc.binary_macs_per_pe))


def gemm_cost(layer: ConvLayer, acc: Accelerator) -> LayerCost:
    """Cycles, stalls, utilisation and DRAM traffic of one convolution (all its groups, one after another)."""
    words_layer = as_words(layer, acc)
    packed = 1 if words_layer is layer else acc.binary_macs_per_pe
    npx, window, filters = words_layer.gemm
    row_folds, col_folds, lines = _fold_shape(npx, window, filters, acc)
    words = [kb * 1024 * 8 // acc.bits for kb in (acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb)]
    bw = max(1, acc.dram_bytes_per_cycle * 8 // acc.bits)  # SRAM words a DRAM port moves per cycle
    srams = [_sram(npx * window, words[0], bw), _sram(window * filters, words[1], bw)]
    overlapping = layer.stride_h < layer.filter_h or layer.stride_w < layer.filter_w
    repeating = words_layer if overlapping else None  # only overlapping windows repeat ifmap values
    misses = [
        _misses(_stream(words_layer, acc, lines, operand), _Values(held), sram) if sram.prefetch else []
        for operand, held, sram in zip(("ifmap", "filter"), (repeating, None), srams, strict=True)
    ]  # an operand that fits its SRAM never slides
    writes = _WriteOrder(npx, window, filters, acc)
    stall = _stalls(misses, [s.slide_lines for s in srams], _OfmapSram(writes, words[2], bw))
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
        dram_write_bytes=writes.total * layer.groups * acc.bits // 8,
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
