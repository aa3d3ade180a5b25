"""LiteRT (TFLite) at run time: a `.tflite` file loaded in the interpreter, its operators, the runtime's version.

This is all a device needs to time a model a host converted for it, so it
imports no converter and no torch (the `Device side imports` contract in
pyproject.toml); making `.tflite` files is `backends.litert_conversion`'s.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import Availability, importable, requires_extra
from backends.output import redirected_output
from ehdnas.core.errors import UserError


def installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def interpreter_module() -> Any:
    """The module holding `Interpreter` and `load_delegate`: `ai_edge_litert`'s, else `tflite_runtime`'s."""
    if runtime_module() == "ai_edge_litert":
        from ai_edge_litert import interpreter
    else:
        from tflite_runtime import interpreter  # type: ignore[no-redef]
    return interpreter


def runtime_versions() -> dict[str, str]:
    """The installed LiteRT runtime (its version is part of every key)."""
    return {name: v for name in ("ai-edge-litert", "tflite-runtime") if (v := installed(name))}


def runtime_module() -> str:
    """The runtime's module: `ai_edge_litert` (the `tflite` extra's), or `tflite_runtime` where only it is installed."""
    return "ai_edge_litert" if importable("ai_edge_litert") or not importable("tflite_runtime") else "tflite_runtime"


def availability() -> Availability:
    """Whether the runtime is installed: all a device that is sent `.tflite` files needs."""
    return requires_extra("tflite", runtime_module())


def tflite_ops(path: Path) -> list[str]:
    """The operators of a `.tflite` file's main graph in execution order (custom ops by their name)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    names = {getattr(schema.BuiltinOperator, n): n for n in dir(schema.BuiltinOperator) if not n.startswith("_")}
    ops = []
    for op in model.subgraphs[0].operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        ops.append(custom if builtin == schema.BuiltinOperator.CUSTOM else names.get(builtin, str(builtin)))
    return ops


class Session:
    """A `.tflite` model loaded in the LiteRT interpreter, run on float32 inputs whatever its I/O types."""

    def __init__(self, path: Path, threads: int, xnnpack: bool = True, delegates: list[Any] | None = None) -> None:
        module = interpreter_module()
        resolver = module.OpResolverType.AUTO if xnnpack else module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with redirected_output(os.devnull):  # XNNPACK announces itself on stderr
                self.interpreter = module.Interpreter(
                    model_path=str(path),
                    num_threads=threads,
                    experimental_delegates=delegates,
                    experimental_op_resolver_type=resolver,
                )
                self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as err:
            raise UserError(f"{path}: the LiteRT interpreter cannot load the model ({err})") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"{path}: LiteRT targets run networks of one input and one output")
        self.input, self.output = inputs[0], outputs[0]

    def feed(self, x: np.ndarray) -> None:
        """Set the input from float32 `x`, quantized with the model's scale and zero point when it takes integers."""
        dtype = self.input["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(dtype))

    def result(self) -> np.ndarray:
        """The output as float32, dequantized when the model gives integers."""
        y = self.interpreter.get_tensor(self.output["index"])
        if np.issubdtype(y.dtype, np.integer):
            scale, zero = self.output["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.feed(x)
        self.interpreter.invoke()
        return self.result()
