"""The work of an ONNX graph as a systolic array sees it: GEMM-shaped layers and vector-unit layers.

A convolution becomes a GEMM by im2col: an (output pixels) x (window) operand
times a (window) x (filters) operand, per group. A fully connected layer is a
1x1 convolution on a 1x1 image. Everything else that does arithmetic (pooling,
element-wise, normalisation, activation) runs on the accelerator's vector unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.onnx_model import inferred_shapes
from ehdnas.core.errors import UserError


@dataclass(frozen=True)
class ConvLayer:
    """One convolution (or fully connected layer) in SCALE-Sim's terms; sizes are per group."""

    name: str
    ifmap_h: int  # input height, padding included
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int  # input channels of one group
    filters: int  # output channels of one group
    stride_h: int = 1
    stride_w: int = 1
    groups: int = 1
    binary: bool = False  # 1-bit weights and activations (XNOR + popcount)

    @property
    def out_h(self) -> int:
        return (self.ifmap_h - self.filter_h) // self.stride_h + 1

    @property
    def out_w(self) -> int:
        return (self.ifmap_w - self.filter_w) // self.stride_w + 1

    @property
    def gemm(self) -> tuple[int, int, int]:
        """(Sr, T, Sc) of one group: output pixels, window size, filters."""
        return self.out_h * self.out_w, self.filter_h * self.filter_w * self.channels, self.filters

    @property
    def macs(self) -> int:
        sr, t, sc = self.gemm
        return sr * t * sc * self.groups


@dataclass(frozen=True)
class VectorLayer:
    """Work for the vector unit: `ops` element operations reading `read_elems` and writing `write_elems`."""

    name: str
    op: str  # the ONNX operator
    ops: int
    read_elems: int
    write_elems: int


# Operators that only move or relabel data: free on an accelerator that addresses its buffers.
_LAYOUT_OPS = {
    "Cast", "Concat", "Constant", "Dropout", "Expand", "Flatten", "Gather", "Identity", "Pad", "Reshape",
    "Shape", "Slice", "Split", "Squeeze", "Transpose", "Unsqueeze",
}  # fmt: skip
_POOLS = {"MaxPool", "AveragePool", "LpPool"}


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _conv(node: Any, shapes: dict[str, list[int]], binary: bool) -> ConvLayer:
    x, w, out = shapes[node.input[0]], shapes[node.input[1]], shapes[node.output[0]]
    groups = int(_attr(node, "group", 1))
    strides = list(_attr(node, "strides", [1, 1]))
    kh, kw = w[2], (w[3] if len(w) > 3 else 1)
    oh, ow = out[2], (out[3] if len(out) > 3 else 1)
    sh, sw = strides[0], (strides[1] if len(strides) > 1 else 1)
    # The input SCALE-Sim should see: padding included, trimmed to what the outputs read (which also
    # turns a dilated convolution into the dense one of the same taps). The batch stacks output rows.
    return ConvLayer(
        name=node.name or node.output[0],
        ifmap_h=(oh * x[0] - 1) * sh + kh,
        ifmap_w=(ow - 1) * sw + kw,
        filter_h=kh,
        filter_w=kw,
        channels=w[1],
        filters=w[0] // groups,
        stride_h=sh,
        stride_w=sw,
        groups=groups,
        binary=binary,
    )


def _matmul(node: Any, shapes: dict[str, list[int]]) -> ConvLayer:
    a, b = shapes[node.input[0]], shapes[node.input[1]]
    trans_a, trans_b = (
        node.op_type == "Gemm" and _attr(node, "transA", 0),
        node.op_type == "Gemm" and _attr(node, "transB", 0),
    )
    rows = a[-1] if trans_a else math.prod(a[:-1])
    depth = a[-2] if trans_a else a[-1]
    cols = b[-2] if trans_b else b[-1]
    # A fully connected layer is a 1x1 convolution over `rows` pixels.
    return ConvLayer(node.name or node.output[0], rows, 1, 1, 1, depth, cols)


def graph_layers(path: Path | str, input_shapes: dict[str, tuple[int, ...]]) -> list[ConvLayer | VectorLayer]:
    """Every layer of an ONNX model that does work, in graph order, at the given input shapes.

    A convolution whose input comes straight from a `Sign` node is binary: that is how a
    1-bit network keeps, in standard ONNX, what an accelerator needs to run it on XNOR lanes.
    """
    import onnx

    try:
        graph, shapes = inferred_shapes(onnx.load(str(path)), input_shapes)
    except ValueError as err:
        raise UserError(
            f"{Path(path).name}: ONNX shape inference failed ({err}); the simulator needs every shape"
        ) from None
    weights = {init.name for init in graph.initializer}
    producer = {out: node.op_type for node in graph.node for out in node.output}
    layers: list[ConvLayer | VectorLayer] = []
    for node in graph.node:
        if node.op_type in _LAYOUT_OPS:
            continue
        known = [shapes.get(name) for name in (*node.input, *node.output) if name]
        if any(shape is None or 0 in shape for shape in known):
            raise UserError(f"{Path(path).name}: the shape of an input or output of {node.op_type} is unknown")
        if node.op_type == "Conv":
            layers.append(_conv(node, shapes, producer.get(node.input[0]) == "Sign"))
        elif node.op_type in ("Gemm", "MatMul"):
            layers.append(_matmul(node, shapes))
        else:
            out = math.prod(shapes[node.output[0]])
            window = math.prod(_attr(node, "kernel_shape", [1])) if node.op_type in _POOLS else 1
            reads = sum(math.prod(shapes[name]) for name in node.input if name and name not in weights)
            if node.op_type.startswith("Global"):
                window = reads // max(out, 1)
            layers.append(VectorLayer(node.name or node.output[0], node.op_type, out * window, reads, out))
    return layers
