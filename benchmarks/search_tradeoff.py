"""EH-DNAS against DARTS (lambda 0) on ort-cpu and the embedded digits: measured latency and accuracy.

Trains the ort-cpu predictor for the chosen network settings if there is none
(collecting measurements first), runs a sweep (lambda 0 plus the given ones),
and prints, per lambda, test accuracy, measured and predicted latency and the
speed-up over lambda 0. Target (issue 4): some lambda at least 1.6x faster than
lambda 0, measured, at no more than 1 point lower test accuracy. Also prints the
time of a search epoch and the predictor's share of it (target: under 2%).

    .venv/bin/python -m benchmarks.search_tradeoff [--lambdas 0.5,1,2] [--epochs 25]
        [--space-option layers=8 ...] [--out runs/tradeoff]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backends import TimingProtocol, get_target
from benchmarks.common import verdict
from ehdnas.methods.darts import SearchSettings, run_sweep
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.measure import collect
from ehdnas.pipeline.predictors import train_and_save
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from perf_models import load_predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", default="0.5,1,2")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--retrain-epochs", type=int, default=30)
    parser.add_argument("--arch-lr", type=float, default=3e-4, help="Adam learning rate of alpha")
    parser.add_argument("--space-option", action="append", default=[], help="KEY=VALUE, as for ehdnas")
    parser.add_argument("--samples", type=int, default=300, help="measurements for a missing predictor")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--out", type=Path, default=Path("runs/tradeoff"))
    args = parser.parse_args()

    runner, space, store = get_target("ort-cpu"), get_space("darts", args.space_option), Store(args.db)
    key = MeasurementKey.of(runner, space)
    path = key.predictor_path()
    if not path.is_file():
        print(f"no predictor at {path}: measuring {args.samples} architectures and training one", flush=True)
        collect(runner, space, args.samples, 0, TimingProtocol(), store)
        report, _, path = train_and_save(store, space, key, kinds=["mlp", "lut"])
        print(f"trained {report.best}: held-out MAPE {report.metrics[report.best]['mape']:.2f}%")
    predictor = load_predictor(path, space="darts", space_config=space.config_dict())
    settings = SearchSettings(
        space_options=space.config_dict(), epochs=args.epochs, retrain_epochs=args.retrain_epochs, a_lr=args.arch_lr
    )

    def show(event: dict) -> None:
        if event["stage"] in ("sweep", "done") or (event["stage"] == "search" and event["epoch"] == event["epochs"]):
            print({k: v for k, v in event.items() if k not in ("alpha", "genotype")}, flush=True)

    sweep = run_sweep(settings, [float(v) for v in args.lambdas.split(",")], predictor, args.out, show)
    print(f"\n{'lambda':>7} {'test acc':>9} {'measured ms':>12} {'predicted ms':>13} {'speed-up':>9} {'acc drop':>9}")
    for row in sweep["runs"]:
        print(
            f"{row['lambda']:7g} {row['test_accuracy']:9.4f} {row['measured_ms']:12.3f} {row['predicted_ms']:13.3f} "
            f"{row['speedup_vs_lambda0']:8.2f}x {100 * row['accuracy_drop_vs_lambda0']:8.2f}pt"
        )
    best = max(
        (r for r in sweep["runs"] if r["accuracy_drop_vs_lambda0"] <= 0.01), key=lambda r: r["speedup_vs_lambda0"]
    )
    speedup = best["speedup_vs_lambda0"]
    print(f"best speed-up at <= 1 point accuracy loss: {speedup:.2f}x (target >= 1.6x)  {verdict(speedup >= 1.6)}")
    costs = [
        json.loads((args.out / f"lambda-{r['lambda']:g}" / "result.json").read_text())["cost"] for r in sweep["runs"]
    ]
    epoch_s = sum(c["epoch_s"] for c in costs) / len(costs)
    share = sum(c["predictor_share"] for c in costs) / len(costs)
    print(f"search epoch: {epoch_s:.1f} s; predictor share {100 * share:.2f}% (target < 2%)  {verdict(share < 0.02)}")


if __name__ == "__main__":
    main()
