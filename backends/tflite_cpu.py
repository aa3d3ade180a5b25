"""Target `tflite-cpu`: the LiteRT (TFLite) interpreter on the CPU, float32 or full-integer int8.

The network is converted to `.tflite` (see `backends.litert_conversion`, cached
per network) and timed end to end, input quantization and output dequantization
included, with a fixed thread count and XNNPACK on or off as configured.
int8 models are calibrated on `calibration_samples` inputs: standard-normal
random ones (the networks' inputs are normalised), or images of a data set
(`calibration=digits`, `cluttered`, `cifar10:DIR`, `folder:DIR`), as the configuration says.

On a remote device (`-o remote=...`) the conversion stays on the host, which
uploads the `.tflite` file; the device needs the LiteRT runtime alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import litert, litert_conversion
from backends.base import Availability, DeviceBuild, Runner, Timer, register_target
from backends.onnx_model import OnnxModel
from backends.protocol import time_runs
from ehdnas.core.datasets import image_source
from ehdnas.core.errors import UserError

RANDOM = "random"


@dataclass(frozen=True)
class CalibratedConfig:
    """What every LiteRT target sets: interpreter threads and the int8 calibration set."""

    threads: int = 1  # interpreter threads; 1 keeps measurements comparable and quiet
    calibration: str = RANDOM  # int8: random, or a data spec (digits, cluttered, cifar10:DIR, folder:DIR)
    calibration_samples: int = 256

    def check(self) -> None:
        if self.threads < 1 or self.calibration_samples < 1:
            raise UserError("options 'threads' and 'calibration_samples' must be at least 1")
        if self.calibration != RANDOM:
            image_source().check(self.calibration)


@dataclass(frozen=True)
class TfliteCpuConfig(CalibratedConfig):
    precision: str = "float32"  # float32 | int8 (full-integer: weights, activations, input and output)
    xnnpack: bool = True  # LiteRT's default CPU delegate

    def check(self) -> None:
        super().check()
        if self.precision not in litert_conversion.PRECISIONS:
            raise UserError(f"option 'precision' must be one of {', '.join(litert_conversion.PRECISIONS)}")


@register_target("tflite-cpu")
class TfliteCpuRunner(Runner):
    description = "LiteRT (TFLite) interpreter on the CPU; precision=float32|int8, xnnpack=true|false"
    Config = TfliteCpuConfig
    prepares = True

    @classmethod
    def availability(cls) -> Availability:
        return cls.build_availability()  # the conversion needs the runtime too

    @classmethod
    def build_availability(cls) -> Availability:
        """Whether this machine can make the model files of this target (for itself or a remote device)."""
        return litert_conversion.availability()

    @classmethod
    def device_availability(cls) -> Availability:
        return litert.availability()

    def libraries(self) -> dict[str, str]:
        return litert.runtime_versions()

    def build_libraries(self) -> dict[str, str]:
        return litert_conversion.converter_versions()

    def precision(self) -> str:
        return self.config.precision

    def config_dict(self) -> dict[str, Any]:
        config = super().config_dict()
        if self.precision() == "float32":  # nothing is calibrated
            del config["calibration"], config["calibration_samples"]
        return config

    def device_settings(self) -> dict[str, Any]:
        calibrating = ("calibration", "calibration_samples")  # the host's conversion: its data is not on the device
        return {name: value for name, value in self.config_dict().items() if name not in calibrating}

    def convert(self, model: OnnxModel) -> litert_conversion.Converted:
        """`model` as the `.tflite` file this target runs (converted once, then from the disk cache)."""
        calibration = f"{self.config.calibration}:{self.config.calibration_samples}"
        return litert_conversion.convert(model, self.precision(), calibration, lambda: self.calibration_inputs(model))

    def prepare(self, model: OnnxModel) -> None:
        self.convert(model)

    def calibration_inputs(self, model: OnnxModel) -> np.ndarray:
        """`calibration_samples` inputs of the model's shape, batch axis first."""
        count, shape = self.config.calibration_samples, model.inputs[0].shape
        rng = np.random.default_rng(0)
        if self.config.calibration == RANDOM:
            return rng.standard_normal((count, *shape[1:])).astype(np.float32)
        if len(shape) != 4 or shape[2] != shape[3]:
            raise UserError(f"{model.path}: calibration on images needs a square image input, not {list(shape)}")
        images = image_source().load(self.config.calibration, input_size=shape[2], in_channels=shape[1])
        return images[rng.permutation(len(images))[:count]]

    def session(self, model: OnnxModel) -> litert.Session:
        return self._load(self._made(model).path)

    def _made(self, model: OnnxModel) -> DeviceBuild:
        """The `.tflite` file this target runs for `model`, and what making it took (conversion, cache)."""
        converted = self.convert(model)
        return DeviceBuild(converted.path, dict(converted.info))

    def _load(self, path: Path) -> litert.Session:
        """The interpreter that times a `.tflite` file made for this target."""
        return litert.Session(path, self.config.threads, self.config.xnnpack)

    def device_build(self, model: OnnxModel, device: dict[str, Any]) -> DeviceBuild:
        """The model file made here: conversion needs torch and the converters, the device only the runtime."""
        status = type(self).build_availability()
        if not status.available:
            raise UserError(f"target {self.name!r} converts on this host, which cannot: {status.reason}")
        return self._made(model)

    def _timer(self, model: OnnxModel) -> Timer:
        built = self._made(model)  # once: the retries of one measurement time one interpreter
        return self._timed(self._load(built.path), model, built.details)

    def _built_timer(self, model: OnnxModel, build: Path) -> Timer:
        return self._timed(self._load(build), model, {"built_on_host": True})

    def _timed(self, session: litert.Session, model: OnnxModel, details: dict[str, Any]) -> Timer:
        x = next(iter(model.fixed_inputs().values()))
        return Timer(lambda protocol: time_runs(lambda: session(x), protocol), details)

    def infer(self, model: OnnxModel, inputs: np.ndarray) -> np.ndarray:
        session, batch = self.session(model), model.inputs[0].shape[0]
        outputs = []
        for start in range(0, len(inputs), batch):
            chunk = inputs[start : start + batch]
            padding = np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)  # a last, partial batch
            outputs.append(session(np.concatenate([chunk, padding]))[: len(chunk)])
        return np.concatenate(outputs)
