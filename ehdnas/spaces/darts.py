"""The DARTS cell space, as searched by DARTS, EH-DNAS and DCP-NAS.

A cell has 2 input states (0: output of the cell before last, 1: output of the
last cell) and 4 intermediate nodes (states 2..5); node k takes two edges from
distinct earlier states, each carrying one op. The cell outputs the concatenation
of states 2..5. A network has a normal and a reduction cell type.

Text form (canonical: the two edges of a node sorted by input)::

    normal=sep_conv_3x3(0)+sep_conv_3x3(1)|skip_connect(0)+sep_conv_3x3(1)|...;reduce=...

The predictor encoding has one decision per candidate edge: 14 per cell, 28 in
all, 8 choices each ('none' for an edge the genotype does not use), the same
(28, 8) layout as a DARTS supernet's softmax(alpha).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ehdnas.core.errors import UserError
from ehdnas.core.options import brief
from ehdnas.spaces.base import Decision, SearchSpace, json_list, json_object, register_space

if TYPE_CHECKING:
    import torch

OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
CHOSEN_OPS = OPS[1:]  # 'none' is a supernet op; a derived genotype never chooses it
NODES = 4
CELLS = ("normal", "reduce")
# Candidate edges (source state, target node index) in DARTS's alpha row order.
EDGES: tuple[tuple[int, int], ...] = tuple((src, node) for node in range(NODES) for src in range(node + 2))

Edge = tuple[str, int]  # (op, input state)
CellEdges = tuple[Edge, ...]  # 2 edges per node, node by node


def _check_cell(edges: Sequence[Any], cell: str) -> CellEdges:
    """Validate one cell's edges and return them canonically ordered."""
    if len(edges) != 2 * NODES:
        raise UserError(f"{cell} cell: expected {2 * NODES} edges (2 per node x {NODES} nodes), got {len(edges)}")
    out: list[Edge] = []
    for node in range(NODES):
        pair = []
        for edge in edges[2 * node : 2 * node + 2]:
            if not (isinstance(edge, Sequence) and not isinstance(edge, str) and len(edge) == 2):
                raise UserError(f"{cell} cell node {node + 2}: edge {brief(edge)} is not an (op, input) pair")
            op, src = edge
            if op not in CHOSEN_OPS:
                hint = "'none' is never a chosen op" if op == "none" else f"known: {', '.join(CHOSEN_OPS)}"
                raise UserError(f"{cell} cell node {node + 2}: unknown op {brief(op)}; {hint}")
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src <= node + 1:
                raise UserError(f"{cell} cell node {node + 2}: input {brief(src)} out of range 0..{node + 1}")
            pair.append((op, src))
        if pair[0][1] == pair[1][1]:
            raise UserError(f"{cell} cell node {node + 2}: both edges come from input {pair[0][1]}")
        out.extend(sorted(pair, key=lambda e: e[1]))
    return tuple(out)


