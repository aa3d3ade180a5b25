"""Cycle-accurate figures for convolution layers from SCALE-Sim 3.0, the reference systolic-array simulator.

SCALE-Sim runs in a child Python process: it calls `exit()` on a missing file,
it is slow enough to need a timeout, and under NumPy 2 it must be patched in
memory (see `_CHILD`) without touching the installed package. All layers of one
call go through one child and one topology file, without trace files.

SCALE-Sim counts in one-byte words: one operand element is one word and one
"byte". Sizes and bandwidths are therefore given to it in elements of
`Accelerator.bits`, and every count it reports (accesses, reads, writes) is in
such elements.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from backends.systolic.accelerator import Accelerator
from backends.systolic.layers import ConvLayer
from ehdnas.core.errors import UserError

_RUN_NAME = "ehdnas"

# NumPy 2 refuses int() of a one-element array of rank >= 1, which SCALE-Sim 3.0 asks for as int(max(a)) with
# builtins.max over the rows of an (n, 1) array (read_buffer.prefetch_active_buffer and
# double_buffered_scratchpad.service_memory_requests). The child gives those two modules a `max` that unwraps a
# one-element array result, so int() gets a scalar as it did under NumPy 1. The exact SRAM sizes in words come
# from the config's [ehdnas] section: SCALE-Sim parses its kB sizes as integers, and a size in words need not be
# a whole number of KiB.
_CHILD = """
import builtins, configparser, sys
import numpy as np
from scalesim.memory import double_buffered_scratchpad_mem, read_buffer
from scalesim.scale_sim import scalesim

def _max(*args, **kwargs):
    result = builtins.max(*args, **kwargs)
    return result.item() if isinstance(result, np.ndarray) and result.size == 1 else result

read_buffer.max = double_buffered_scratchpad_mem.max = _max

config, topology, layout, out = sys.argv[1:5]
words = configparser.ConfigParser()
words.read(config)
sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology, layout=layout)
sim.config.ifmap_sz_kb, sim.config.filter_sz_kb, sim.config.ofmap_sz_kb = (
    int(words.get("ehdnas", key)) / 1024 for key in ("IfmapSramWords", "FilterSramWords", "OfmapSramWords")
)
sim.run_scale(top_path=out)
"""

# A layout row with unit factors and the natural orders; read by SCALE-Sim but unused, custom layouts being off.
_LAYOUT_HEADER = (
    "Layer name,IFMAP Height Intraline Factor,IFMAP Width Intraline Factor,Filter Height Intraline Factor,"
    "Filter Width Intraline Factor,Channel Intraline Factor,Num Filter Intraline Factor,IFMAP Height Intraline Order,"
    "IFMAP Width Intraline Order,Channel Intraline Order,IFMAP Height Interline Order,IFMAP Width Interline Order,"
    "Channel Interline Order,Num Filter Intraline Order,Channel Intraline Order,Filter Height Intraline Order,"
    "Filter Width Intraline Order,Num Filter Interline Order,Channel Interline Order,Filter Height Interline Order,"
    "Filter Width Interline Order,\n"
)
_LAYOUT_ROW = "1,1,1,1,1,1,0,1,2,0,1,2,0,1,2,3,0,1,2,3,"

# Report column -> result key. Keys ending in _pct are percentages; the others are counts.
_COMPUTE_COLUMNS = {
    "Total Cycles (incl. prefetch)": "overall_cycles",
    "Total Cycles": "total_cycles",
    "Stall Cycles": "stall_cycles",
    "Overall Util %": "overall_util_pct",
    "Mapping Efficiency %": "mapping_eff_pct",
    "Compute Util %": "compute_util_pct",
}
_ACCESS_COLUMNS = {
    "SRAM IFMAP Reads": "ifmap_sram_reads",
    "SRAM Filter Reads": "filter_sram_reads",
    "SRAM OFMAP Writes": "ofmap_sram_writes",
    "DRAM IFMAP Reads": "ifmap_dram_reads",
    "DRAM Filter Reads": "filter_dram_reads",
    "DRAM OFMAP Writes": "ofmap_dram_writes",
}


def simulate(
    layers: Sequence[ConvLayer], accelerator: Accelerator, workdir: Path | None = None, timeout_s: float | None = None
) -> list[dict[str, float]]:
    """SCALE-Sim's compute and access figures for each layer, in order, on `accelerator`.

    A grouped convolution's groups run one after another and each is the same
    GEMM, so one group is simulated and its cycles and access counts are
    multiplied by `groups`; SCALE-Sim's own depthwise mode (a 'DP' layer name)
    simulates the per-channel layers separately and gives the same sum, but
    only for one channel per group and at `groups` times the cost. Identical
    layers are simulated once. Binary layers are simulated at full width.
    `workdir` keeps the input files and reports; by default a temporary folder.
    """
    accelerator.check()
    if not layers:
        return []
    rows = [_topology_row(layer) for layer in layers]
    unique = list(dict.fromkeys(rows))
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
            figures = _run(unique, accelerator, Path(tmp), timeout_s)
    else:
        figures = _run(unique, accelerator, Path(workdir), timeout_s)
    by_row = dict(zip(unique, figures))
    return [_times_groups(by_row[row], layer.groups) for row, layer in zip(rows, layers)]


def _topology_row(layer: ConvLayer) -> tuple[int, ...]:
    """One group of `layer` as SCALE-Sim sees it: H, W, R, S, C, M, stride.

    SCALE-Sim takes ceil((H - R + s) / s) output rows, one more than the
    convolution when H - R is not a multiple of s, so the input is trimmed to
    the rows the outputs use. It has one stride for both axes: with unequal
    strides the vertical one is used and the width trimmed to give the right
    output width: the GEMM is exact, the input's size and reuse along the width
    are not.
    """
    if layer.out_h < 1 or layer.out_w < 1:
        raise UserError(f"layer {layer.name!r}: the filter is larger than the (padded) input")
    stride = layer.stride_h
    height = (layer.out_h - 1) * stride + layer.filter_h
    width = (layer.out_w - 1) * stride + layer.filter_w
    return height, width, layer.filter_h, layer.filter_w, layer.channels, layer.filters, stride


def _run(
    rows: list[tuple[int, ...]], accelerator: Accelerator, workdir: Path, timeout_s: float | None
) -> list[dict[str, float]]:
    """Write the input files into `workdir`, run SCALE-Sim on them in a child process, read its reports."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)  # never read a previous run's reports
    config, topology, layout = workdir / "scale.cfg", workdir / "topology.csv", workdir / "layout.csv"
    config.write_text(_config_text(accelerator))
    # Names are layer0, layer1...: a name containing "DP" would switch on SCALE-Sim's depthwise expansion.
    topology.write_text(
        "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,\n"
        + "".join(f"layer{i},{','.join(map(str, row))},\n" for i, row in enumerate(rows))
    )
    layout.write_text(_LAYOUT_HEADER + "".join(f"layer{i},{_LAYOUT_ROW}\n" for i in range(len(rows))))
    command = [sys.executable, "-c", _CHILD, str(config), str(topology), str(layout), str(out)]
    try:
        proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise UserError(f"SCALE-Sim did not finish {len(rows)} layer(s) within {timeout_s} s") from None
    reports = out / _RUN_NAME
    compute, access = reports / "COMPUTE_REPORT.csv", reports / "DETAILED_ACCESS_REPORT.csv"
    if proc.returncode != 0 or not compute.is_file() or not access.is_file():
        # SCALE-Sim prints its own errors on stdout before exit(); a crash leaves a traceback on stderr.
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip(" ^~")]
        tail = " | ".join(lines[-3:]) or "no output"
        raise UserError(f"SCALE-Sim failed (exit status {proc.returncode}): {tail}")
    figures = [a | b for a, b in zip(_read_report(compute, _COMPUTE_COLUMNS), _read_report(access, _ACCESS_COLUMNS))]
    if len(figures) != len(rows):
        raise UserError(f"SCALE-Sim reported {len(figures)} layer(s) for {len(rows)} in {reports}")
    return figures


