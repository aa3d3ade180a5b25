"""The analytical systolic engine against SCALE-Sim: total cycles of every layer, and speed.

For each network, each array and each dataflow, every distinct convolution and
fully connected layer is simulated by SCALE-Sim (one child process for all of
them) and by the analytical engine; prints the per-layer table, each dataflow's
worst layer and bias (runs above, below and equal to SCALE-Sim), and the wall
time of both engines on the same layers. Networks: a sampled DARTS net, classic
ImageNet classifiers shipped with the onnx package (`NAME` for
light_NAME.onnx, `NAME:1x1` for its 1x1 layers only), and two built here as
held-out checks, at a SIZE x SIZE input with `@SIZE` (224 by default):
`resnet50-1x1` (the 1x1 layers of ResNet-50's bottlenecks: the write-bound
layers under input stationary) and `mobilenetv2` (MobileNetV2: depthwise
layers of up to 960 groups, expansions and projections). An array is a preset, optionally resized:
`edge32:64x64` is edge32's memory system around a 64x64 array.

    .venv/bin/python -m benchmarks.systolic_agreement [--models darts,resnet50-1x1@96,mobilenetv2@96]
        [--arrays edge32,edge32:64x64] [--dataflows os,ws,is] [--jobs 3] [--out table.csv]

`--jobs` runs that many SCALE-Sim children at once: its wall times then include
their contention, so the speed-up is only read from a run with `--jobs 1`.

Target (issue 6): every layer within 5% of SCALE-Sim; the analytical engine at
least 100x faster than SCALE-Sim on the same network.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx

from backends import load_model
from backends.systolic.accelerator import PRESETS, Accelerator
from backends.systolic.analytical import gemm_cost
from backends.systolic.layers import ConvLayer, graph_layers
from backends.systolic.scalesim_engine import simulate
from benchmarks.common import verdict
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
TOLERANCE = 0.05


def _conv(size: int, kernel: int, cin: int, cout: int, stride: int = 1, groups: int = 1) -> ConvLayer:
    """A square 'same'-padded convolution on a `size` x `size` input, its input trimmed as `graph_layers` trims it."""
    side = (math.ceil(size / stride) - 1) * stride + kernel
    return ConvLayer("", side, side, kernel, kernel, cin // groups, cout // groups, stride, stride, groups)


def mobilenetv2(size: int) -> list[ConvLayer]:
    """MobileNetV2 (Sandler et al. 2018): stem, inverted residuals (t, c, n, s) with depthwise 3x3s, head."""
    layers, side, cin = [_conv(size, 3, 3, 32, 2)], size // 2, 32
    for expand, cout, blocks, first_stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:  # fmt: skip
        for block in range(blocks):
            stride, hidden = (first_stride if block == 0 else 1), cin * expand
            if expand != 1:
                layers.append(_conv(side, 1, cin, hidden))
            layers.append(_conv(side, 3, hidden, hidden, stride, groups=hidden))
            side = math.ceil(side / stride)
            layers.append(_conv(side, 1, hidden, cout))
            cin = cout
    return [*layers, _conv(side, 1, cin, 1280)]


def resnet50_1x1(size: int) -> list[ConvLayer]:
    """The 1x1 convolutions of ResNet-50's bottlenecks (reduce, expand, strided shortcut) at a `size` input."""
    layers, side, cin = [], size // 4, 64
    for width, blocks, first_stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for block in range(blocks):
            stride = first_stride if block == 0 else 1
            out = math.ceil(side / stride)
            layers += [_conv(side, 1, cin, width), _conv(out, 1, width, 4 * width)]
            if block == 0:
                layers.append(_conv(side, 1, cin, 4 * width, stride))
            side, cin = out, 4 * width
    return layers


BUILT = {"mobilenetv2": mobilenetv2, "resnet50-1x1": resnet50_1x1}  # NAME@SIZE: at a SIZE x SIZE input (224)


def network_layers(name: str, tmp: Path) -> list[ConvLayer]:
    """The distinct array layers of a network (identical shapes cost the same on both engines)."""
    base, _, only = name.partition(":")
    built, _, size = base.partition("@")
    if built in BUILT:
        layers: list = BUILT[built](int(size or 224))
    else:
        if base == "darts":
            space = get_space("darts")
            path = export_arch(space, space.sample(np.random.default_rng(0)), tmp / "darts_sample0.onnx").path
        else:
            path = LIGHT / f"light_{base}.onnx"
        layers = graph_layers(path, {spec.name: spec.shape for spec in load_model(path).inputs})
    unique: dict[tuple, ConvLayer] = {}
    for layer in layers:
        if isinstance(layer, ConvLayer) and (only != "1x1" or layer.filter_h == layer.filter_w == 1):
            unique.setdefault(dataclasses.astuple(dataclasses.replace(layer, name="")), layer)
    return list(unique.values())


def array(spec: str) -> Accelerator:
    """A preset, or a preset with another array shape: `edge32:64x64`."""
    name, _, shape = spec.partition(":")
    if not shape:
        return PRESETS[name]
    rows, cols = (int(n) for n in shape.split("x"))
    return dataclasses.replace(PRESETS[name], name=spec, rows=rows, cols=cols)


