"""1-bit convolutions (DCP-NAS, XNOR-Net style): sign weights and activations, channel-wise scale.

`BinaryConv2d` computes `beta * (sign(a) (*) sign(w))`, with `beta` the mean
absolute weight of each output channel, which is what an accelerator's XNOR and
popcount lanes do. Gradients pass straight through `sign` where the input lies
in [-1, 1] and are zero outside. `reconstruction_loss` is DCP-NAS's
`||w - beta * sign(w)||^2` over every binary convolution of a module.

Exported to ONNX, a binary convolution is a `Sign` node feeding a `Conv` whose
weights are `beta * sign(w)`: standard ONNX that every runtime runs, and from
which the systolic targets recognise 1-bit work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """sign(x), with the straight-through gradient inside [-1, 1]."""
    if torch.onnx.is_in_onnx_export():
        return torch.sign(x)  # the ONNX `Sign` node, which runners and the systolic targets read
    return _SignSTE.apply(x)


class BinaryConv2d(nn.Conv2d):
    """A convolution of 1-bit activations by 1-bit weights, scaled per output channel."""

    def scale(self) -> torch.Tensor:
        return self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)  # beta: (out, 1, 1, 1)

    def binary_weight(self) -> torch.Tensor:
        return self.scale() * binarize(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.binary_weight()
        if torch.onnx.is_in_onnx_export():
            weight = weight.data  # leaves the trace: the exported Conv holds beta * sign(w) as its weights
        return F.conv2d(binarize(x), weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def reconstruction(self) -> torch.Tensor:
        """||w - beta sign(w)||^2: how far the 1-bit weights are from the real ones they stand for."""
        return (self.weight - self.scale() * torch.sign(self.weight)).pow(2).sum()


def reconstruction_loss(module: nn.Module) -> torch.Tensor:
    """The sum of every binary convolution's reconstruction error in `module` (0 when it has none)."""
    terms = [m.reconstruction() for m in module.modules() if isinstance(m, BinaryConv2d)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def memory_bits(module: nn.Module) -> int:
    """Parameter storage for inference: 1 bit per binary weight, 32 bits per real parameter.

    A binary convolution's scale beta needs no storage of its own: every one in
    the DARTS cells feeds a batch norm, which absorbs it, or another binary
    convolution, whose sign removes it (beta > 0).
    """
    bits = 0
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            bits += p.numel() * (1 if isinstance(m, BinaryConv2d) and name == "weight" else 32)
    return bits
