"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), on which HW-NAS-Bench, BRP-NAS and HELP publish latencies.

A cell has 4 nodes: node 0 is its input, node j (1..3) sums one op on an edge
from every earlier node, and node 3 is its output; 6 edges, each one of 5 ops
(none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3; nor_conv is
ReLU-Conv-BN), 5^6 = 15,625 cells. One cell is stacked through the network.

Text form, exactly as NAS-Bench-201 writes it (node by node, each node's edges
by input)::

    |nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|

The predictor encoding has one decision per edge in that order (0->1, 0->2,
1->2, 0->3, 1->3, 2->3), 5 choices each in the order above: (6, 5), the layout
of an nb201 supernet's softmax(alpha).

Index (0..15624), NAS-Bench-201's `meta_archs` order, which its API, NATS-Bench's
topology space and HW-NAS-Bench all number cells by. NAS-Bench-201 made it in
`generate_meta_info` (exps/NAS-Bench-201/main.py): `Structure.gen_all` lists the
cells in lexicographic order (a number in base 5 whose digits are the op
indices of the edges in the string's order, the first edge the most
significant), then `random.seed(88); random.shuffle(archs)` reorders them. The
index is the position after that shuffle; the lexicographic number is `code`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ehdnas.core.errors import UserError
from ehdnas.core.options import brief
from ehdnas.spaces.base import Decision, SearchSpace, json_list, json_object, register_space

if TYPE_CHECKING:
    import torch

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")  # NAS-Bench-201's
NODES = 4  # node 0 is the cell's input, node 3 its output
# Edges (source node, target node) in the string's order: node by node, each node's inputs in order.
EDGES: tuple[tuple[int, int], ...] = tuple((src, dst) for dst in range(1, NODES) for src in range(dst))
CELLS = len(OPS) ** len(EDGES)  # 15,625
SHUFFLE_SEED = 88  # NAS-Bench-201's `random.seed(88)` before shuffling the lexicographic list
_EDGE_TEXT = re.compile(r"([a-z0-9_]+)~(\d{1,9})")  # int() refuses 4300 digits


def code_of(ops: Sequence[str]) -> int:
    """The cell's position in NAS-Bench-201's lexicographic list (`gen_all`): its op indices as base-5 digits."""
    code = 0
    for op in ops:
        code = code * len(OPS) + OPS.index(op)
    return code


def ops_of(code: int) -> tuple[str, ...]:
    """Inverse of `code_of`."""
    digits = []
    for _ in EDGES:
        code, digit = divmod(code, len(OPS))
        digits.append(OPS[digit])
    return tuple(reversed(digits))


@cache
def _shuffled() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """NAS-Bench-201's index to lexicographic code, and code to index.

    Python's `random.shuffle` depends only on the list's length and the generator, so shuffling the codes
    0..15624 with NAS-Bench-201's seed gives its order of the cells.
    """
    codes = list(range(CELLS))
    random.Random(SHUFFLE_SEED).shuffle(codes)
    indices = [0] * CELLS
    for index, code in enumerate(codes):
        indices[code] = index
    return tuple(codes), tuple(indices)