@dataclass(frozen=True)
class Genotype:
    """A DARTS architecture: the edges of the normal and the reduction cell."""

    normal: CellEdges
    reduce: CellEdges

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_cell(self.normal, "normal"))
        object.__setattr__(self, "reduce", _check_cell(self.reduce, "reduce"))

    def cell(self, name: str) -> CellEdges:
        return self.normal if name == "normal" else self.reduce

    def to_text(self) -> str:
        def cell_text(edges: CellEdges) -> str:
            nodes = [edges[i : i + 2] for i in range(0, len(edges), 2)]
            return "|".join("+".join(f"{op}({src})" for op, src in node) for node in nodes)

        return ";".join(f"{name}={cell_text(self.cell(name))}" for name in CELLS)

    def to_dict(self) -> dict[str, Any]:
        return {name: [[op, src] for op, src in self.cell(name)] for name in CELLS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genotype:
        data = json_object(data, CELLS, "darts genotype")
        cells = {}
        for name in CELLS:
            edges = json_list(data[name], f"darts genotype {name}", "a list of [op, input] pairs")
            cells[name] = tuple(tuple(e) if isinstance(e, list) else e for e in edges)
        return cls(**cells)

    @classmethod
    def from_text(cls, text: str) -> Genotype:
        if text.startswith("Genotype("):
            return cls._from_darts_repr(text)
        cells: dict[str, list[Edge]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            name, sep, body = part.partition("=")
            if not sep or name.strip() not in CELLS:
                raise UserError(f"darts genotype: {brief(part)} is not 'normal=...' or 'reduce=...'")
            edges: list[Edge] = []
            for node in body.split("|"):
                for edge in node.split("+"):
                    match = re.fullmatch(r"\s*([a-z0-9_]+)\((\d{1,9})\)\s*", edge)  # int() refuses 4300 digits
                    if not match:
                        raise UserError(f"darts genotype: edge {brief(edge.strip())} is not op(input)")
                    edges.append((match[1], int(match[2])))
            cells[name.strip()] = edges
        missing = [name for name in CELLS if name not in cells]
        if missing:
            raise UserError(f"darts genotype: missing the {missing[0]} cell")
        return cls(normal=tuple(cells["normal"]), reduce=tuple(cells["reduce"]))

    @classmethod
    def _from_darts_repr(cls, text: str) -> Genotype:
        """Accept the `Genotype(normal=[('sep_conv_3x3', 1), ...], ...)` form DARTS code prints."""
        cells = {}
        for name in CELLS:
            match = re.search(rf"\b{name}\s*=\s*(\[[^\]]*\])", text)
            if not match:
                raise UserError(f"darts genotype: no {name}=[...] list in {brief(text)}")
            try:
                cells[name] = tuple(ast.literal_eval(match[1]))
            except (ValueError, SyntaxError, TypeError):  # TypeError: an unhashable key, as in [{{}: 1}]
                raise UserError(f"darts genotype: cannot read the {name} list {brief(match[1])}") from None
        return cls(**cells)


@dataclass(frozen=True)
class DartsConfig:
    """Settings of the CIFAR-style network a genotype is built into."""

    layers: int = 8
    channels: int = 16
    classes: int = 10
    input_size: int = 32
    in_channels: int = 3
    batch: int = 1
    binary: bool = False  # every convolution in the cells 1-bit (DCP-NAS); the stem and classifier stay real

    def check(self) -> None:
        for field in ("layers", "channels", "classes", "input_size", "in_channels", "batch"):
            if getattr(self, field) < 1:
                raise UserError(f"space 'darts' option {field!r} must be at least 1")
        if self.layers < 3:
            raise UserError("space 'darts' option 'layers' must be at least 3 (two of them are reduction cells)")


@register_space("darts")
class DartsSpace(SearchSpace[Genotype]):
    name = "darts"
    Config = DartsConfig

    @property
    def decisions(self) -> Sequence[Decision]:
        return [Decision(f"{cell}.{src}->{node + 2}", OPS) for cell in CELLS for src, node in EDGES]

    def sample(self, rng: np.random.Generator) -> Genotype:
        def cell() -> CellEdges:
            edges: list[Edge] = []
            for node in range(NODES):
                sources = rng.choice(node + 2, size=2, replace=False)
                edges.extend((CHOSEN_OPS[rng.integers(len(CHOSEN_OPS))], int(src)) for src in sources)
            return tuple(edges)

        return Genotype(normal=cell(), reduce=cell())

    def from_dict(self, data: Mapping[str, Any]) -> Genotype:
        return Genotype.from_dict(data)

    def from_text(self, text: str) -> Genotype:
        return Genotype.from_text(text)

    def encode(self, arch: Genotype) -> list[int]:
        indices = []
        for cell in CELLS:
            chosen = {(src, node): op for node in range(NODES) for op, src in arch.cell(cell)[2 * node : 2 * node + 2]}
            indices.extend(OPS.index(chosen.get(edge, "none")) for edge in EDGES)
        return indices

    def decode(self, indices: Sequence[int]) -> Genotype:
        if len(indices) != len(CELLS) * len(EDGES):
            raise UserError(f"darts encoding: expected {len(CELLS) * len(EDGES)} indices, got {len(indices)}")
        cells = {}
        for c, cell in enumerate(CELLS):
            row = indices[c * len(EDGES) : (c + 1) * len(EDGES)]
            edges = [((OPS[i], src), node) for (src, node), i in zip(EDGES, row) if i != 0]
            for node in range(NODES):
                used = sum(1 for _, n in edges if n == node)
                if used != 2:
                    raise UserError(f"darts encoding: {cell} cell node {node + 2} has {used} edges, not 2")
            cells[cell] = tuple(edge for edge, _ in edges)
        return Genotype(**cells)

    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.batch, c.in_channels, c.input_size, c.input_size)

    def build(self, arch: Genotype) -> torch.nn.Module:
        from ehdnas.spaces.darts_net import DartsNetwork

        c = self.config
        return DartsNetwork(arch, c.channels, c.layers, c.classes, c.in_channels, c.binary)

    def choice_macs(self) -> tuple[np.ndarray, int]:
        from ehdnas.spaces.darts_net import choice_macs

        c = self.config
        return choice_macs(c.channels, c.layers, c.classes, c.in_channels, c.input_size)
