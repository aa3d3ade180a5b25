"""The nb201 supernet against the network it derives, and its derivation rule."""

from __future__ import annotations

import numpy as np
import torch

from ehdnas.spaces import get_space
from ehdnas.spaces.nb201 import OPS, Cell
from ehdnas.spaces.nb201_net import ResidualBlock
from ehdnas.supernets.dnas import dnas_supernet
from tests.methods.test_search import assert_same_network

TINY = {"cells": 2, "channels": 4, "input_size": 8}


def test_supernet_with_one_hot_alpha_equals_the_derived_network() -> None:
    space = get_space("nb201", TINY)
    torch.manual_seed(0)
    supernet = dnas_supernet(space).eval()
    # 'none' on both inputs of node 2 (its zeros feed node 3), every other op at least once
    cell = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|")
    with torch.no_grad():
        supernet.alpha.copy_(torch.as_tensor(np.stack(space.one_hot(cell))) * 1e4)  # softmax -> one-hot
    assert supernet.derive() == cell
    derived = space.build(cell).eval()
    # Copy the chosen ops' weights (and everything outside the cells) from the supernet.
    state = {k: v for k, v in supernet.net.state_dict().items() if ".edges." not in k}
    for i, layer in enumerate(derived.layers):
        if isinstance(layer, ResidualBlock):
            continue
        for position, edge in enumerate(layer.live):
            chosen = supernet.net.layers[i].edges[edge][OPS.index(cell.ops[edge])]
            for name, value in chosen.state_dict().items():
                state[f"layers.{i}.ops.{position}.{name}"] = value
    assert_same_network(supernet, derived, state)


def test_alpha_is_one_row_per_decision_and_learns_from_the_task_loss() -> None:
    space = get_space("nb201", TINY)
    supernet = dnas_supernet(space, torch.Generator().manual_seed(0))
    assert supernet.alpha.shape == (6, 5) and supernet.soft_arch().shape == (6, 5)
    loss = torch.nn.functional.cross_entropy(supernet(torch.randn(2, 3, 8, 8)), torch.tensor([1, 2]))
    loss.backward()
    assert supernet.alpha.grad is not None and supernet.alpha.grad.abs().sum() > 0


def test_derive_takes_each_edges_strongest_op_and_caps_skip_connect() -> None:
    space = get_space("nb201", TINY)
    supernet = dnas_supernet(space)
    logits = torch.full((6, 5), -1.0)
    logits[:, OPS.index("skip_connect")] = torch.linspace(3.0, 2.0, 6)  # skip wins every edge, strongest first
    logits[:, OPS.index("nor_conv_3x3")] = 1.0
    logits[5, OPS.index("none")] = 5.0  # 'none' may win an edge, as in NAS-Bench-201's genotype()
    with torch.no_grad():
        supernet.alpha.copy_(logits)
    assert supernet.derive().ops == ("skip_connect",) * 5 + ("none",)
    capped = supernet.derive(skip_cap=2)
    assert capped == Cell(("skip_connect", "skip_connect", *["nor_conv_3x3"] * 3, "none"))