def _config_text(acc: Accelerator) -> str:
    """A complete SCALE-Sim config: it reads every key without a default.

    SRAM sizes and DRAM bandwidth are in elements of `acc.bits` (SCALE-Sim's
    one-byte words). In USER bandwidth mode `Bandwidth` sets only the ofmap
    port; the ifmap and filter ports take the [layout] bank bandwidths, so all
    three get the same. SCALE-Sim takes whole elements per cycle: a bandwidth
    between two is rounded down, and one is the least it can express.
    """
    bandwidth = max(1, acc.dram_bytes_per_cycle * 8 // acc.bits)
    words = [kb * 1024 * 8 // acc.bits for kb in (acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb)]
    return f"""[general]
run_name = {_RUN_NAME}

[architecture_presets]
ArrayHeight = {acc.rows}
ArrayWidth = {acc.cols}
# SCALE-Sim's parser takes whole KiB; the child sets the exact sizes from [ehdnas].
IfmapSramSzkB = {max(1, words[0] // 1024)}
FilterSramSzkB = {max(1, words[1] // 1024)}
OfmapSramSzkB = {max(1, words[2] // 1024)}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {bandwidth}
Dataflow = {acc.dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = {bandwidth}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = {bandwidth}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = USER
UseRamulatorTrace = False

[ehdnas]
IfmapSramWords = {words[0]}
FilterSramWords = {words[1]}
OfmapSramWords = {words[2]}
"""


def _read_report(path: Path, columns: dict[str, str]) -> list[dict[str, float]]:
    """The wanted columns of one SCALE-Sim report, one dict per layer, keyed by our names."""
    with path.open(newline="") as f:
        records = list(csv.reader(f, skipinitialspace=True))
    header = [name.strip() for name in records[0]]
    try:
        where = {key: header.index(column) for column, key in columns.items()}
        return [{key: float(record[i]) for key, i in where.items()} for record in records[1:] if record]
    except (ValueError, IndexError) as err:
        raise UserError(f"{path}: not the SCALE-Sim 3.0 report layout this driver reads ({err})") from None


def _times_groups(figures: dict[str, float], groups: int) -> dict[str, float]:
    """A grouped layer's figures from one group's: counts add up over the groups, percentages stay."""
    return {key: value if key.endswith("_pct") else value * groups for key, value in figures.items()}
