"""Making `.tflite` files: a model converted to LiteRT, float32 or full-integer int8, on the host.

Conversion starts from the torch module the ONNX file was exported from
(`OnnxModel.torch_module`), with `litert-torch`: no maintained ONNX-to-TFLite
converter installs beside this project (onnx2tf 1.29 pins NumPy 1.26, ONNX 1.19
and TensorFlow 2.19). int8 is post-training static quantization by
`ai-edge-quantizer` (int8 weights per channel, int8 activations, int8 input and
output), calibrated on the inputs the caller gives.

Conversion takes seconds (about 10 s for a small DARTS network), so converted
models are cached on disk by (ONNX file hash, input shapes, precision,
calibration, runtime and converter versions): a collection converts each
network once. A remote device is sent the file and needs none of this.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import litert
from backends.base import Availability, importable, requires_extra
from backends.onnx_model import OnnxModel
from backends.output import redirected_output
from ehdnas.core.errors import UserError
from ehdnas.core.host import fingerprint
from ehdnas.core.paths import cache_dir

PRECISIONS = ("float32", "int8")
CONVERSION_VERSION = 2  # in every cache key: 2 rewrites average pools that exclude padding
CONVERTERS = ("litert-torch", "ai-edge-quantizer")
# litert-torch and what it imports, installed with --no-deps (the Makefile's LITERT_TORCH, which says why):
# its declared dependencies do not resolve beside this package's, so no extra can carry it.
LITERT_TORCH = ("litert-torch", "litert-converter", "jax", "jaxlib", "opt_einsum", "torchao")


def converter_versions() -> dict[str, str]:
    """The installed converters (their versions are part of every key)."""
    return {name: v for name in CONVERTERS if (v := litert.installed(name))}


def availability() -> Availability:
    """The runtime and the quantizer come with the `tflite` extra; the converter, litert-torch, only by its own
    --no-deps install."""
    status = requires_extra("tflite", litert.runtime_module(), "ai_edge_quantizer")
    problems = [] if status.available else [status.reason]
    if not importable("litert_torch"):
        problems.append(
            f"litert_torch (the converter) not installed: pip install --no-deps {' '.join(LITERT_TORCH)}"
            " (at the versions of ehdnas's constraints.txt: `make install` does it)"
        )
    return Availability(not problems, "; ".join(problems))


@dataclass(frozen=True)
class Converted:
    """A `.tflite` file made from an ONNX model's torch module, and how it was made."""

    path: Path
    info: dict[str, Any]  # precision, convert_s, quantize_s, ops, from_cache


def convert(
    model: OnnxModel, precision: str, calibration: str, calibration_inputs: Callable[[], np.ndarray]
) -> Converted:
    """`model` as a `.tflite` file of `precision`, from the cache or made now (int8 from the float32 file).

    `calibration` names the calibration set in the cache key; `calibration_inputs`
    is called only when an int8 model has to be made.
    """
    if model.torch_module is None:
        raise UserError(
            f"{model.path}: LiteRT targets convert the torch module a network was built from (litert-torch); "
            "an ONNX file alone cannot be converted here, since no maintained ONNX-to-TFLite converter installs "
            "beside this project (onnx2tf 1.29 pins NumPy 1.26 and TensorFlow 2.19). Measure networks of a "
            "search space (--space), or this file on ort-cpu or tvm-llvm"
        )
    shapes = [list(spec.shape) for spec in model.inputs]
    calibration = calibration if precision == "int8" else ""
    versions = {**litert.runtime_versions(), **converter_versions()}
    key = fingerprint([model.sha256, shapes, precision, calibration, versions, CONVERSION_VERSION])
    folder = cache_dir("tflite", "models")
    path, info_file = folder / f"{key}.tflite", folder / f"{key}.json"
    if path.is_file() and info_file.is_file():
        return Converted(path, {**json.loads(info_file.read_text()), "from_cache": True})
    if precision == "int8":
        source = convert(model, "float32", "", calibration_inputs)
        info: dict[str, Any] = {"precision": precision, "convert_s": source.info["convert_s"]}
        start = time.perf_counter()
        with redirected_output(cache_dir("tflite") / "convert.log"):
            content = _quantize_int8(source.path.read_bytes(), calibration_inputs())
        info["quantize_s"] = round(time.perf_counter() - start, 3)
    else:
        start = time.perf_counter()
        with redirected_output(cache_dir("tflite") / "convert.log"):
            content = _convert_float(model)
        info = {"precision": precision, "convert_s": round(time.perf_counter() - start, 3)}
    partial = folder / f"{key}.{os.getpid()}.partial"
    partial.write_bytes(content)
    info["ops"] = len(litert.tflite_ops(partial))
    os.replace(partial, path)
    info_file.write_text(json.dumps(info))
    return Converted(path, {**info, "from_cache": False})


