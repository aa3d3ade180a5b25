"""TVM on this CPU beside ONNX Runtime: untuned and tuned latency, with compile and tuning time.

For a sampled DARTS network (the space's default settings) and two third-party
opset-9 classifiers that the onnx package ships, measures ort-cpu, tvm-llvm
untuned and tvm-llvm tuned (MetaSchedule, `--trials` per kernel) in one run, one
thread each, under the default timing protocol. Tuning starts from an empty
database unless `--cache` names a folder that holds one. Target (issue 5): tuned
TVM within 1.5x of ONNX Runtime, or faster.

    .venv/bin/python -m benchmarks.tvm_llvm [--trials 64] [--models darts,squeezenet,bvlc_alexnet]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from backends import TimingProtocol, get_target, load_model
from benchmarks.common import verdict
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
THIRD_PARTY = {name: f"light_{name}.onnx" for name in ("squeezenet", "bvlc_alexnet", "shufflenet", "resnet50")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64, help="MetaSchedule trials per kernel")
    parser.add_argument("--models", default="darts,squeezenet,bvlc_alexnet", help=f"darts, {', '.join(THIRD_PARTY)}")
    parser.add_argument("--cache", help="cache folder (builds, tuning records) to use and keep [a fresh one]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        os.environ["EHDNAS_CACHE"] = args.cache or str(Path(tmp) / "cache")
        paths = []
        for name in args.models.split(","):
            if name == "darts":
                space = get_space("darts")
                arch = space.sample(np.random.default_rng(0))
                paths.append(export_arch(space, arch, Path(tmp) / "darts_sample0.onnx").path)
            else:
                paths.append(LIGHT / THIRD_PARTY[name])
        ort, untuned = get_target("ort-cpu"), get_target("tvm-llvm")
        tuned = get_target("tvm-llvm", {"mode": "tuned", "trials": args.trials})
        protocol = TimingProtocol()
        print(f"host: {ort.host()['cpu']}, TVM target: {tuned.target()}, trials per kernel: {args.trials}")
        header = (
            f"{'model':24} {'MMACs':>7} {'ort ms':>8} {'untuned ms':>10} {'build s':>7} "
            f"{'tuned ms':>9} {'kernels':>7} {'tune s':>7} {'build s':>7} {'tuned/ort':>9}"
        )
        print(header)
        print("-" * len(header))
        ratios = {}
        for path in paths:
            model = load_model(path)
            o, u, t = (runner.measure(model, protocol) for runner in (ort, untuned, tuned))
            ratio = t.latency_ms.median / o.latency_ms.median
            ratios[path.name] = ratio
            print(
                f"{path.name:24} {model.macs / 1e6:7.1f} {o.latency_ms.median:8.3f} {u.latency_ms.median:10.3f} "
                f"{u.details['compile_s']:7.1f} {t.latency_ms.median:9.3f} {t.details['kernels']:7d} "
                f"{t.details['tune_s']:7.0f} {t.details['compile_s']:7.1f} {ratio:9.2f}x",
                flush=True,
            )
    print("ort/untuned/tuned ms: median latency, 1 thread; build s: import + compile (no tuning);")
    print("kernels: the model's tunable kernels (conv, matmul, pooling); tune s: MetaSchedule time for new ones")
    for name, ratio in ratios.items():
        print(f"  {name}: tuned TVM {ratio:.2f}x ONNX Runtime's latency (target <= 1.5x)  {verdict(ratio <= 1.5)}")


if __name__ == "__main__":
    main()
