"""NAS-Bench-201's operations and the network a cell is built into (its `TinyNetwork`).

Stem (3x3 conv to C, BN), three stages of N cells at C, 2C and 4C channels with
a residual reduction block between stages, BN and ReLU, global pool, linear
classifier. Every cell keeps its input's channels and resolution, so each op
maps C channels to C at stride 1. Shapes in comments are (B, C, H, W).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from torch import nn

from ehdnas.spaces.darts_net import count_macs, relu_conv_bn
from ehdnas.spaces.nb201 import EDGES, NODES, OPS, Cell, Nb201Config

OpBuilder = Callable[[int], nn.Module]  # channels -> op

# The ops that compute; 'none' contributes nothing to its node (NAS-Bench-201's Zero op gives zeros).
OP_BUILDERS: dict[str, OpBuilder] = {
    "skip_connect": lambda c: nn.Identity(),
    "nor_conv_1x1": lambda c: relu_conv_bn(c, c, 1, 1, 0),
    "nor_conv_3x3": lambda c: relu_conv_bn(c, c, 3, 1, 1),
    "avg_pool_3x3": lambda c: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}


class ResidualBlock(nn.Module):
    """NAS-Bench-201's reduction block (its `ResNetBasicblock` at stride 2): two ReLU-Conv-BN 3x3, the first
    strided, beside a 2x2 average pool and a 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, 2, 1)
        self.conv_b = relu_conv_bn(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))  # (B, C_out, H/2, W/2)


class DerivedCell(nn.Module):
    """One cell of a derived network: an op on every edge whose op is not 'none'."""

    def __init__(self, arch: Cell, c: int) -> None:
        super().__init__()
        self.live = [e for e, op in enumerate(arch.ops) if op != "none"]
        self.ops = nn.ModuleList(OP_BUILDERS[arch.ops[e]](c) for e in self.live)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, NODES):
            terms = [op(nodes[EDGES[e][0]]) for e, op in zip(self.live, self.ops) if EDGES[e][1] == dst]
            nodes.append(sum(terms) if terms else x.mul(0.0))  # every input 'none': zeros, as NAS-Bench-201 gives
        return nodes[-1]  # (B, C, H, W)


MakeCell = Callable[[int], nn.Module]  # channels -> cell


class Skeleton(nn.Module):
    """The macro network a derived network and the supernet share; `make_cell` builds each cell."""

    def __init__(self, make_cell: MakeCell, config: Nb201Config) -> None:
        super().__init__()
        c = config.channels
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage in range(3):
            width = c * 2**stage
            if stage:
                layers.append(ResidualBlock(width // 2, width))
            layers.extend(make_cell(width) for _ in range(config.cells))
        self.layers = nn.ModuleList(layers)
        self.last = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, config.classes)

    def forward(self, x: torch.Tensor, *cell_weights: torch.Tensor) -> torch.Tensor:
        """`cell_weights`: nothing for a derived network, the (6, 5) op weights for the supernet."""
        x = self.stem(x)  # (B, C, H, W)
        for layer in self.layers:
            x = layer(x) if isinstance(layer, ResidualBlock) else layer(x, *cell_weights)
        return self.classifier(self.pool(self.last(x)).flatten(1))  # (B, classes)


class Nb201Network(Skeleton):
    """The network of one cell."""

    def __init__(self, arch: Cell, config: Nb201Config) -> None:
        super().__init__(lambda c: DerivedCell(arch, c), config)


@cache
def _op_macs(op: str, channels: int, size: int) -> int:
    return count_macs(OP_BUILDERS[op](channels), torch.zeros(1, channels, size, size))


def choice_macs(config: Nb201Config) -> tuple[np.ndarray, int]:
    """MACs of the network as `rest + sum(table[edge, op])`: a (6, 5) table and the fixed rest.

    Exact: every cell's channels and resolution are fixed by its stage, whatever its ops.
    """
    rest = count_macs(
        Nb201Network(Cell(("none",) * len(EDGES)), config),
        torch.zeros(1, config.in_channels, config.input_size, config.input_size),
    )
    table = np.zeros((len(EDGES), len(OPS)))
    for stage in range(3):
        width, size = config.channels * 2**stage, config.input_size // 2**stage
        for k, op in enumerate(OPS[1:], start=1):
            table[:, k] += config.cells * _op_macs(op, width, size)
    return table, rest