def _convert_float(model: OnnxModel) -> bytes:
    import torch

    try:
        import litert_torch
    except Exception as err:  # installed without a piece it needs: the Makefile's --no-deps step not run
        raise UserError(f"litert-torch does not load ({err}); run `make install` again") from None
    sample = tuple(torch.zeros(spec.shape) for spec in model.inputs)
    try:
        with torch.no_grad():
            module = _padding_excluded_as_a_constant(model.torch_module, sample)
            converted = litert_torch.convert(module, sample)
    except Exception as err:  # torch.export and the converter raise many types for what they cannot lower
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{model.path}: litert-torch cannot convert the network ({reason})") from None
    return bytes(converted.model_content())


def _padding_excluded_as_a_constant(module: Any, sample: tuple[Any, ...]) -> Any:
    """A copy of `module` whose average pools that exclude padding are pools that include it, times a constant.

    litert-torch lowers a strided `AvgPool2d(count_include_pad=False)` to StableHLO
    reduce-window ops, which neither ai-edge-quantizer nor the Edge TPU take. Padded
    zeros add nothing to a sum, so dividing by the number of real inputs is the
    padded average times (window size / real inputs): a constant for a static shape,
    which the converter folds into one MUL, as it does itself for stride 1.
    """
    import copy

    import torch
    import torch.nn.functional as F

    class Rescaled(torch.nn.Module):
        def __init__(self, pool: torch.nn.AvgPool2d, scale: torch.Tensor) -> None:
            super().__init__()
            self.pool = torch.nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode, True)
            self.register_buffer("scale", scale)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(x) * self.scale

    module = copy.deepcopy(module).eval()
    pools = {
        name: pool
        for name, pool in module.named_modules()
        if isinstance(pool, torch.nn.AvgPool2d) and not pool.count_include_pad and pool.padding not in (0, (0, 0))
    }
    shapes: dict[str, torch.Size] = {}

    def record(name: str) -> Any:
        def hook(_: Any, args: tuple[torch.Tensor, ...]) -> None:
            shapes.setdefault(name, args[0].shape)

        return hook

    hooks = [pool.register_forward_pre_hook(record(name)) for name, pool in pools.items()]
    module(*sample)
    for hook in hooks:
        hook.remove()
    for name, pool in pools.items():
        if name not in shapes:  # not on the path the sample takes
            continue
        ones = torch.ones((1, 1, *shapes[name][2:]))
        real_share = F.avg_pool2d(ones, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode, True)
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent), child, Rescaled(pool, 1 / real_share))
    return module


def _quantize_int8(float_model: bytes, inputs: np.ndarray) -> bytes:
    """Full-integer int8 (weights per channel, activations, input and output), calibrated on `inputs`."""
    from ai_edge_quantizer import quantizer, recipe

    interpreter = litert.interpreter_module().Interpreter(model_content=float_model)
    signature, spec = next(iter(interpreter.get_signature_list().items()))
    (argument,) = spec["inputs"]
    qt = quantizer.Quantizer(float_model, recipe.static_wi8_ai8())
    batches = [{argument: x[None].astype(np.float32)} for x in inputs]
    try:
        calibration = qt.calibrate({signature: batches}, num_threads=os.cpu_count() or 1)
        return bytes(qt.quantize(calibration, enable_progress_report=False).quantized_model)
    except Exception as err:  # the quantizer raises ValueError, KeyError, ... for graphs it cannot handle
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"ai-edge-quantizer cannot quantize the network to int8 ({reason})") from None
