"""The analytical systolic engine against SCALE-Sim: total cycles of every layer, and speed.

For each network (a sampled DARTS net and classic ImageNet classifiers shipped
with the onnx package), each array and each dataflow, every distinct convolution
and fully connected layer is simulated by SCALE-Sim (one child process for all
of them) and by the analytical engine; prints the per-layer table, the worst
layer, and the wall time of both engines on the same layers. An array is a
preset, optionally resized: `edge32:64x64` is edge32's memory system around a
64x64 array.

    .venv/bin/python -m benchmarks.systolic_agreement [--models darts,squeezenet,shufflenet]
        [--arrays edge32,edge32:64x64] [--dataflows os,ws,is] [--out table.csv]

Target (issue 6): every layer within 5% of SCALE-Sim; the analytical engine at
least 100x faster than SCALE-Sim on the same network.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import tempfile
import time
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


def network_layers(name: str, tmp: Path) -> list[ConvLayer]:
    """The distinct array layers of a network (identical shapes cost the same on both engines)."""
    if name == "darts":
        space = get_space("darts")
        path = export_arch(space, space.sample(np.random.default_rng(0)), tmp / "darts_sample0.onnx").path
    else:
        path = LIGHT / f"light_{name}.onnx"
    model = load_model(path)
    layers = graph_layers(path, {spec.name: spec.shape for spec in model.inputs})
    unique: dict[tuple, ConvLayer] = {}
    for layer in layers:
        if isinstance(layer, ConvLayer):
            unique.setdefault(dataclasses.astuple(dataclasses.replace(layer, name="")), layer)
    return list(unique.values())


def array(spec: str) -> Accelerator:
    """A preset, or a preset with another array shape: `edge32:64x64`."""
    name, _, shape = spec.partition(":")
    if not shape:
        return PRESETS[name]
    rows, cols = (int(n) for n in shape.split("x"))
    return dataclasses.replace(PRESETS[name], name=spec, rows=rows, cols=cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="darts,squeezenet,shufflenet", help="darts or light_<name>.onnx of onnx")
    parser.add_argument("--arrays", default="edge32,edge32:64x64", help=f"presets ({', '.join(PRESETS)})[:RxC]")
    parser.add_argument("--dataflows", default="os,ws,is")
    parser.add_argument("--out", type=Path, help="also write the per-layer table as CSV")
    args = parser.parse_args()

    rows, speed = [], []
    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        networks = {model: network_layers(model, Path(tmp)) for model in args.models.split(",")}
        for preset in args.arrays.split(","):
            for model, layers in networks.items():
                for dataflow in args.dataflows.split(","):
                    acc = dataclasses.replace(array(preset), dataflow=dataflow)
                    start = time.perf_counter()
                    reference = simulate(layers, acc)
                    slow = time.perf_counter() - start
                    start = time.perf_counter()
                    ours = [gemm_cost(layer, acc) for layer in layers]
                    fast = time.perf_counter() - start
                    speed.append((model, preset, dataflow, len(layers), slow, fast))
                    for layer, ref, cost in zip(layers, reference, ours, strict=True):
                        error = cost.cycles / ref["total_cycles"] - 1
                        rows.append((model, preset, dataflow, layer, int(ref["total_cycles"]), int(ref["stall_cycles"]),
                                     cost.cycles, cost.stall_cycles, error))  # fmt: skip
                    worst = max(abs(r[-1]) for r in rows[-len(layers) :])
                    print(f"{model} {preset} {dataflow}: {len(layers)} layers, worst {100 * worst:.2f}%, "
                          f"SCALE-Sim {slow:.1f} s, analytical {1e3 * fast:.1f} ms", flush=True)  # fmt: skip

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
    print(f"\n{'model':13} {'array':13} {'df':3} {'layers':>6} {'SCALE-Sim s':>11} {'ours ms':>8} {'speed-up':>9}")
    for model, preset, df, n, slow, fast in speed:
        print(f"{model:13} {preset:13} {df:3} {n:6} {slow:11.1f} {1e3 * fast:8.1f} {slow / fast:8.0f}x")
    least = min(slow / fast for *_, slow, fast in speed)
    print(f"least speed-up: {least:.0f}x (target >= 100x)  {verdict(least >= 100)}")


if __name__ == "__main__":
    main()
