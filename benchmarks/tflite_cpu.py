"""LiteRT on this CPU beside ONNX Runtime: float32 and int8 latency of tflite-cpu, with conversion time.

For a sampled DARTS network (the space's default settings: 8 cells, 16 channels,
32x32) and MobileNetV2 (the classic ImageNet classifier for edge devices,
224x224, random weights: latency does not depend on their values), measures
ort-cpu, tflite-cpu float32 with and without XNNPACK, and tflite-cpu int8
(full-integer, calibrated on 256 random inputs) in one run, one thread each,
under the default timing protocol. Conversion starts from an empty cache unless
`--cache` names a folder that holds one.

    .venv/bin/python -m benchmarks.tflite_cpu [--models darts,mobilenet_v2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from backends import TimingProtocol, get_target
from ehdnas.pipeline.export import build_seeded, export_model
from ehdnas.spaces import get_space


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU6()] if act else []))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [_conv(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv(hidden, hidden, 3, stride, groups=hidden), _conv(hidden, cout, 1, act=False)]
        self.body, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(classes: int = 1000) -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018), width 1.0: 300 M multiply-accumulates at 224x224."""
    settings = [  # expansion, channels, blocks, stride of the first
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]  # fmt: skip
    layers, cin = [_conv(3, 32, 3, 2)], 32
    for expand, cout, repeats, stride in settings:
        for i in range(repeats):
            layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    layers += [_conv(cin, 1280, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


def models(names: list[str]) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    found = {}
    for name in names:
        if name == "darts":
            space = get_space("darts")
            found["darts_sample0"] = (build_seeded(space, space.sample(np.random.default_rng(0))), space.input_shape)
        elif name == "mobilenet_v2":
            torch.manual_seed(0)
            found["mobilenet_v2"] = (mobilenet_v2(), (1, 3, 224, 224))
        else:
            raise SystemExit(f"unknown model {name!r}; known: darts, mobilenet_v2")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="darts,mobilenet_v2", help="darts, mobilenet_v2")
    parser.add_argument("--cache", help="cache folder (converted models) to use and keep [a fresh one]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        os.environ["EHDNAS_CACHE"] = args.cache or str(Path(tmp) / "cache")
        runners = {
            "ort": get_target("ort-cpu"),
            "f32": get_target("tflite-cpu"),
            "f32 no-xnn": get_target("tflite-cpu", {"xnnpack": False}),
            "int8": get_target("tflite-cpu", {"precision": "int8"}),
        }
        print(f"host: {runners['ort'].host()['cpu']}; libraries: {runners['f32'].libraries()}")
        header = (
            f"{'model':16} {'MMACs':>7} {'ort ms':>8} {'f32 ms':>8} {'no-xnn ms':>9} {'int8 ms':>8} "
            f"{'convert s':>9} {'quant s':>7} {'ops f32/int8':>12} {'f32/ort':>7} {'int8/f32':>8}"
        )
        print(header)
        print("-" * len(header))
        for name, (module, shape) in models(args.models.split(",")).items():
            model = export_model(module.eval(), shape, Path(tmp) / f"{name}.onnx")
            m = {key: runner.measure(model, TimingProtocol()) for key, runner in runners.items()}
            ms = {key: x.latency_ms.median for key, x in m.items()}
            f32, int8 = m["f32"].details, m["int8"].details
            print(
                f"{name:16} {model.macs / 1e6:7.1f} {ms['ort']:8.3f} {ms['f32']:8.3f} {ms['f32 no-xnn']:9.3f} "
                f"{ms['int8']:8.3f} {f32['convert_s']:9.1f} {int8['quantize_s']:7.1f} "
                f"{f32['ops']:>5}/{int8['ops']:<6} {ms['f32'] / ms['ort']:6.2f}x {ms['int8'] / ms['f32']:7.2f}x",
                flush=True,
            )
    print("median latency of one inference, 1 thread, input (de)quantization included; XNNPACK on unless no-xnn;")
    print("convert s: litert-torch, torch module to float32 .tflite; quant s: ai-edge-quantizer calibration + int8")


if __name__ == "__main__":
    main()
