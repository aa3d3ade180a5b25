"""How the choices of NNI's hub model spaces answer ehdnas's decisions, both ways.

NNI names a choice by a label and its candidates by op names; ehdnas names a
decision and its choices. Two hub spaces have an ehdnas counterpart (NNI 3.0,
nni/nas/hub/pytorch/nasnet.py and nasbench201.py):

- `DARTS` against `darts`. Under a differentiable strategy each cell edge has
  one logit vector labelled `{cell}/{node}_{input}` over the cell's op names
  and then one more, the zero op (`none`), which NNI appends last; ehdnas's
  decision `{cell}.{input}->{node}` has `none` first. A discrete sample names
  each node's two edges by `{cell}/op_{node}_{k}` (the op) and
  `{cell}/input_{node}_{k}` (a one-item list: the input), k = 0, 1.
- `NasBench201` against `nb201`: one LayerChoice per edge labelled
  `cell/{input}_{node}`, shared by every cell, with NAS-Bench-201's ops except
  that `nor_conv_1x1` / `nor_conv_3x3` are `conv_1x1` / `conv_3x3`.

The network settings (width, depth) are not choices here: a space whose width
or depth is a choice answers no ehdnas decision, and is refused by label.
Anything that does not map is a UserError naming the label, never a zero.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ehdnas.core.errors import UserError
from ehdnas.core.registry import Registry
from ehdnas.spaces import darts, nb201

if TYPE_CHECKING:
    import torch

Sample = Mapping[str, Any]  # NNI's discrete sample: label -> chosen value


class NotInSpace(UserError):
    """A valid NNI sample that the ehdnas space cannot express (a DARTS node with both edges from one input)."""


class LabelMap(ABC):
    """One NNI hub space's labels against one ehdnas space's decisions."""

    space: str  # the ehdnas space's name
    labels: tuple[str, ...]  # NNI's soft label of each ehdnas decision, in decision order
    ops: tuple[str, ...]  # the ehdnas choices of every decision
    renamed: Mapping[str, str] = {}  # ehdnas op name -> NNI's, where they differ

    def soft(self, probs: Mapping[str, tuple[torch.Tensor, Sequence[str]]]) -> list[torch.Tensor]:
        """ehdnas's soft architecture, one (K_d,) vector per decision, from NNI's probabilities by label
        (each a vector and the op names of its entries, in NNI's order); differentiable in them."""
        unknown = sorted(set(probs) - set(self.labels))
        if unknown:
            raise UserError(f"NNI label {unknown[0]!r} has no counterpart in ehdnas space {self.space!r}")
        vectors = []
        expected = [self.renamed.get(op, op) for op in self.ops]  # NNI's names, in ehdnas's order
        for label in self.labels:
            if label not in probs:
                raise UserError(f"NNI label {label!r} of ehdnas space {self.space!r} is not in the model space")
            vector, names = probs[label]
            if sorted(names) != sorted(expected):
                raise UserError(
                    f"NNI label {label!r}: choices {', '.join(names)} are not ehdnas {self.space}'s "
                    f"{', '.join(expected)}"
                )
            vectors.append(vector[[list(names).index(op) for op in expected]])
        return vectors

    @abstractmethod
    def to_arch(self, sample: Sample) -> Any:
        """The ehdnas architecture of a discrete NNI sample."""

    @abstractmethod
    def to_sample(self, arch: Any) -> dict[str, Any]:
        """The discrete NNI sample of an ehdnas architecture."""

    def _check_labels(self, sample: Sample, known: Sequence[str]) -> None:
        unknown = sorted(set(sample) - set(known))
        if unknown:
            raise UserError(f"NNI label {unknown[0]!r} has no counterpart in ehdnas space {self.space!r}")
        missing = [label for label in known if label not in sample]
        if missing:
            raise UserError(f"NNI label {missing[0]!r} of ehdnas space {self.space!r} is missing from the sample")


LABEL_MAPS: Registry[LabelMap] = Registry("NNI label map")


def label_map(space: str) -> LabelMap:
    """The label map of ehdnas space `space`; a UserError naming the spaces that have one otherwise."""
    return LABEL_MAPS.get(space)


class DartsLabels(LabelMap):
    space = "darts"
    ops = darts.OPS
    labels = tuple(f"{cell}/{node + 2}_{src}" for cell in darts.CELLS for src, node in darts.EDGES)
    NODE_LABELS = tuple(
        (cell, node, k) for cell in darts.CELLS for node in range(2, darts.NODES + 2) for k in range(2)
    )  # (cell, node state, k) of each discrete op/input label pair

    def to_arch(self, sample: Sample) -> darts.Genotype:
        self._check_labels(sample, [name for c, n, k in self.NODE_LABELS for name in self._pair(c, n, k)])
        cells: dict[str, list[tuple[str, int]]] = {cell: [] for cell in darts.CELLS}
        for cell, node, k in self.NODE_LABELS:
            op_label, input_label = self._pair(cell, node, k)
            op, chosen = sample[op_label], sample[input_label]
            if op not in darts.CHOSEN_OPS:
                raise UserError(f"NNI label {op_label!r}: op {op!r} is none of ehdnas darts's chosen ops")
            if not (isinstance(chosen, Sequence) and len(chosen) == 1 and isinstance(chosen[0], int)):
                raise UserError(f"NNI label {input_label!r}: {chosen!r} is not a one-item list of an input")
            if not 0 <= chosen[0] < node:
                raise UserError(f"NNI label {input_label!r}: input {chosen[0]} out of range 0..{node - 1}")
            if k == 1 and cells[cell][-1][1] == chosen[0]:  # NNI's sample allows it; a darts node does not
                raise NotInSpace(
                    f"NNI labels {self._pair(cell, node, 0)[1]!r} and {input_label!r}: both edges of the node "
                    f"come from input {chosen[0]}; an ehdnas darts node takes two distinct inputs"
                )
            cells[cell].append((op, chosen[0]))
        return darts.Genotype(normal=tuple(cells["normal"]), reduce=tuple(cells["reduce"]))

    def to_sample(self, arch: darts.Genotype) -> dict[str, Any]:
        sample: dict[str, Any] = {}
        for cell, node, k in self.NODE_LABELS:
            op, src = arch.cell(cell)[2 * (node - 2) + k]
            op_label, input_label = self._pair(cell, node, k)
            sample[op_label], sample[input_label] = op, [src]
        return sample

    @staticmethod
    def _pair(cell: str, node: int, k: int) -> tuple[str, str]:
        return f"{cell}/op_{node}_{k}", f"{cell}/input_{node}_{k}"


class Nb201Labels(LabelMap):
    space = "nb201"
    ops = nb201.OPS
    labels = tuple(f"cell/{src}_{dst}" for src, dst in nb201.EDGES)
    renamed = {"nor_conv_1x1": "conv_1x1", "nor_conv_3x3": "conv_3x3"}

    def to_arch(self, sample: Sample) -> nb201.Cell:
        self._check_labels(sample, self.labels)
        ours = {self.renamed.get(op, op): op for op in self.ops}  # NNI's name -> ehdnas's
        for label in self.labels:
            if sample[label] not in ours:
                raise UserError(f"NNI label {label!r}: op {sample[label]!r} is none of NNI's {', '.join(ours)}")
        return nb201.Cell(tuple(ours[sample[label]] for label in self.labels))

    def to_sample(self, arch: nb201.Cell) -> dict[str, Any]:
        return {label: self.renamed.get(op, op) for label, op in zip(self.labels, arch.ops)}


for _map in (DartsLabels(), Nb201Labels()):
    LABEL_MAPS.register(_map.space)(_map)
