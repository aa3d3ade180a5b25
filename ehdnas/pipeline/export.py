"""Torch module to ONNX with a static input shape: the one exchange format runners take."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from pathlib import Path
from typing import Any

import torch

from backends.onnx_model import OnnxModel, load_model
from ehdnas.spaces.base import SearchSpace

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(module: torch.nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    """Write `module` (in eval mode) to `path` for inputs of exactly `input_shape`.

    The TorchScript exporter is used on purpose: for static CNNs it gives the same
    graph as the torch.export-based one about twenty times faster, which matters
    when a collection exports thousands of networks.
    """
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and constant-folding notes are not the user's
        torch.onnx.export(
            module,
            (torch.zeros(input_shape),),
            str(path),
            **_TORCHSCRIPT_EXPORTER,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
        )
    return path


# torch >= 2.5 takes `dynamo` (and 2.9 defaults it to True); the TorchScript exporter is the one measured here.
_TORCHSCRIPT_EXPORTER = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def export_model(module: torch.nn.Module, input_shape: tuple[int, ...], path: Path) -> OnnxModel:
    """`module` exported to `path` and loaded for a runner, the module attached for converters that start from torch."""
    return dataclasses.replace(load_model(export_onnx(module, input_shape, path)), torch_module=module)


def build_seeded(space: SearchSpace, arch: Any, seed: int = 0) -> torch.nn.Module:
    """Build `arch` with weights from a fixed seed, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch)


def export_arch(space: SearchSpace, arch: Any, path: Path) -> OnnxModel:
    """Build an architecture of `space`, export it at the space's input shape and load it for a runner."""
    return export_model(build_seeded(space, arch), space.input_shape, path)
