"""The SCALE-Sim driver on layers small enough to simulate in well under a second each."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from backends.systolic.accelerator import Accelerator
from backends.systolic.layers import ConvLayer
from backends.systolic.scalesim_engine import simulate
from ehdnas.core.errors import UserError

TINY = ConvLayer("conv", ifmap_h=8, ifmap_w=8, filter_h=3, filter_w=3, channels=4, filters=8)
KEYS = {
    "total_cycles", "stall_cycles", "overall_cycles", "overall_util_pct", "mapping_eff_pct", "compute_util_pct",
    "ifmap_dram_reads", "filter_dram_reads", "ofmap_dram_writes",
}  # fmt: skip


def small(dataflow: str = "ws", **fields: int) -> Accelerator:
    return Accelerator(rows=4, cols=4, dataflow=dataflow, ifmap_sram_kb=1, filter_sram_kb=1, ofmap_sram_kb=1, **fields)


def simulated_macs(figures: dict[str, float], acc: Accelerator) -> float:
    """The MACs SCALE-Sim saw, from its utilisation: MACs * 100 / (total cycles * PEs)."""
    return figures["overall_util_pct"] / 100 * figures["total_cycles"] * acc.rows * acc.cols


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_conv_cycles_are_at_least_the_compute_bound(dataflow: str, tmp_path: Path) -> None:
    acc = small(dataflow)
    [figures] = simulate([TINY], acc, workdir=tmp_path)
    assert KEYS <= figures.keys()
    compute_cycles = figures["total_cycles"] - figures["stall_cycles"]
    assert figures["stall_cycles"] >= 0 and compute_cycles >= math.ceil(TINY.macs / (acc.rows * acc.cols))
    assert simulated_macs(figures, acc) == pytest.approx(TINY.macs)
    assert "IfmapCustomLayout = False" in (tmp_path / "scale.cfg").read_text()


def test_grouped_layer_is_groups_times_one_group_and_names_stay_out() -> None:
    """Groups run one after another; a 'DP' in the name must not switch on SCALE-Sim's depthwise expansion."""
    one = ConvLayer("gDP", ifmap_h=10, ifmap_w=10, filter_h=3, filter_w=3, channels=2, filters=1)
    grouped = ConvLayer("gDP", ifmap_h=10, ifmap_w=10, filter_h=3, filter_w=3, channels=2, filters=1, groups=6)
    acc = small(dram_bytes_per_cycle=2)
    single, six = simulate([one, grouped], acc)
    assert single["stall_cycles"] > 0  # the memory model is exercised, not only the array
    for key in ("total_cycles", "stall_cycles", "overall_cycles", "ifmap_dram_reads", "ofmap_dram_writes"):
        assert six[key] == 6 * single[key]
    assert six["overall_util_pct"] == single["overall_util_pct"]
    assert simulated_macs(six, acc) == pytest.approx(grouped.macs)


def test_strided_input_is_trimmed_to_the_real_output_size(tmp_path: Path) -> None:
    # (9 - 2) / 2 is not whole: SCALE-Sim alone would count ceil(9 / 2) = 5 output rows instead of 4.
    layer = ConvLayer("s2", ifmap_h=9, ifmap_w=9, filter_h=2, filter_w=2, channels=3, filters=5, stride_h=2, stride_w=2)
    acc = small("os")
    [figures] = simulate([layer], acc, workdir=tmp_path)
    assert (layer.out_h, layer.out_w) == (4, 4)
    assert simulated_macs(figures, acc) == pytest.approx(layer.macs)
    assert "layer0,8,8,2,2,3,5,2," in (tmp_path / "topology.csv").read_text()


def test_failures_are_user_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="did not finish"):
        simulate([TINY], small(), timeout_s=0.001)
    broken = tmp_path / "shadow" / "scalesim"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('scalesim is broken here')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    with pytest.raises(UserError, match="SCALE-Sim failed .*scalesim is broken here"):
        simulate([TINY], small())
