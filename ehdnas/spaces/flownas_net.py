"""The FlowNAS encoder as torch modules: MBConv blocks, stages of them, and the whole encoder.

Shapes in comments are (B, C, H, W). Blocks and stages take plain sizes, not an
architecture, so a weight-sharing supernet can reuse them; none of them holds
an "active" sub-network.

Normalisation is BatchNorm, not the instance norm of RAFT's feature encoder:
in eval mode it folds into the convolution at export, so the measured latency is
the deployed network's, and every target (int8 LiteRT and the Edge TPU among
them) runs it; RAFT's context encoder, which FlowNAS gives the same
sub-architecture, uses BatchNorm already.
"""

from __future__ import annotations

from torch import Tensor, nn

from ehdnas.spaces.flownas import STAGES, STEM_CHANNELS, EncoderArch


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Convolution with 'same' padding (exact /stride on sizes it divides), BatchNorm, then ReLU if asked."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2): 1x1 expand, kxk depthwise, 1x1 project; ReLU, no squeeze-excite.

    A residual block's last BatchNorm scale starts at zero. Measured on the 48x64 `photos` pairs, the largest
    encoder's flow estimator after 8 of 15 teacher epochs: val EPE 8.03 px with it, 8.50 px without (zero flow 8.88).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        # An expand ratio of 1 has nothing to expand: the depthwise conv works on the input directly.
        expand_layers = [conv_bn(c_in, hidden, 1)] if expand != 1 else []
        self.body = nn.Sequential(
            *expand_layers,
            conv_bn(hidden, hidden, kernel, stride, groups=hidden),
            conv_bn(hidden, c_out, 1, relu=False),  # linear bottleneck
        )
        self.residual = stride == 1 and c_in == c_out  # the identity path needs the output's shape
        if self.residual:  # starts as the identity (Goyal et al., 2017): a deep encoder trains like a shallow one
            nn.init.zeros_(self.body[-1][1].weight)

    def forward(self, x: Tensor) -> Tensor:  # (B, c_in, H, W) -> (B, c_out, H/stride, W/stride)
        y = self.body(x)
        return x + y if self.residual else y


class Stage(nn.Sequential):
    """`depth` MBConv blocks; only the first one strides and changes the channel count."""

    def __init__(self, c_in: int, c_out: int, kernel: int, depth: int, expand: int, stride: int) -> None:
        super().__init__(
            *(MBConv(c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1, expand) for i in range(depth))
        )


class FlowEncoder(nn.Module):
    """Image to features at 1/8 resolution: stem, the 6 stages of `arch`, 1x1 projection to `out_dim` channels."""

    def __init__(self, arch: EncoderArch, in_channels: int, out_dim: int) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, STEM_CHANNELS, 7, stride=2)
        stages, c_in = [], STEM_CHANNELS
        for choice, spec in zip(arch.stages, STAGES):
            stages.append(Stage(c_in, choice.width, choice.kernel, choice.depth, choice.expand, spec.stride))
            c_in = choice.width
        self.stages = nn.Sequential(*stages)
        # A fixed channel count, as RAFT's projection gives, so what consumes the features
        # (the correlation volume) does not depend on the sampled width.
        self.project = nn.Conv2d(c_in, out_dim, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        x = self.stem(x)  # (B, 64, H/2, W/2)
        x = self.stages(x)  # (B, width of stage 6, H/8, W/8)
        return self.project(x)  # (B, out_dim, H/8, W/8)
