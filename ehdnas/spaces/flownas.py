"""The FlowNAS encoder space (arXiv 2207.01271): the feature encoder of a RAFT-style optical-flow estimator.

A 7x7 stride-2 stem (64 channels) is followed by 6 MBConv stages (ReLU, no
squeeze-excite) with strides 1,1,2,1,2,1, so features come out at 1/8 of the
input resolution; a 1x1 projection gives them a fixed channel count. Each stage
chooses its depthwise kernel, width (output channels), depth (blocks) and expand
ratio from the table below.

Text form (canonical), one `k<kernel>w<width>d<depth>e<expand>` per stage::

    k3w64d2e1|k5w72d3e4|k3w96d2e6|k3w112d3e6|k5w128d4e6|k3w136d2e6

The predictor encoding has 4 decisions per stage, 24 in all, in the order
(kernel, width, depth, expand); a stage with a single choice keeps its decision
(1 choice) so that the encoding has the same length for every architecture.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class StageSpec:
    """What one stage may choose, and its fixed stride."""

    stride: int
    kernel: tuple[int, ...]
    width: tuple[int, ...]
    depth: tuple[int, ...]
    expand: tuple[int, ...]


STEM_CHANNELS = 64
FIELDS = ("kernel", "width", "depth", "expand")  # decision order within a stage, and the text form's letters
# FlowNAS's search space, stage by stage, as the paper gives it.
STAGES: tuple[StageSpec, ...] = (
    StageSpec(stride=1, kernel=(3, 5), width=(56, 64), depth=(1, 2), expand=(1,)),
    StageSpec(stride=1, kernel=(3, 5), width=(64, 72), depth=(1, 2, 3), expand=(1, 2, 4)),
    StageSpec(stride=2, kernel=(3, 5), width=(88, 96), depth=(1, 2, 3), expand=(4, 5, 6)),
    StageSpec(stride=1, kernel=(3, 5), width=(96, 104, 112), depth=(1, 2, 3), expand=(4, 5, 6)),
    StageSpec(stride=2, kernel=(3, 5), width=(112, 120, 128), depth=(2, 3, 4), expand=(6,)),
    StageSpec(stride=1, kernel=(3, 5), width=(128, 136), depth=(1, 2), expand=(6,)),
)
_STAGE_TEXT = re.compile(r"k(\d{1,9})w(\d{1,9})d(\d{1,9})e(\d{1,9})")  # int() refuses 4300 digits


@dataclass(frozen=True)
class StageChoice:
    """The choices of one stage: depthwise kernel size, output channels, number of blocks, expand ratio."""

    kernel: int
    width: int
    depth: int
    expand: int

    def to_text(self) -> str:
        return f"k{self.kernel}w{self.width}d{self.depth}e{self.expand}"


@dataclass(frozen=True)
class EncoderArch:
    """A FlowNAS encoder architecture: one StageChoice per stage, checked against the table."""

    stages: tuple[StageChoice, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if len(self.stages) != len(STAGES):
            raise UserError(f"flownas encoder: expected {len(STAGES)} stages, got {len(self.stages)}")
        for number, (stage, spec) in enumerate(zip(self.stages, STAGES), start=1):
            if not isinstance(stage, StageChoice):
                raise UserError(f"flownas encoder stage {number}: {brief(stage)} is not a StageChoice")
            for name in FIELDS:
                value, allowed = getattr(stage, name), getattr(spec, name)
                if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
                    known = ", ".join(map(str, allowed))
                    raise UserError(f"flownas encoder stage {number}: {name} {brief(value)} is not one of {known}")

    def to_text(self) -> str:
        return "|".join(stage.to_text() for stage in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [{name: getattr(stage, name) for name in FIELDS} for stage in self.stages]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderArch:
        data = json_object(data, ["stages"], "flownas encoder")
        accepted = f"a list of {len(STAGES)} objects with the keys {list(FIELDS)}"
        stages = []
        for number, stage in enumerate(json_list(data["stages"], "flownas encoder stages", accepted), start=1):
            stages.append(StageChoice(**json_object(stage, FIELDS, f"flownas encoder stage {number}")))
        return cls(tuple(stages))

    @classmethod
    def from_text(cls, text: str) -> EncoderArch:
        parts = text.strip().split("|")
        if len(parts) != len(STAGES):
            raise UserError(
                f"flownas encoder: expected {len(STAGES)} stages separated by '|', got {len(parts)}: {brief(text)}"
            )
        stages = []
        for number, part in enumerate(parts, start=1):
            match = _STAGE_TEXT.fullmatch(part.strip())
            if not match:
                raise UserError(
                    f"flownas encoder stage {number}: {brief(part.strip())} is not k<kernel>w<width>d<depth>e<expand>"
                )
            stages.append(StageChoice(*map(int, match.groups())))
        return cls(tuple(stages))


@dataclass(frozen=True)
class FlowNASConfig:
    """Settings of the encoder an architecture is built into.

    The defaults are a small training crop so that building, exporting and
    measuring stay fast; real flow inputs (e.g. 368x496) are set by option.
    """

    input_height: int = 64
    input_width: int = 96
    in_channels: int = 3
    out_dim: int = 128  # channels after the final 1x1 projection, whatever the last stage's width

    def check(self) -> None:
        for name in ("input_height", "input_width"):
            value = getattr(self, name)
            if value < 8 or value % 8:
                raise UserError(f"space 'flownas' option {name!r} must be a positive multiple of 8, got {value}")
        for name in ("in_channels", "out_dim"):
            if getattr(self, name) < 1:
                raise UserError(f"space 'flownas' option {name!r} must be at least 1")


@register_space("flownas")
class FlowNASSpace(SearchSpace[EncoderArch]):
    name = "flownas"
    Config = FlowNASConfig

    @property
    def decisions(self) -> Sequence[Decision]:
        return [
            Decision(f"stage{number}.{name}", tuple(map(str, getattr(spec, name))))
            for number, spec in enumerate(STAGES, start=1)
            for name in FIELDS
        ]

    def sample(self, rng: np.random.Generator) -> EncoderArch:
        return self.decode([int(rng.integers(len(d.choices))) for d in self.decisions])

    def largest(self) -> EncoderArch:
        """Every stage at its largest kernel, width, depth and expand: the network a weight-sharing supernet holds."""
        return EncoderArch(tuple(StageChoice(*(max(getattr(spec, name)) for name in FIELDS)) for spec in STAGES))

    def smallest(self) -> EncoderArch:
        """Every stage at its smallest choices: with `largest`, the two ends of the sandwich rule."""
        return EncoderArch(tuple(StageChoice(*(min(getattr(spec, name)) for name in FIELDS)) for spec in STAGES))

    def from_dict(self, data: Mapping[str, Any]) -> EncoderArch:
        return EncoderArch.from_dict(data)

    def from_text(self, text: str) -> EncoderArch:
        return EncoderArch.from_text(text)

    def encode(self, arch: EncoderArch) -> list[int]:
        return [
            getattr(spec, name).index(getattr(stage, name))
            for stage, spec in zip(arch.stages, STAGES)
            for name in FIELDS
        ]

    def decode(self, indices: Sequence[int]) -> EncoderArch:
        decisions = self.decisions
        if len(indices) != len(decisions):
            raise UserError(f"flownas encoding: expected {len(decisions)} indices, got {len(indices)}")
        for decision, index in zip(decisions, indices):
            if not 0 <= index < len(decision.choices):
                raise UserError(
                    f"flownas encoding: {decision.name} index {index} out of range 0..{len(decision.choices) - 1}"
                )
        per_stage = len(FIELDS)
        stages = []
        for s, spec in enumerate(STAGES):
            row = indices[s * per_stage : (s + 1) * per_stage]
            stages.append(StageChoice(**{name: getattr(spec, name)[i] for name, i in zip(FIELDS, row)}))
        return EncoderArch(tuple(stages))

    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        return (1, c.in_channels, c.input_height, c.input_width)

    def build(self, arch: EncoderArch) -> torch.nn.Module:
        from ehdnas.spaces.flownas_net import FlowEncoder

        return FlowEncoder(arch, self.config.in_channels, self.config.out_dim)

    # choice_macs stays None: no additive model is exact, since a stage's width is the next stage's input
    # channels (and its expand conv's), so MACs have products of choices across stages.
