"""The NAS-Bench-201 supernet: every edge of the cell carries all 5 ops, mixed by softmax(alpha).

alpha is one (6, 5) tensor, the edges in the `nb201` space's order by its 5
ops; one cell type, shared by every cell of the network, as NAS-Bench-201's
DARTS, GDAS and SETN supernets share it. Deriving takes each edge's strongest
op, 'none' included (NAS-Bench-201's `genotype()`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ehdnas.spaces.nb201 import EDGES, NODES, OPS, Cell, Nb201Space
from ehdnas.spaces.nb201_net import OP_BUILDERS, Skeleton
from ehdnas.supernets.darts import Zero
from ehdnas.supernets.dnas import DnasSupernet, register_supernet


class SearchCell(nn.Module):
    """A cell whose every edge mixes the 5 ops."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(Zero(1) if op == "none" else OP_BUILDERS[op](c) for op in OPS) for _ in EDGES
        )

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        nodes = [x]  # weights: (6, 5)
        for dst in range(1, NODES):
            mixed = [
                sum(w * op(nodes[src]) for w, op in zip(weights[e], self.edges[e]))
                for e, (src, target) in enumerate(EDGES)
                if target == dst
            ]
            nodes.append(sum(mixed))
        return nodes[-1]  # (B, C, H, W)


@register_supernet("nb201")
class Nb201Supernet(DnasSupernet):
    """Network weights plus architecture parameters alpha (6, 5)."""

    def __init__(self, space: Nb201Space, generator: torch.Generator | None = None) -> None:
        super().__init__(space, Skeleton(SearchCell, space.config), generator)

    def derive(self, shift: torch.Tensor | None = None, skip_cap: int = len(EDGES)) -> Cell:
        """The strongest op of each edge, at most `skip_cap` skip_connect (P-DARTS's guard against DARTS's collapse
        onto parameter-free ops: while there are more, the weakest one is ruled out and its edge derived again)."""
        probs = F.softmax(self.arch_logits(shift), dim=-1).detach().cpu().numpy().copy()
        skip = OPS.index("skip_connect")
        while True:
            indices = probs.argmax(axis=1)
            skips = np.flatnonzero(indices == skip)
            if len(skips) <= skip_cap:
                return self.space.decode(indices.tolist())
            probs[min(skips, key=lambda e: probs[e, skip]), skip] = -1.0
