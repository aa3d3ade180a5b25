"""Backend runners: one per hardware target, behind one interface, listed in one registry.

Importing this package registers every built-in target; no runtime library is
imported until a runner is used.
"""

from backends import edgetpu as _edgetpu  # noqa: F401  (registers "edgetpu")
from backends import external as _external  # noqa: F401  (registers "external")
from backends import ort_cpu as _ort_cpu  # noqa: F401  (registers "ort-cpu")
from backends import systolic as _systolic  # noqa: F401  (registers "systolic-<preset>")
from backends import tflite_cpu as _tflite_cpu  # noqa: F401  (registers "tflite-cpu")
from backends import tvm_llvm as _tvm_llvm  # noqa: F401  (registers "tvm-llvm")
from backends.base import (
    Availability,
    Measurement,
    Runner,
    get_target,
    list_targets,
    register_target,
)
from backends.onnx_model import OnnxModel, load_model, parse_input_shapes
from backends.protocol import LatencyStats, TimingProtocol

__all__ = [
    "Availability",
    "LatencyStats",
    "Measurement",
    "OnnxModel",
    "Runner",
    "TimingProtocol",
    "get_target",
    "list_targets",
    "load_model",
    "parse_input_shapes",
    "register_target",
]
