"""The weight-sharing supernet of the FlowNAS encoder space (Once-for-All style).

It holds the largest encoder's weights (a `FlowEncoder` of `space.largest()`, so
a trained largest encoder loads straight in), and every architecture of the
space runs on slices of them:

- kernel 3 uses the centre 3x3 taps of each 5x5 depthwise kernel. No learned
  kernel transform matrix (OFA adds one per layer): without it the supernet's
  parameters are exactly the largest network's and `extract` is a plain copy of
  slices, and with only two kernel sizes the centre crop is the whole sharing;
- a smaller width or expand ratio uses the first channels of convolutions and
  BatchNorms alike;
- a smaller depth uses the first blocks of a stage;
- expand 1 has no expand conv (as in the standalone MBConv): the block's
  depthwise conv runs its first c_in channels on the block's input directly.

The architecture is an argument of `forward`, never state of the module, so one
step can run several sub-networks (the sandwich rule) without one leaking into
another. BatchNorm normalises with each call's batch statistics in training and
updates the leading slice of the shared running statistics, which therefore mix
every sub-network trained; before evaluating one, recompute its own with
`calibrate_bn`, as OFA does.

Shapes in comments are (B, C, H, W).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ehdnas.spaces.flownas import STAGES, STEM_CHANNELS, EncoderArch, FlowNASConfig, FlowNASSpace, StageChoice
from ehdnas.spaces.flownas_net import FlowEncoder, MBConv


class FlowNASSupernet(nn.Module):
    """The largest FlowNAS encoder's weights, run as any architecture of the space by slicing."""

    def __init__(self, config: FlowNASConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.space = FlowNASSpace(config)
        with torch.random.fork_rng(devices=[]):  # initial weights from `seed`, the global RNG left as it was
            torch.manual_seed(seed)
            self.net = FlowEncoder(self.space.largest(), self.space.config.in_channels, self.space.config.out_dim)

    def forward(self, x: Tensor, arch: EncoderArch) -> Tensor:  # (B, in_channels, H, W)
        x = self._unit(self.net.stem, x, STEM_CHANNELS, 7, stride=2)  # (B, 64, H/2, W/2)
        for choice, spec, stage in zip(arch.stages, STAGES, self.net.stages):
            for i in range(choice.depth):  # the first blocks of the stage
                x = self._block(stage[i], x, choice, spec.stride if i == 0 else 1)  # (B, width, H', W')
        # x: (B, width of stage 6, H/8, W/8)
        weight = self.net.project.weight[:, : x.shape[1]]  # (out_dim, width, 1, 1)
        return F.conv2d(x, weight, self.net.project.bias)  # (B, out_dim, H/8, W/8)

    def _block(self, block: MBConv, x: Tensor, choice: StageChoice, stride: int) -> Tensor:
        """An MBConv block of the largest network as `choice` sizes it: (B, c_in, H, W) -> (B, width, H/s, W/s)."""
        c_in = x.shape[1]
        hidden = c_in * choice.expand
        *expand, depthwise, project = block.body
        y = self._unit(expand[0], x, hidden, 1) if choice.expand != 1 else x  # (B, hidden, H, W)
        y = self._unit(depthwise, y, hidden, choice.kernel, stride, depthwise=True)  # (B, hidden, H/s, W/s)
        y = self._unit(project, y, choice.width, 1)  # (B, width, H/s, W/s)
        return x + y if stride == 1 and c_in == choice.width else y  # the residual rule of MBConv

    def _unit(
        self, unit: nn.Sequential, x: Tensor, c_out: int, kernel: int, stride: int = 1, depthwise: bool = False
    ) -> Tensor:
        """A conv-BN(-ReLU) unit on its first `c_out` channels and centre `kernel` taps, through views of its weights.

        (B, c_in, H, W) -> (B, c_out, H/stride, W/stride); a depthwise unit needs c_in == c_out.
        """
        conv, bn = unit[0], unit[1]
        crop = (conv.kernel_size[0] - kernel) // 2
        c_in = 1 if depthwise else x.shape[1]
        weight = conv.weight[:c_out, :c_in, crop : crop + kernel, crop : crop + kernel]  # (c_out, c_in or 1, k, k)
        y = F.conv2d(x, weight, None, stride, kernel // 2, groups=c_out if depthwise else 1)
        # In training the running statistics' views are updated in place, so the shared buffers' slices move.
        y = F.batch_norm(
            y,
            bn.running_mean[:c_out],
            bn.running_var[:c_out],
            bn.weight[:c_out],
            bn.bias[:c_out],
            self.training,
            bn.momentum,
            bn.eps,
        )
        return F.relu(y) if len(unit) > 2 else y

    def extract(self, arch: EncoderArch) -> FlowEncoder:
        """`space.build(arch)` with the shared weights and running statistics copied in (train mode, as built).

        Copied by parameter name rather than through `_unit`, so the oracle test that compares it with `forward`
        checks the slicing rule twice, two ways.
        """
        with torch.random.fork_rng(devices=[]):  # its initial weights are all overwritten; leave the global RNG be
            net = self.space.build(arch)
        reference = self.net.project.weight
        net = net.to(reference.device, reference.dtype)
        shared = self.net.state_dict()
        with torch.no_grad():
            for name, tensor in net.state_dict().items():  # tensors that share storage with `net`'s
                tensor.copy_(_leading(shared[_shared_name(name, arch)], tensor.shape))
        return net

    def calibrate_bn(self, arch: EncoderArch, batches: Iterable[Tensor]) -> FlowEncoder:
        """`extract(arch)` in eval mode, its BatchNorm statistics recomputed as the average over `batches`.

        The supernet's own running statistics mix every sub-network trained, so one evaluated with them is off;
        the supernet is left as it was.
        """
        net = self.extract(arch)
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        momentum = norms[0].momentum
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None  # a cumulative average: every batch weighs the same
        net.train()
        seen = 0
        with torch.no_grad():
            for x in batches:  # (B, in_channels, H, W)
                net(x)
                seen += 1
        if not seen:
            raise ValueError("calibrate_bn needs at least one batch")
        for bn in norms:
            bn.momentum = momentum
        return net.eval()


def sandwich(space: FlowNASSpace, rng: np.random.Generator, n_random: int = 2) -> list[EncoderArch]:
    """The architectures of one sandwich-rule step: the largest, the smallest, and `n_random` drawn from `rng`."""
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(n_random))]


def _shared_name(name: str, arch: EncoderArch) -> str:
    """The supernet's name for a built network's parameter or buffer `name`.

    Both are FlowEncoders, so names agree except in a block built without an expand conv (expand 1) in a stage
    whose largest expand has one: its depthwise and project units are the largest block's units 1 and 2.
    """
    parts = name.split(".")  # e.g. stages.1.0.body.0.0.weight
    if parts[0] == "stages" and parts[3] == "body":
        stage = int(parts[1])
        if arch.stages[stage].expand == 1 and max(STAGES[stage].expand) != 1:
            parts[4] = str(int(parts[4]) + 1)
    return ".".join(parts)


def _leading(source: Tensor, shape: torch.Size) -> Tensor:
    """The first entries of `source` along every dim, but the centre taps along a convolution kernel's (dims 2, 3)."""
    index = []
    for dim, (have, want) in enumerate(zip(source.shape, shape)):
        start = (have - want) // 2 if dim >= 2 else 0
        index.append(slice(start, start + want))
    return source[tuple(index)]
