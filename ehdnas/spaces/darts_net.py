"""DARTS operations and the CIFAR-style network a genotype is built into.

Shapes in comments are (B, C, H, W). Every op with stride 2 maps H to ceil(H/2),
so inputs of any size (odd ones included) build and export; even sizes, the usual
case, export without any Pad node, so ONNX shape inference sees every shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ehdnas.spaces.binary_ops import BinaryConv2d
from ehdnas.spaces.darts import CHOSEN_OPS, EDGES, NODES, OPS, CellEdges, Genotype


def _conv(binary: bool) -> type[nn.Conv2d]:
    return BinaryConv2d if binary else nn.Conv2d


def _activation(binary: bool) -> list[nn.Module]:
    """ReLU before a real convolution; none before a binary one, whose sign is the non-linearity."""
    return [] if binary else [nn.ReLU(inplace=False)]


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, padding: int, binary: bool = False) -> nn.Sequential:
    return nn.Sequential(
        *_activation(binary),
        _conv(binary)(c_in, c_out, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(c_out),
    )


def dil_conv(
    c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, binary: bool = False
) -> nn.Sequential:
    """ReLU, depthwise (dilated) conv, pointwise conv, BN."""
    conv = _conv(binary)
    return nn.Sequential(
        *_activation(binary),
        conv(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
        conv(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
    )


def sep_conv(c_in: int, c_out: int, kernel: int, stride: int, padding: int, binary: bool = False) -> nn.Sequential:
    """Two stacked depthwise-separable convs; only the first one strides."""
    return nn.Sequential(
        dil_conv(c_in, c_in, kernel, stride, padding, 1, binary),
        dil_conv(c_in, c_out, kernel, 1, padding, 1, binary),
    )


class FactorizedReduce(nn.Module):
    """Halve H and W with two 1x1 stride-2 convs, the second shifted by one pixel."""

    def __init__(self, c_in: int, c_out: int, binary: bool = False) -> None:
        super().__init__()
        self.relu = nn.Sequential(*_activation(binary))
        self.conv_1 = _conv(binary)(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = _conv(binary)(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:]
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # odd H or W: pad so both halves give ceil(H/2)
            shifted = F.pad(shifted, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


OpBuilder = Callable[[int, int], nn.Module]  # (channels, stride)


@cache
def op_builders(binary: bool = False) -> dict[str, OpBuilder]:
    """The DARTS ops; `binary`: every convolution 1-bit (the DCP-NAS variant of the space)."""
    return {
        "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, stride=s, padding=1),
        "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
        "skip_connect": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c, binary),
        "sep_conv_3x3": lambda c, s: sep_conv(c, c, 3, s, 1, binary),
        "sep_conv_5x5": lambda c, s: sep_conv(c, c, 5, s, 2, binary),
        "dil_conv_3x3": lambda c, s: dil_conv(c, c, 3, s, 2, 2, binary),
        "dil_conv_5x5": lambda c, s: dil_conv(c, c, 5, s, 4, 2, binary),
    }


OP_BUILDERS = op_builders()


def preprocessors(
    c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool, binary: bool = False
) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to C channels; if the previous cell reduced, the older input is twice as large."""
    first = (
        FactorizedReduce(c_prev_prev, c, binary) if reduction_prev else relu_conv_bn(c_prev_prev, c, 1, 1, 0, binary)
    )
    return first, relu_conv_bn(c_prev, c, 1, 1, 0, binary)


class Cell(nn.Module):
    """One cell of a derived network: 4 nodes of 2 edges each, one op per edge."""

    def __init__(
        self,
        edges: CellEdges,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        binary: bool = False,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocessors(c_prev_prev, c_prev, c, reduction_prev, binary)
        self.sources = [src for _, src in edges]
        builders = op_builders(binary)
        self.ops = nn.ModuleList(builders[op](c, 2 if reduction and src < 2 else 1) for op, src in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(NODES):
            a, b = 2 * node, 2 * node + 1
            states.append(self.ops[a](states[self.sources[a]]) + self.ops[b](states[self.sources[b]]))
        return torch.cat(states[2:], dim=1)  # (B, 4C, H, W)


MakeCell = Callable[[int, int, int, bool, bool], nn.Module]  # (C_prev_prev, C_prev, C, reduction, reduction_prev)


class CellNetwork(nn.Module):
    """Stem, `layers` cells (reduction at 1/3 and 2/3 of the depth), global pool, linear classifier.

    The skeleton a derived network and the supernet share; `make_cell` builds each cell.
    """

    def __init__(self, make_cell: MakeCell, channels: int, layers: int, classes: int, in_channels: int = 3) -> None:
        super().__init__()
        c_curr = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(make_cell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, NODES * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, classes)

    def forward(self, x: torch.Tensor, *cell_weights: torch.Tensor) -> torch.Tensor:
        """`cell_weights`: nothing for a derived network, (normal, reduce) op weights for the supernet."""
        s0 = s1 = self.stem(x)  # (B, 3C, H, W)
        for cell in self.cells:
            extra = (cell_weights[1] if cell.reduction else cell_weights[0],) if cell_weights else ()
            s0, s1 = s1, cell(s0, s1, *extra)
        return self.classifier(self.pool(s1).flatten(1))  # (B, classes)


class DartsNetwork(CellNetwork):
    """The network of one genotype."""

    def __init__(
        self, genotype: Genotype, channels: int, layers: int, classes: int, in_channels: int = 3, binary: bool = False
    ) -> None:
        def make_cell(c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool) -> Cell:
            edges = genotype.reduce if reduction else genotype.normal
            return Cell(edges, c_prev_prev, c_prev, c, reduction, reduction_prev, binary)

        super().__init__(make_cell, channels, layers, classes, in_channels)


def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the Conv2d and Linear layers of `module` on input `x`."""
    total = 0

    def hook(layer: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += out.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        else:
            total += out.numel() * layer.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        module.eval()(x)
    for handle in handles:
        handle.remove()
    return total


@cache
def _op_macs(op: str, channels: int, size: int, stride: int) -> int:
    return count_macs(OP_BUILDERS[op](channels, stride), torch.zeros(1, channels, size, size))


def choice_macs(channels: int, layers: int, classes: int, in_channels: int, input_size: int) -> tuple[np.ndarray, int]:
    """MACs of the network as `rest + sum(table[d, choice_d])`: a (28, 8) table and the fixed rest.

    Exact, because a DARTS network's op on an edge changes nothing else in it:
    every cell's channels and resolution are fixed by its position.
    """
    pools = tuple(("max_pool_3x3", src) for src in (0, 1, 0, 1, 0, 1, 0, 1))  # no MACs in any edge
    network = DartsNetwork(Genotype(normal=pools, reduce=pools), channels, layers, classes, in_channels)
    states: list[tuple[int, ...]] = []
    handles = [
        cell.preprocess1.register_forward_hook(lambda m, i, out: states.append(out.shape)) for cell in network.cells
    ]
    rest = count_macs(network, torch.zeros(1, in_channels, input_size, input_size))
    for handle in handles:
        handle.remove()
    table = np.zeros((2 * len(EDGES), len(OPS)))
    for cell, (_, c, h, _) in zip(network.cells, states):
        first = len(EDGES) if cell.reduction else 0
        for e, (src, _node) in enumerate(EDGES):
            stride = 2 if cell.reduction and src < 2 else 1
            size = h if src < 2 or not cell.reduction else -(-h // 2)  # nodes of a reduction cell are halved
            for op in CHOSEN_OPS:
                table[first + e, OPS.index(op)] += _op_macs(op, c, size, stride)
    return table, rest
