"""The DARTS supernet: every candidate edge carries every op, mixed by softmax(alpha).

alpha is one (28, 8) tensor: the 14 candidate edges of the normal cell, then the
14 of the reduction cell, by 8 ops, in the order of the `darts` space's
decisions. softmax(alpha) is therefore directly the soft architecture a latency
predictor takes.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ehdnas.spaces.darts import EDGES, NODES, OPS, DartsSpace, Genotype
from ehdnas.spaces.darts_net import CellNetwork, op_builders, preprocessors
from ehdnas.supernets.dnas import DnasSupernet, register_supernet


class Zero(nn.Module):
    """The 'none' op: zeros of the right shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class MixedOp(nn.Module):
    def __init__(self, c: int, stride: int, binary: bool) -> None:
        super().__init__()
        builders = op_builders(binary)
        self.ops = nn.ModuleList(Zero(stride) if op == "none" else builders[op](c, stride) for op in OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # weights: (8,)


class SearchCell(nn.Module):
    """A cell with a MixedOp on each of its 14 candidate edges."""

    def __init__(
        self, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool, binary: bool
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocessors(c_prev_prev, c_prev, c, reduction_prev, binary)
        self.edges = nn.ModuleList(MixedOp(c, 2 if reduction and src < 2 else 1, binary) for src, _ in EDGES)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]  # weights: (14, 8)
        for node in range(NODES):
            incoming = [e for e, (_, target) in enumerate(EDGES) if target == node]
            states.append(sum(self.edges[e](states[EDGES[e][0]], weights[e]) for e in incoming))
        return torch.cat(states[2:], dim=1)  # (B, 4C, H, W)


@register_supernet("darts")
class Supernet(DnasSupernet):
    """Network weights plus architecture parameters alpha (28, 8): the normal cell's 14 rows, then the reduction
    cell's."""

    def __init__(self, space: DartsSpace, generator: torch.Generator | None = None) -> None:
        c = space.config
        cell = functools.partial(SearchCell, binary=c.binary)
        super().__init__(space, CellNetwork(cell, c.channels, c.layers, c.classes, c.in_channels), generator)

    def cell_weights(self, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return weights[: len(EDGES)], weights[len(EDGES) :]  # (normal, reduce): (14, 8) each

    def derive(self, shift: torch.Tensor | None = None, skip_cap: int = len(EDGES)) -> Genotype:
        """DARTS's rule (see `derive_genotype`) on softmax(alpha - shift)."""
        return derive_genotype(self.space, F.softmax(self.arch_logits(shift), dim=-1).detach().cpu().numpy(), skip_cap)


def derive_genotype(space: DartsSpace, probs: np.ndarray, skip_cap: int = len(EDGES)) -> Genotype:
    """The genotype of (28, 8) op probabilities (softmax(alpha)): per node, the 2 incoming edges with the strongest
    non-none op, each with that op.

    P-DARTS's guard against DARTS's collapse onto parameter-free ops: at most `skip_cap` skip_connect edges in the
    normal cell; while there are more, the weakest one's skip_connect is ruled out and the cell derived again.
    """
    probs = probs.copy()
    skip = OPS.index("skip_connect")
    while True:
        indices = _strongest(probs)
        skips = [e for e in range(len(EDGES)) if indices[e] == skip]
        if len(skips) <= skip_cap:
            return space.decode(indices.tolist())
        probs[min(skips, key=lambda e: probs[e, skip]), skip] = 0.0


def _strongest(probs: np.ndarray) -> np.ndarray:
    indices = np.zeros(len(probs), dtype=int)
    for cell in range(2):
        for node in range(NODES):
            edges = [cell * len(EDGES) + e for e, (_, target) in enumerate(EDGES) if target == node]
            strongest = sorted(edges, key=lambda e: -probs[e, 1:].max())[:2]
            for e in strongest:
                indices[e] = 1 + int(probs[e, 1:].argmax())
    return indices