@dataclass(frozen=True)
class Cell:
    """An NAS-Bench-201 architecture: the op on each of the cell's 6 edges, in `EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops) if isinstance(self.ops, list | tuple) else self.ops
        if not isinstance(ops, tuple) or len(ops) != len(EDGES):
            raise UserError(f"nb201 cell: expected {len(EDGES)} ops, one per edge, got {brief(self.ops)}")
        for op, (src, dst) in zip(ops, EDGES):
            if op not in OPS:
                raise UserError(f"nb201 cell edge {src}->{dst}: unknown op {brief(op)}; known: {', '.join(OPS)}")
        object.__setattr__(self, "ops", ops)

    @property
    def code(self) -> int:
        return code_of(self.ops)

    @property
    def index(self) -> int:
        """NAS-Bench-201's index of this cell (see the module's docstring)."""
        return _shuffled()[1][self.code]

    @classmethod
    def from_index(cls, index: int) -> Cell:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < CELLS:
            raise UserError(f"nb201 index {brief(index)} out of range 0..{CELLS - 1}")
        return cls(ops_of(_shuffled()[0][index]))

    def to_text(self) -> str:
        nodes = []
        for dst in range(1, NODES):
            edges = [f"{op}~{src}" for op, (src, target) in zip(self.ops, EDGES) if target == dst]
            nodes.append("|" + "|".join(edges) + "|")
        return "+".join(nodes)

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        data = json_object(data, ["ops"], "nb201 cell")
        return cls(tuple(json_list(data["ops"], "nb201 cell ops", f"a list of {len(EDGES)} op names")))

    @classmethod
    def from_text(cls, text: str) -> Cell:
        """NAS-Bench-201's string; within a node its edges may come in any order, each input exactly once."""
        nodes = text.strip().split("+")
        if len(nodes) != NODES - 1:
            raise UserError(
                f"nb201 cell: expected {NODES - 1} nodes separated by '+' (|op~0|+|op~0|op~1|+|op~0|op~1|op~2|), "
                f"got {brief(text.strip())}"
            )
        ops: dict[tuple[int, int], str] = {}
        for dst, node in enumerate(nodes, start=1):
            node = node.strip()
            if not (node.startswith("|") and node.endswith("|") and len(node) > 1):
                raise UserError(f"nb201 cell node {dst}: {brief(node)} is not |op~input|...|")
            for edge in node[1:-1].split("|"):
                match = _EDGE_TEXT.fullmatch(edge.strip())
                if not match:
                    raise UserError(f"nb201 cell node {dst}: edge {brief(edge.strip())} is not op~input")
                src = int(match[2])
                if src >= dst:
                    raise UserError(f"nb201 cell node {dst}: input {src} out of range 0..{dst - 1}")
                if (src, dst) in ops:
                    raise UserError(f"nb201 cell node {dst}: input {src} given twice")
                ops[(src, dst)] = match[1]
            missing = [src for src in range(dst) if (src, dst) not in ops]
            if missing:
                raise UserError(f"nb201 cell node {dst}: no edge from input {missing[0]} (every earlier node has one)")
        return cls(tuple(ops[edge] for edge in EDGES))


@dataclass(frozen=True)
class Nb201Config:
    """Settings of NAS-Bench-201's network a cell is built into; the defaults are NAS-Bench-201's (CIFAR)."""

    cells: int = 5  # cells per stage (NAS-Bench-201's N); 3 stages
    channels: int = 16  # the first stage's width (C); the others 2C and 4C
    classes: int = 10
    input_size: int = 32
    in_channels: int = 3
    batch: int = 1

    def check(self) -> None:
        for field in ("cells", "channels", "classes", "input_size", "in_channels", "batch"):
            if getattr(self, field) < 1:
                raise UserError(f"space 'nb201' option {field!r} must be at least 1")
        if self.input_size % 4:  # two residual blocks halve it, each by a stride-2 conv beside a 2x2 pool
            raise UserError(f"space 'nb201' option 'input_size' must be a multiple of 4, got {self.input_size}")


@register_space("nb201")
class Nb201Space(SearchSpace[Cell]):
    name = "nb201"
    Config = Nb201Config

    @property
    def decisions(self) -> Sequence[Decision]:
        return [Decision(f"{src}->{dst}", OPS) for src, dst in EDGES]

    def sample(self, rng: np.random.Generator) -> Cell:
        return Cell(tuple(OPS[i] for i in rng.integers(len(OPS), size=len(EDGES))))

    def from_dict(self, data: Mapping[str, Any]) -> Cell:
        return Cell.from_dict(data)

    def from_text(self, text: str) -> Cell:
        return Cell.from_text(text)

    def from_index(self, index: int) -> Cell:
        return Cell.from_index(index)

    def encode(self, arch: Cell) -> list[int]:
        return [OPS.index(op) for op in arch.ops]

    def decode(self, indices: Sequence[int]) -> Cell:
        if len(indices) != len(EDGES):
            raise UserError(f"nb201 encoding: expected {len(EDGES)} indices, got {len(indices)}")
        for index, (src, dst) in zip(indices, EDGES):
            if not 0 <= index < len(OPS):
                raise UserError(f"nb201 encoding: edge {src}->{dst} index {index} out of range 0..{len(OPS) - 1}")
        return Cell(tuple(OPS[i] for i in indices))

    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.batch, c.in_channels, c.input_size, c.input_size)

    def build(self, arch: Cell) -> torch.nn.Module:
        from ehdnas.spaces.nb201_net import Nb201Network

        return Nb201Network(arch, self.config)

    def choice_macs(self) -> tuple[np.ndarray, int]:
        from ehdnas.spaces.nb201_net import choice_macs

        return choice_macs(self.config)
