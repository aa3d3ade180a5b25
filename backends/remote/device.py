"""The device side: the functions a device's RPC server runs for the host, registered by `init`.

`ehdnas.describe` reports the device: for every target it can time, whether
its runtime is installed and the fingerprint a measurement there carries (CPU,
cores, OS, library versions), and the LLVM target TVM builds for it.
`ehdnas.measure` times an uploaded model (an ONNX file, and beside it what the
host built for this device: a TVM library, a `.tflite` file) under the host's
timing protocol with the same runner a local measurement uses, and returns
that measurement. Both speak JSON strings, which TVM's RPC carries as they are.

Only the leaf, the runners and their runtimes are imported here: no torch, no
search code, no server (the `Device side imports` contract in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from backends.base import TARGETS, get_target
from backends.onnx_model import load_model
from backends.protocol import TimingProtocol
from ehdnas.core.errors import UserError

DEVICE_TARGETS = ("ort-cpu", "tvm-llvm", "tflite-cpu", "edgetpu")  # measured on a device; simulators run anywhere
# Tests only: seconds each measurement sleeps first, so a collection is bound by wall clock, not by 2 cores.
TEST_DELAY_ENV = "EHDNAS_DEVICE_TEST_DELAY_S"


def init() -> None:
    """Register the device's functions in this process: TVM's RPC server calls it once, before serving."""
    import tvm_ffi

    tvm_ffi.register_global_func("ehdnas.describe", describe, override=True)
    tvm_ffi.register_global_func("ehdnas.measure", measure, override=True)


def describe() -> str:
    """The device's report (JSON): each target's availability and host fingerprint, and TVM's LLVM target."""
    from ehdnas.core.host import host_info

    runtimes: dict[str, Any] = {}
    for name in DEVICE_TARGETS:
        status = TARGETS.get(name).device_availability()
        entry: dict[str, Any] = {"available": status.available, "reason": status.reason}
        if status.available:
            entry["host"] = host_info(get_target(name).libraries())
        runtimes[name] = entry
    return json.dumps({"runtimes": runtimes, "llvm": _llvm_target() if runtimes["tvm-llvm"]["available"] else None})


def measure(request: str) -> str:
    """Time the uploaded model as the request (JSON) says; the measurement, or `{"error": ...}` for a user error.

    The request: `target`, `config` (the settings the device times with), `protocol`, `model` (the uploaded
    ONNX file's name), `inputs` (its input shapes, as the host resolved them) and, for a target that builds on
    the host, `artifact` (the uploaded build).
    """
    asked = json.loads(request)
    if delay := float(os.environ.get(TEST_DELAY_ENV, "0") or 0):
        time.sleep(delay)
    try:
        runner = get_target(asked["target"], asked["config"])
        shapes = {name: tuple(shape) for name, shape in asked["inputs"].items()}
        model = load_model(_workpath(asked["model"]), shapes)
        artifact = Path(_workpath(asked["artifact"])) if asked.get("artifact") else None
        measurement = runner.measure(model, TimingProtocol(**asked["protocol"]), artifact)
    except UserError as err:
        return json.dumps({"error": str(err)})
    return json.dumps(measurement.to_dict())


def _workpath(name: str) -> str:
    """Where the RPC server put an uploaded file of this session."""
    import tvm_ffi

    return str(tvm_ffi.get_global_func("tvm.rpc.server.workpath")(name))


def _llvm_target() -> dict[str, str]:
    """What LLVM calls this device's CPU: the host cross-compiles for it."""
    import tvm

    codegen = tvm.target.codegen
    return {"mtriple": codegen.llvm_get_system_triple(), "mcpu": codegen.llvm_get_system_cpu()}
