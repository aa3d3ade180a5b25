"""TVM on this CPU beside ONNX Runtime: every mode of `tvm-llvm`, its latency, build and tuning time, trials spent.

For a sampled DARTS network (the space's default settings) and third-party
opset-9 classifiers that the onnx package ships (SqueezeNet, ResNet-50 ...),
measures in one run, one thread each, under the default timing protocol:
ort-cpu; tvm-llvm untuned (unscheduled: not representative of TVM); sampled
(one unmeasured MetaSchedule sample per kernel); tuned at the default global
budget and at a larger one (`--larger`, 0 to skip). Tuning starts from an empty
database unless `--cache` names a folder that holds one; the larger budget
tunes in a database of its own, so it does not start from the default's records.
Targets (issue 20): tuned at the default budget within 1.5x of ONNX Runtime on
every model; at the larger budget within 1.0x on at least one.

    .venv/bin/python -m benchmarks.tvm_llvm [--models darts,squeezenet,resnet50] [--larger 1024]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from backends import Measurement, TimingProtocol, get_target, load_model
from backends.tvm_llvm import TvmLlvmConfig
from benchmarks.common import verdict
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
THIRD_PARTY = {name: f"light_{name}.onnx" for name in ("squeezenet", "bvlc_alexnet", "shufflenet", "resnet50")}
LABELS = {"untuned": "untuned (unscheduled)", "sampled": "sampled"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="darts,squeezenet,resnet50", help=f"darts, {', '.join(THIRD_PARTY)}")
    parser.add_argument("--larger", type=int, default=1024, help="the larger budget, trials per model [0: skip]")
    parser.add_argument("--cache", help="cache folder (builds, tuning records) to use and keep [a fresh one]")
    args = parser.parse_args()

    default = TvmLlvmConfig().trials
    budgets = [default, *([args.larger] if args.larger else [])]
    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        cache = Path(args.cache or Path(tmp) / "cache")
        paths = [_model(name, Path(tmp)) for name in args.models.split(",")]
        ort = get_target("ort-cpu")
        print(f"host: {ort.host()['cpu']}, TVM target: {get_target('tvm-llvm').target()}, budgets: {budgets}")
        header = (
            f"{'model':24} {'MMACs':>7} {'build':24} {'ms':>10} {'x ort':>7} {'build s':>8} {'tune s':>7} "
            f"{'expected s':>10} {'trials':>9} {'kernels new/all':>15}"
        )
        print(header)
        print("-" * len(header), flush=True)
        ratios: dict[tuple[str, str], float] = {}
        for path in paths:
            model = load_model(path)
            base = ort.measure(model, TimingProtocol())
            _row(path.name, model.macs, "ort-cpu", base, base)
            for label, options, folder in [
                (LABELS["untuned"], {"mode": "untuned"}, "default"),
                (LABELS["sampled"], {"mode": "sampled"}, "default"),
                *[(f"tuned, {n} trials", {"trials": n}, f"budget-{n}") for n in budgets],
            ]:
                os.environ["EHDNAS_CACHE"] = str(cache / folder)  # each budget its own database
                measured = get_target("tvm-llvm", options).measure(model, TimingProtocol())
                ratios[(path.name, label)] = _row(path.name, model.macs, label, measured, base)
    print("ms: median latency, 1 thread; x ort: that over ONNX Runtime's; build s: import + compile (sampling")
    print("included, tuning not); tune s: MetaSchedule's time (expected s: what it said before starting);")
    print("trials: spent/budget; kernels: tuned now / in the model (the others came from the database)")
    print("untuned is TVM's default CPU pipeline with no schedule: not representative of TVM")
    for (name, label), ratio in ratios.items():
        if label == f"tuned, {default} trials":
            print(f"  {name}: tuned at the default budget {ratio:.2f}x ORT (target <= 1.5x)  {verdict(ratio <= 1.5)}")
    if args.larger:
        best = min(ratio for (_, label), ratio in ratios.items() if label == f"tuned, {args.larger} trials")
        print(f"  best at {args.larger} trials: {best:.2f}x ORT (target <= 1.0x on one model)  {verdict(best <= 1.0)}")


def _model(name: str, folder: Path) -> Path:
    if name != "darts":
        return LIGHT / THIRD_PARTY[name]
    space = get_space("darts")
    return export_arch(space, space.sample(np.random.default_rng(0)), folder / "darts_sample0.onnx").path


def _row(name: str, macs: int, label: str, measured: Measurement, base: Measurement) -> float:
    """Print one measurement's line; its latency over ONNX Runtime's."""
    d, ratio = measured.details, measured.latency_ms.median / base.latency_ms.median
    trials = f"{d['trials_spent']}/{d['trials']}" if "trials_spent" in d else ""
    kernels = f"{d['kernels_tuned_now']}/{d['kernels']}" if "kernels_tuned_now" in d else ""
    print(
        f"{name:24} {macs / 1e6:7.1f} {label:24} {measured.latency_ms.median:10.3f} {ratio:7.2f} "
        f"{d.get('compile_s', 0):8.1f} {d.get('tune_s', 0):7.0f} {d.get('expected_tune_s', ''):>10} {trials:>9} "
        f"{kernels:>15}",
        flush=True,
    )
    return ratio


if __name__ == "__main__":
    main()
