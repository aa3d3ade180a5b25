"""The nb201 space: NAS-Bench-201's strings, its index order, its network, measured on real targets."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from backends import TimingProtocol, get_target
from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space
from ehdnas.spaces.darts_net import count_macs
from ehdnas.spaces.nb201 import CELLS, OPS, Cell, code_of, ops_of

EXAMPLE = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
# What NAS-Bench-201's generate_meta_info asserts of its shuffled list (exps/NAS-Bench-201/main.py).
NB201_ASSERTED = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    9: "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    123: "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
}


def _gen_all() -> list[str]:
    """NAS-Bench-201's `Structure.gen_all` order, written the way it builds it: node by node, each node's edges
    by input, the earlier choice the outer loop."""
    cells = [""]
    for node in range(1, 4):
        node_texts = [""]
        for src in range(node):
            node_texts = [t + f"{op}~{src}|" for t in node_texts for op in OPS]
        cells = [c + ("+" if c else "") + "|" + n for c in cells for n in node_texts]
    return cells


def test_every_index_and_string_round_trips_in_nas_bench_201_order() -> None:
    lexicographic = _gen_all()
    assert len(lexicographic) == CELLS == 15_625 and len(set(lexicographic)) == CELLS
    shuffled = list(lexicographic)
    random.seed(88)  # NAS-Bench-201's own two lines, on the module-level generator as it ran them
    random.shuffle(shuffled)
    seen = set()
    for index, text in enumerate(shuffled):
        cell = Cell.from_text(text)
        assert cell.to_text() == text and cell.index == index and Cell.from_index(index) == cell
        assert lexicographic[cell.code] == text and ops_of(code_of(cell.ops)) == cell.ops
        seen.add(cell.ops)
    assert len(seen) == CELLS
    for index, text in NB201_ASSERTED.items():
        assert Cell.from_index(index).to_text() == text


def test_strings_in_any_edge_order_read_canonically_and_bad_ones_say_why() -> None:
    shuffled = "|nor_conv_3x3~0|+|nor_conv_1x1~1|skip_connect~0|+|avg_pool_3x3~2|skip_connect~0|none~1|"
    assert Cell.from_text(shuffled).to_text() == EXAMPLE
    space = get_space("nb201")
    assert space.parse('{"ops": ["none", "none", "none", "none", "none", "skip_connect"]}').ops[-1] == "skip_connect"
    cases = {
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|": "expected 3 nodes",
        "|nor_conv_3x3~0|+|skip_connect~0|+|skip_connect~0|none~1|avg_pool_3x3~2|": "no edge from input 1",
        "|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|": "out of range",
        "|conv_5x5~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|": "unknown op",
        "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~0|+|skip_connect~0|none~1|avg_pool_3x3~2|": "given twice",
        "nor_conv_3x3~0+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|": "not |op~input|",
    }
    for text, message in cases.items():
        with pytest.raises(UserError, match=message):
            space.parse(text)
    for index in (-1, CELLS, True, "3"):
        with pytest.raises(UserError, match="out of range 0..15624"):
            space.from_index(index)
    with pytest.raises(UserError, match="multiple of 4"):
        get_space("nb201", {"input_size": 30})


def test_the_network_is_nas_bench_201s_and_its_macs_table_is_exact() -> None:
    space = get_space("nb201")  # NAS-Bench-201's CIFAR-10 network: N=5, C=16, 32x32
    table, rest = space.choice_macs()
    x = torch.zeros(space.input_shape)
    for arch in (space.from_text(EXAMPLE), space.sample(np.random.default_rng(1))):
        assert count_macs(space.build(arch), x) == rest + table[np.arange(6), space.encode(arch)].sum()
    # NAS-Bench-201's FLOPs range on CIFAR-10: 7.78 M (no conv in the cell) to 220.11 M (nor_conv_3x3 everywhere).
    largest = rest + 6 * table[0, OPS.index("nor_conv_3x3")]
    assert rest / 1e6 == pytest.approx(7.78, rel=1e-3) and largest / 1e6 == pytest.approx(220.11, rel=1e-3)
    everywhere_none = space.build(Cell(("none",) * 6)).eval()
    with torch.no_grad():  # every cell gives zeros, so the logits are the classifier's bias
        logits = everywhere_none(torch.randn(space.input_shape))
    torch.testing.assert_close(logits[0], everywhere_none.classifier.bias)


@pytest.mark.parametrize("target", ["ort-cpu", "systolic-edge32"])
def test_a_nas_bench_201_string_builds_exports_and_measures(target: str, tmp_path: Path) -> None:
    space = get_space("nb201", {"cells": 2})
    model = export_arch(space, space.parse(EXAMPLE), tmp_path / "net.onnx")
    measurement = get_target(target).measure(model, TimingProtocol(warmup=1, min_repeats=3, min_time_s=0.0))
    assert measurement.latency_ms.median > 0 and measurement.model["macs"] > 0