def compare(layers: list[ConvLayer], preset: str, model: str, dataflow: str) -> tuple[list[tuple], tuple]:
    """Both engines on `layers`: a table row per layer, and the timing of the pair."""
    acc = dataclasses.replace(array(preset), dataflow=dataflow)
    start = time.perf_counter()
    reference = simulate(layers, acc)
    slow = time.perf_counter() - start
    start = time.perf_counter()
    ours = [gemm_cost(layer, acc) for layer in layers]
    fast = time.perf_counter() - start
    rows = [(model, preset, dataflow, layer, int(ref["total_cycles"]), int(ref["stall_cycles"]), cost.cycles,
             cost.stall_cycles, cost.cycles / ref["total_cycles"] - 1)
            for layer, ref, cost in zip(layers, reference, ours, strict=True)]  # fmt: skip
    worst = max(abs(r[-1]) for r in rows)
    print(f"{model} {preset} {dataflow}: {len(layers)} layers, worst {100 * worst:.2f}%, "
          f"SCALE-Sim {slow:.1f} s, analytical {1e3 * fast:.1f} ms", flush=True)  # fmt: skip
    return rows, (model, preset, dataflow, len(layers), slow, fast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="darts,squeezenet,shufflenet,resnet50-1x1@96,mobilenetv2@96",
        help=f"darts, {', '.join(BUILT)}[@SIZE], or NAME[:1x1] for onnx's light_NAME.onnx",
    )
    parser.add_argument("--arrays", default="edge32,edge32:64x64", help=f"presets ({', '.join(PRESETS)})[:RxC]")
    parser.add_argument("--dataflows", default="os,ws,is")
    parser.add_argument("--jobs", type=int, default=1, help="SCALE-Sim runs at once (wall times then contend)")
    parser.add_argument("--out", type=Path, help="also write the per-layer table as CSV")
    args = parser.parse_args()

    combos = [(preset, model, dataflow) for preset in args.arrays.split(",") for model in args.models.split(",")
              for dataflow in args.dataflows.split(",")]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        networks = {model: network_layers(model, Path(tmp)) for model in args.models.split(",")}
        with ThreadPoolExecutor(args.jobs) as pool:  # each SCALE-Sim run is a child process
            runs = list(pool.map(lambda combo: compare(networks[combo[1]], *combo), combos))
    rows = [row for run, _ in runs for row in run]
    speed = [timing for _, timing in runs]

    header = f"{'model':13} {'array':13} {'df':3} {'layer (H W R S C M s x groups)':34} {'SCALE-Sim':>11} "
    header += f"{'stall':>11} {'ours':>11} {'stall':>11} {'error':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for model, preset, df, layer, ref, ref_stall, ours, our_stall, error in rows:
        shape = f"{layer.ifmap_h} {layer.ifmap_w} {layer.filter_h} {layer.filter_w} {layer.channels} {layer.filters}"
        shape += f" {layer.stride_h} x{layer.groups}"
        print(f"{model:13} {preset:13} {df:3} {shape:34} {ref:11,} {ref_stall:11,} {ours:11,} {our_stall:11,} "
              f"{100 * error:+6.2f}%")  # fmt: skip
    if args.out:
        with args.out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["model", "array", "dataflow", "layer", "scalesim_cycles", "scalesim_stall", "cycles",
                             "stall", "error"])  # fmt: skip
            for model, preset, df, layer, *figures in rows:
                writer.writerow([model, preset, df, dataclasses.astuple(layer)[1:], *figures])
    worst = max(rows, key=lambda r: abs(r[-1]))
    within = sum(abs(r[-1]) <= TOLERANCE for r in rows)
    print(f"\nworst layer: {worst[0]} {worst[1]} {worst[2]} {dataclasses.astuple(worst[3])[1:]}: "
          f"{100 * worst[-1]:+.2f}% (SCALE-Sim {worst[4]:,} cycles, ours {worst[6]:,})")  # fmt: skip
    print(f"layers within {TOLERANCE:.0%}: {within}/{len(rows)}  {verdict(within == len(rows))}")
    print(f"\n{'df':3} {'runs':>5} {'worst':>8} {'above':>6} {'below':>6} {'equal':>6}  (ours against SCALE-Sim)")
    for df in dict.fromkeys(r[2] for r in rows):
        errors = [r[-1] for r in rows if r[2] == df]
        worst_df = max(errors, key=abs)
        above, below = sum(e > 0 for e in errors), sum(e < 0 for e in errors)
        print(f"{df:3} {len(errors):5} {100 * worst_df:+7.2f}% {above:6} {below:6} {len(errors) - above - below:6}")
    print(f"\n{'model':13} {'array':13} {'df':3} {'layers':>6} {'SCALE-Sim s':>11} {'ours ms':>8} {'speed-up':>9}")
    for model, preset, df, n, slow, fast in speed:
        print(f"{model:13} {preset:13} {df:3} {n:6} {slow:11.1f} {1e3 * fast:8.1f} {slow / fast:8.0f}x")
    least = min(slow / fast for *_, slow, fast in speed)
    print(f"least speed-up: {least:.0f}x (target >= 100x)  {verdict(least >= 100)}")


if __name__ == "__main__":
    main()
