"""Target `ort-cpu`: ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from dataclasses import dataclass

from backends.base import Availability, Runner, Timer, register_target, requires_extra
from backends.onnx_model import OnnxModel
from backends.protocol import time_runs
from ehdnas.core.errors import UserError

_OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class OrtCpuConfig:
    threads: int = 1  # intra-op threads; 1 keeps measurements comparable and quiet
    optimization: str = "all"  # graph optimization level
    provider: str = "CPUExecutionProvider"

    def check(self) -> None:
        if self.threads < 1:
            raise UserError("target 'ort-cpu' option 'threads' must be at least 1")
        if self.optimization not in _OPT_LEVELS:
            raise UserError(f"target 'ort-cpu' option 'optimization' must be one of {', '.join(_OPT_LEVELS)}")
        if self.provider != "CPUExecutionProvider":
            raise UserError("target 'ort-cpu' option 'provider' can only be CPUExecutionProvider")


@register_target("ort-cpu")
class OrtCpuRunner(Runner):
    description = "ONNX Runtime, CPU execution provider"
    Config = OrtCpuConfig

    @classmethod
    def availability(cls) -> Availability:
        return requires_extra(None, "onnxruntime")  # a core dependency

    def libraries(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def _timer(self, model: OnnxModel) -> Timer:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.config.optimization]
        options.log_severity_level = 3  # errors only: old models warn about unused initializers
        try:
            session = ort.InferenceSession(str(model.path), options, providers=[self.config.provider])
        except Exception as err:  # ORT raises its own exception types for every loading failure
            raise UserError(f"{model.path}: ONNX Runtime cannot load the model ({err})") from None
        feeds = model.fixed_inputs()
        try:
            session.run(None, feeds)
        except Exception as err:
            raise UserError(f"{model.path}: ONNX Runtime cannot run the model ({err})") from None
        return Timer(lambda protocol: time_runs(lambda: session.run(None, feeds), protocol))
