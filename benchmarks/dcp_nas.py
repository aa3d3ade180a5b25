"""DCP-NAS on an embedded task: the 1-bit child against CP-NAS and a random 1-bit network, several seeds.

Three 1-bit networks of the binary DARTS space, each retrained the same way
(cross-entropy plus the reconstruction term, `--retrain-epochs`): the child
that DCP-NAS finds (tangent propagation, lambda 5e-3), the child of CP-NAS
(lambda 0), and a randomly sampled architecture. Both searches are hardware
aware on `--target` (default systolic-edge32, whose array packs 1-bit MACs),
with a predictor trained on `--auto-samples` simulated measurements of the
binary space. Prints test accuracy, search time, memory (Mbit) beside the
same genotype's real-valued network, and latency on the target, 1-bit and
real-valued. Targets (issue 9): DCP-NAS above CP-NAS and above random; memory
at least 20x smaller than real-valued.

    .venv/bin/python -m benchmarks.dcp_nas [--data cluttered] [--lambda 0.5] [--epochs 6] [--retrain-epochs 20]
        [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from backends import TimingProtocol, get_target
from benchmarks.common import verdict
from ehdnas.core.options import parse_pairs
from ehdnas.methods.darts import retrain, run_search
from ehdnas.methods.registry import get_method
from ehdnas.methods.resolve import resolve
from ehdnas.pipeline.export import export_model
from ehdnas.pipeline.predictors import ensure_predictor
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from ehdnas.spaces.binary_ops import memory_bits
from ehdnas.tasks.images import load_data


def quiet(event: dict) -> None:
    if event["stage"] == "search" and not event.get("tick"):
        print(f"  search {event['epoch']}/{event['epochs']}: val acc {event['val_acc']:.3f}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--target", default="systolic-edge32")
    parser.add_argument("--data", default="cluttered", help="embedded task: digits or cluttered")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=20)
    parser.add_argument("--lambda", dest="lam", type=float, default=0.5, help="hardware-term weight")
    parser.add_argument("--auto-samples", type=int, default=200)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run of each network per seed")
    parser.add_argument("--space-option", action="append", default=["layers=5", "channels=8", "input_size=16"])
    args = parser.parse_args()

    space = get_method("dcp-nas").space("darts", parse_pairs(args.space_option, "--space-option"))
    real_space = get_space("darts", {**space.config_dict(), "binary": False})
    runner, protocol = get_target(args.target), TimingProtocol()
    store = Store(args.db)
    predictor = ensure_predictor(runner, space, None, args.auto_samples, 0, store, lambda *_: None)
    data = load_data(args.data, space.config.input_size, space.config.in_channels)
    rows: dict[str, list[dict]] = {"DCP-NAS": [], "CP-NAS": [], "random": []}
    with tempfile.TemporaryDirectory(prefix="ehdnas-dcp-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, dcp_lambda in (("DCP-NAS", 5e-3), ("CP-NAS", 0.0)):
                print(f"{name}, seed {seed}", file=sys.stderr)
                asked = {"lambdas": [args.lam], "epochs": args.epochs, "retrain_epochs": args.retrain_epochs,
                         "seed": seed, "dcp_lambda": dcp_lambda, "data": args.data}  # fmt: skip
                settings = resolve(args.target, {}, "darts", space.config_dict(), "dcp-nas", asked).settings
                result = run_search(settings, predictor, store, Path(tmp) / f"{name}-{seed}", quiet)
                genotype = space.parse(result["genotype"])
                rows[name].append(
                    {
                        "accuracy": result["test_accuracy"],
                        "search_s": result["cost"]["search_s"],
                        "genotype": genotype,
                        "one_bit_ms": result["measured_latency_ms"]["median"],
                    }
                )
            genotype = space.sample_many(1, seed)[0]
            model, accuracy = retrain(settings, space, genotype, data, lambda _: None)
            exported = export_model(model, space.input_shape, Path(tmp) / f"random-{seed}.onnx")
            one_bit = runner.measure(exported, protocol)
            rows["random"].append(
                {"accuracy": accuracy, "search_s": 0.0, "genotype": genotype, "one_bit_ms": one_bit.latency_ms.median}
            )

        print(f"binary DARTS {space.config_dict()}, {args.data}, target {args.target}, seeds {args.seeds}")
        header = (
            f"{'network':8} {'test acc':>9} {'search s':>9} {'Mbit 1-bit':>10} {'Mbit real':>9} {'smaller':>7} "
            f"{'1-bit ms':>9} {'real ms':>8}"
        )
        print(header)
        print("-" * len(header))
        summary = {}
        for name, runs in rows.items():
            bits = [memory_bits(space.build(r["genotype"])) for r in runs]
            real_bits = [memory_bits(real_space.build(r["genotype"])) for r in runs]
            real_ms = []
            for i, r in enumerate(runs):
                path = Path(tmp) / f"real-{name}-{i}.onnx"
                real_ms.append(
                    runner.measure(export_model(real_space.build(r["genotype"]), space.input_shape, path), protocol)
                )
            real_ms = [m.latency_ms.median for m in real_ms]
            accuracy = float(np.mean([r["accuracy"] for r in runs]))
            ratio = float(np.mean([rb / b for rb, b in zip(real_bits, bits)]))
            summary[name] = (accuracy, ratio)
            print(
                f"{name:8} {accuracy:9.4f} {np.mean([r['search_s'] for r in runs]):9.0f} {np.mean(bits) / 1e6:10.3f} "
                f"{np.mean(real_bits) / 1e6:9.3f} {ratio:6.1f}x {np.mean([r['one_bit_ms'] for r in runs]):9.4f} "
                f"{np.mean(real_ms):8.4f}"
            )
    print("test acc: mean over seeds of the retrained 1-bit network; smaller: real-valued / 1-bit memory")
    evaluation = {**space.config_dict(), "layers": 20, "channels": 36, "input_size": 32}  # DCP-NAS on CIFAR-10
    genotype = rows["DCP-NAS"][0]["genotype"]
    big = memory_bits(get_space("darts", evaluation).build(genotype))
    big_real = memory_bits(get_space("darts", {**evaluation, "binary": False}).build(genotype))
    print(f"  at 20 cells, 36 channels (32x32) the DCP-NAS genotype takes {big / 1e6:.3f} Mbit, real-valued "
          f"{big_real / 1e6:.3f} Mbit: {big_real / big:.1f}x smaller")  # fmt: skip
    print(f"  DCP-NAS genotype: {genotype.to_text()}")
    with tempfile.TemporaryDirectory(prefix="ehdnas-dcp-") as tmp:  # where 1-bit work pays off on the array
        ms = {}
        for name, options in (("1-bit", evaluation), ("real", {**evaluation, "binary": False})):
            sized = get_space("darts", options)
            exported = export_model(sized.build(genotype), sized.input_shape, Path(tmp) / f"{name}.onnx")
            ms[name] = runner.measure(exported, protocol).latency_ms.median
    print(f"  at 20 cells, 36 channels, 32x32 on {args.target}: 1-bit {ms['1-bit']:.3f} ms, real-valued "
          f"{ms['real']:.3f} ms")  # fmt: skip
    dcp, cp, random = summary["DCP-NAS"][0], summary["CP-NAS"][0], summary["random"][0]
    print(f"  DCP-NAS {dcp:.4f} above CP-NAS {cp:.4f}: {verdict(dcp > cp)}")
    print(f"  DCP-NAS {dcp:.4f} above random {random:.4f}: {verdict(dcp > random)}")
    ratio = summary["DCP-NAS"][1]
    print(f"  memory {ratio:.1f}x smaller than real-valued here, {big_real / big:.1f}x at 20 cells, 36 channels "
          f"(target >= 20x): {verdict(big_real / big >= 20)}")  # fmt: skip


if __name__ == "__main__":
    main()
