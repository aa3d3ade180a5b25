"""Target `edgetpu`: a Coral Edge TPU through the `libedgetpu` delegate, after `edgetpu_compiler`.

The network goes the way of `tflite-cpu` with `precision=int8` (the Edge TPU
runs full-integer models only), then through `edgetpu_compiler`, which maps a
prefix of the graph onto the Edge TPU as one custom op: everything after the
first operator it cannot map (an unsupported op, or an op version the compiler
is too old for) runs on the host CPU. Each measurement reports how many
operators map and which one stops the mapping. A model that maps nothing is
refused rather than timed on the CPU under this target's name.

Both the delegate (with a device attached) and the compiler must be present;
otherwise the target is unavailable, and says which is missing. On a remote
device (`-o remote=...`) the host converts and compiles and uploads the
compiled file: the device needs the runtime and the delegate, the host the
converter and the compiler.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from backends import litert, litert_conversion
from backends.base import Availability, DeviceBuild, register_target
from backends.onnx_model import OnnxModel
from backends.tflite_cpu import CalibratedConfig, TfliteCpuRunner
from ehdnas.core.errors import UserError
from ehdnas.core.host import fingerprint
from ehdnas.core.paths import cache_dir

DELEGATE = "libedgetpu.so.1"
COMPILER = "edgetpu_compiler"
EDGETPU_OP = "edgetpu-custom-op"  # the op the compiler puts in place of what it maps
MAPPED = "Mapped to Edge TPU"
# Statuses of operators that could map but come after the first one that cannot: consequences, not causes.
CONSEQUENCES = (
    "More than one subgraph is not supported",
    "Operation is otherwise supported, but not mapped due to some unspecified limitation",
)
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*)$")


@dataclass(frozen=True)
class EdgeTpuConfig(CalibratedConfig):
    device: str = ""  # the delegate's device: "" for the first found, or usb, pci, usb:0, pci:1 ...


def parse_compiler_output(text: str) -> dict[str, Any]:
    """Operator counts and the per-operator table from what `edgetpu_compiler -s` prints (or its log)."""

    def number(label: str) -> int | None:
        found = re.search(rf"{label}:\s*(\d+)", text)
        return int(found.group(1)) if found else None

    rows = [
        {"op": m.group(1), "count": int(m.group(2)), "status": m.group(3).strip()}
        for line in text.splitlines()
        if (m := _ROW.match(line.strip()))
    ]
    total = number("Total number of operations")
    on_tpu = number("Number of operations that will run on Edge TPU")
    on_cpu = number("Number of operations that will run on CPU")
    if on_tpu is None and on_cpu is None and total is not None:  # the compiler says nothing when all map
        on_tpu, on_cpu = total, 0
    return {"ops_total": total, "ops_on_edgetpu": on_tpu, "ops_on_cpu": on_cpu, "operators": rows}


def first_unmapped(compiled_ops: list[str], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    """The operator that stops the mapping: the first left on the CPU after the Edge TPU's part, and why.

    Operators before the Edge TPU's part (an input quantization) do not stop it.
    None when everything after the mapped part maps (or nothing is left on the CPU).
    """
    if EDGETPU_OP not in compiled_ops:
        return {"op": compiled_ops[0], "status": _cause(compiled_ops[0], rows)} if compiled_ops else None
    after = compiled_ops[compiled_ops.index(EDGETPU_OP) + 1 :]
    op = next((name for name in after if name != EDGETPU_OP), None)
    return {"op": op, "status": _cause(op, rows)} if op else None


def _cause(op: str, rows: list[dict[str, Any]]) -> str:
    statuses = [row["status"] for row in rows if row["op"] == op and row["status"] != MAPPED]
    return next((s for s in statuses if s not in CONSEQUENCES), statuses[0] if statuses else "")


@cache
def compiler_version() -> str | None:
    """`edgetpu_compiler --version`'s version, or None when it is not installed or does not run."""
    if shutil.which(COMPILER) is None:
        return None
    try:
        out = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"version\s+(\S+)", out)
    return found.group(1) if found else out.strip() or "unknown"


