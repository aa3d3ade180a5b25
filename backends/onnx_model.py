"""An ONNX file as a runner sees it: validated, its real inputs with static shapes, fixed inputs."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ehdnas.core.errors import UserError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: Shape
    dtype: str  # numpy dtype name


@dataclass(frozen=True)
class OnnxModel:
    """A loaded, checked ONNX model whose every input has a static shape."""

    path: Path
    sha256: str
    inputs: tuple[InputSpec, ...]
    opset: int
    macs: int | None  # multiply-accumulates of Conv/Gemm/MatMul; None when a shape is unknown
    params: int  # elements of the initializers
    # The torch module the file was exported from, when the caller has it: targets whose converter
    # starts from torch (TFLite) use it; the file stays the model's identity and key.
    torch_module: Any = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    def fixed_inputs(self) -> dict[str, np.ndarray]:
        """The same inputs for the same model every time (seeded by the file's hash)."""
        rng = np.random.default_rng(int(self.sha256[:16], 16))
        feeds = {}
        for spec in self.inputs:
            dtype = np.dtype(spec.dtype)
            if dtype.kind == "f":
                feeds[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
            else:
                feeds[spec.name] = np.zeros(spec.shape, dtype=dtype)
        return feeds

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "sha256": self.sha256,
            "opset": self.opset,
            "macs": self.macs,
            "params": self.params,
            "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in self.inputs],
        }


def parse_input_shapes(items: list[str]) -> dict[str, Shape]:
    """`1,3,224,224` (for the only input) or `name=1,3,224,224`, as given to `--input-shape`."""
    shapes: dict[str, Shape] = {}
    for item in items:
        name, _, dims = item.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(","))
        except ValueError:
            raise UserError(f"--input-shape {item!r}: expected comma-separated integers like 1,3,224,224") from None
        if any(d < 1 for d in shape):
            raise UserError(f"--input-shape {item!r}: every dimension must be at least 1")
        shapes[name] = shape
    return shapes


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(path: Path | str, input_shapes: dict[str, Shape] | None = None) -> OnnxModel:
    """Read and check `path`; every input must end up with a static shape.

    `input_shapes` maps input names to shapes ('' names the only input) and
    overrides what the file declares, which is how a dynamic-shape model is run.
    """
    import onnx
    from onnx import helper

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises several unrelated types on garbage
        raise UserError(f"{path}: not a valid ONNX model ({type(err).__name__}: {err})") from None
    graph = proto.graph
    if not graph.node:
        raise UserError(f"{path}: not a valid ONNX model (the graph has no nodes)")
    initializers = {init.name for init in graph.initializer}  # old models list weights as inputs too
    declared = [value for value in graph.input if value.name not in initializers]
    if not declared:
        raise UserError(f"{path}: the model has no inputs")

    overrides = dict(input_shapes or {})
    if "" in overrides:
        if len(declared) != 1:
            names = ", ".join(v.name for v in declared)
            raise UserError(f"{path}: the model has several inputs ({names}); use --input-shape NAME=DIMS")
        overrides[declared[0].name] = overrides.pop("")
    unknown = sorted(set(overrides) - {v.name for v in declared})
    if unknown:
        raise UserError(f"{path}: --input-shape names {unknown[0]!r}, which is not an input of the model")

    specs = []
    for value in declared:
        tensor_type = value.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        if value.name in overrides:
            shape = overrides[value.name]
        else:
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim]
            if not tensor_type.HasField("shape") or None in dims:
                shown = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim
                ]
                raise UserError(
                    f"{path}: input {value.name!r} has a dynamic shape {shown}; give a static one with --input-shape"
                )
            shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        specs.append(InputSpec(value.name, shape, dtype))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxModel(
        path=path,
        sha256=_file_sha256(path),
        inputs=tuple(specs),
        opset=opset,
        macs=_count_macs(proto, {spec.name: spec.shape for spec in specs}),
        params=sum(math.prod(init.dims) for init in graph.initializer),
    )


def inferred_shapes(proto: Any, input_shapes: dict[str, Shape]) -> tuple[Any, dict[str, list[int]]]:
    """The graph after ONNX shape inference at the given input shapes, and every tensor's shape in it.

    Raises ValueError when inference fails (some custom or malformed graphs)."""
    from onnx import shape_inference

    for value in proto.graph.input:  # pin the inputs so every inferred shape is static
        if value.name in input_shapes:
            dims = value.type.tensor_type.shape.dim
            del dims[:]
            for size in input_shapes[value.name]:
                dims.add().dim_value = size
    try:
        graph = shape_inference.infer_shapes(proto).graph
    except Exception as err:  # onnx raises several unrelated types
        raise ValueError(str(err)) from None
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        shapes.setdefault(value.name, [d.dim_value for d in value.type.tensor_type.shape.dim])
    return graph, shapes


def _count_macs(proto: Any, input_shapes: dict[str, Shape]) -> int | None:
    """Multiply-accumulates of the compute layers, from ONNX shape inference at the given input shapes."""
    try:
        graph, shapes = inferred_shapes(proto, input_shapes)
    except ValueError:  # the runner will say more
        return None
    macs = 0
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        out, a, b = (shapes.get(name) for name in (node.output[0], node.input[0], node.input[1]))
        if not (out and a and b) or 0 in out or 0 in a or 0 in b:
            return None
        if node.op_type == "Conv":
            macs += math.prod(out) * math.prod(b[1:])  # weight (M, C/group, kh, kw): MACs per output element
        else:
            trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
            macs += math.prod(out) * (a[-2] if trans_a else a[-1])
    return macs