def _delegate_problem() -> str | None:
    """Why the Edge TPU delegate cannot be used here, or None when it loads and finds a device."""
    try:
        ctypes.CDLL(DELEGATE)
    except OSError:
        return f"the Edge TPU runtime ({DELEGATE}, package libedgetpu1-std from Coral's apt repository) is missing"
    try:
        litert.interpreter_module().load_delegate(DELEGATE)
    except (OSError, ValueError, RuntimeError) as err:
        return f"the Edge TPU delegate loads but finds no device ({err})"
    return None


@register_target("edgetpu")
class EdgeTpuRunner(TfliteCpuRunner):
    description = "Coral Edge TPU: full-integer int8 LiteRT model compiled by edgetpu_compiler, libedgetpu delegate"
    clocks, on_host = ("wall",), False  # the host thread waits on the device: its CPU time is not the latency
    Config = EdgeTpuConfig

    @classmethod
    def availability(cls) -> Availability:
        build = cls.build_availability()
        problems = [] if build.available else [build.reason]
        if litert.availability().available and (delegate := _delegate_problem()):  # loading it needs the runtime
            problems.append(delegate)
        return Availability(not problems, "; ".join(problems))

    @classmethod
    def build_availability(cls) -> Availability:
        conversion = litert_conversion.availability()
        problems = [] if conversion.available else [conversion.reason]
        if compiler_version() is None:
            problems.append(f"{COMPILER} (package edgetpu-compiler, from Coral's apt repository) is not installed")
        return Availability(not problems, "; ".join(problems))

    @classmethod
    def device_availability(cls) -> Availability:
        runtime = litert.availability()
        if not runtime.available:
            return runtime
        delegate = _delegate_problem()
        return Availability(delegate is None, delegate or "")

    def build_libraries(self) -> dict[str, str]:
        return {**super().build_libraries(), COMPILER: compiler_version() or "none"}

    def precision(self) -> str:
        return "int8"

    def compile(self, model: OnnxModel) -> tuple[Path, dict[str, Any]]:
        """The int8 model compiled for the Edge TPU (cached); its conversion's figures and the compiler's report."""
        converted = self.convert(model)
        key = fingerprint([converted.path.name, compiler_version()])
        compiled = cache_dir("edgetpu") / f"{key}.tflite"
        log = compiled.with_suffix(".log")
        if not (compiled.is_file() and log.is_file()):
            with tempfile.TemporaryDirectory(prefix="ehdnas-edgetpu-") as tmp:
                run = subprocess.run(
                    [COMPILER, "-s", "-o", tmp, str(converted.path)], capture_output=True, text=True, timeout=600
                )
                output = Path(tmp) / f"{converted.path.stem}_edgetpu.tflite"
                if run.returncode != 0 or not output.is_file():
                    reason = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
                    raise UserError(f"{model.path}: {COMPILER} failed ({reason[0]})")
                log.write_text(run.stdout)
                shutil.move(output, compiled)
        report = parse_compiler_output(log.read_text())
        ops = litert.tflite_ops(compiled)
        report["stops_mapping"] = first_unmapped(ops, report["operators"])
        if EDGETPU_OP not in ops:
            stop = report["stops_mapping"] or {}
            raise UserError(
                f"{model.path}: no operator maps to the Edge TPU (the first, {stop.get('op')}: "
                f"{stop.get('status') or 'not supported'}); it would run on the CPU"
            )
        return compiled, {**converted.info, **report}

    def prepare(self, model: OnnxModel) -> None:
        self.compile(model)

    def _made(self, model: OnnxModel) -> DeviceBuild:
        return DeviceBuild(*self.compile(model))

    def _load(self, path: Path) -> litert.Session:
        options = {"device": self.config.device} if self.config.device else {}
        delegate = litert.interpreter_module().load_delegate(DELEGATE, options)
        return litert.Session(path, self.config.threads, xnnpack=True, delegates=[delegate])
