"""EH-DNAS against DARTS (lambda 0) and against random cells, on a task where architecture matters, several seeds.

For each seed: lambda 0 (DARTS; it has no hardware term, so one search serves
every target, its network measured on each), then each lambda on each target
with the predictor following the search, and one lambda with the predictor
frozen (as trained on uniform samples) for comparison. K random cells are
retrained the same way and measured on each target: the baseline the NAS
literature asks for first. Everything lands in `--out` and is reused when the
script runs again (several processes may share the work: `--seeds 0,1` and
`--seeds 2` at once, then all seeds to print the table).

Prints per target and lambda the mean and spread of test accuracy, measured
latency, the speed-up over lambda 0 and the predictor's error at the searched
network (followed, frozen); the best random cell at equal or lower latency;
verdicts against the targets; and writes a Pareto plot per target.

    .venv/bin/python -m benchmarks.search_tradeoff [--targets ort-cpu,systolic-edge32] [--data cluttered]
        [--lambdas 0.1,0.3,1] [--seeds 0,1,2] [--random 20] [--epochs 5] [--retrain-epochs 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from backends import TimingProtocol, get_target, load_model
from benchmarks.common import verdict
from ehdnas.core.events import is_tick, no_events
from ehdnas.core.options import parse_pairs
from ehdnas.methods.darts import SearchSettings, retrain, run_search
from ehdnas.pipeline.measure import measure_archs
from ehdnas.pipeline.predictors import ensure_predictor
from ehdnas.pipeline.store import Store
from ehdnas.report.plots import plot_tradeoff
from ehdnas.spaces import get_space
from ehdnas.tasks.images import load_data

ERROR_TARGET = {"ort-cpu": 0.05, "systolic-edge32": 0.02}  # the predictor's error at the searched network
# Lambda 0 has no hardware term: one search serves every target, run (and cached) on this one whatever --targets
# says, so a run for one target reuses the lambda-0 searches of a run for another.
ZERO_TARGET = "ort-cpu"


def show(event: dict[str, Any]) -> None:
    if event["stage"] == "search" and not is_tick(event):
        measured = f" measured {event['follow_measured_ms']:.4f}" if "follow_measured_ms" in event else ""
        print(f"    search {event['epoch']}/{event['epochs']}: val acc {event['val_acc']:.3f}, alpha max "
              f"{event['alpha_max']:.2f}, derived predicted {event['predicted_ms_derived']:.4f}{measured} ms",
              file=sys.stderr, flush=True)  # fmt: skip


def measured_ms(target: str, onnx: Path) -> float:
    return get_target(target).measure(load_model(onnx), TimingProtocol()).latency_ms.median


def searches(args: argparse.Namespace, space: Any, store: Store) -> list[dict[str, Any]]:
    """Every search of the benchmark as a row: seed, target, lambda, followed, accuracy, latencies."""
    rows = []
    base = SearchSettings(
        data=args.data, space_options=space.config_dict(), epochs=args.epochs, retrain_epochs=args.retrain_epochs
    )
    targets = sorted({*args.targets, ZERO_TARGET})
    predictors = {t: ensure_predictor(get_target(t), space, None, args.samples, 0, store) for t in targets}
    for seed in args.seeds:
        zero = dataclasses.replace(base, target=ZERO_TARGET, lambdas=[0.0], seed=seed)
        print(f"seed {seed}: lambda 0", file=sys.stderr, flush=True)
        result = run_search(zero, predictors[ZERO_TARGET], store, args.out / f"seed-{seed}" / "lambda-0", show)
        for target in args.targets:
            ms = result["measured_latency_ms"]["median"] if target == ZERO_TARGET else None
            ms = ms or measured_ms(target, args.out / f"seed-{seed}" / "lambda-0" / "model.onnx")
            rows.append({"seed": seed, "target": target, "lambda": 0.0, "followed": False, "measured_ms": ms,
                         "test_accuracy": result["test_accuracy"], "error": None,
                         "genotype": result["genotype"]})  # fmt: skip
        for target in args.targets:
            runs = [(lam, True) for lam in args.lambdas] + [(args.frozen_lambda, False)] * (seed in args.frozen_seeds)
            for lam, follow in runs:
                settings = dataclasses.replace(base, target=target, lambdas=[lam], seed=seed, follow=follow)
                name = f"lambda-{lam:g}" + ("" if follow else "-frozen")
                print(f"seed {seed}: {target} {name}", file=sys.stderr, flush=True)
                result = run_search(settings, predictors[target], store, args.out / f"seed-{seed}" / target / name,
                                    show)  # fmt: skip
                rows.append({"seed": seed, "target": target, "lambda": lam, "followed": follow,
                             "measured_ms": result["measured_latency_ms"]["median"],
                             "test_accuracy": result["test_accuracy"], "error": result["prediction_error"],
                             "frozen_error": result["frozen_prediction_error"], "genotype": result["genotype"],
                             "search_s": result["cost"]["search_s"], "follow_share": result["cost"]["follow_share"],
                             "refit_s": result["cost"]["refit_s"]})  # fmt: skip
    return rows


def skip_guard(args: argparse.Namespace, space: Any) -> list[dict[str, Any]]:
    """Lambda 0 with and without the skip cap: the same search (the cap acts when the cell is derived), its final
    alpha derived without the cap and retrained the same way when that gives another cell (cached)."""
    import torch

    from ehdnas.supernets.darts import derive_genotype

    data, rows = None, []
    for seed in args.seeds:
        folder = args.out / f"seed-{seed}" / "lambda-0"
        result = json.loads((folder / "result.json").read_text())
        alpha = np.asarray(torch.load(folder / "checkpoint.pt", weights_only=True)["history"][-1]["alpha"])
        free = derive_genotype(space, alpha)
        path = folder / "uncapped.json"
        if not path.is_file():
            accuracy = result["test_accuracy"]
            if free.to_text() != result["genotype"]:
                data = data or load_data(args.data, space.config.input_size, space.config.in_channels)
                settings = SearchSettings(**{k: v for k, v in result["settings"].items() if k != "lambdas"})
                accuracy = retrain(settings, space, free, data, no_events)[1]
            path.write_text(json.dumps({"genotype": free.to_text(), "test_accuracy": accuracy}))
        uncapped = json.loads(path.read_text())
        rows.append({"seed": seed, "capped": result["test_accuracy"], "uncapped": uncapped["test_accuracy"],
                     "skips_capped": [op for op, _ in space.parse(result["genotype"]).normal].count("skip_connect"),
                     "skips_uncapped": [op for op, _ in free.normal].count("skip_connect")})  # fmt: skip
    return rows


def random_cells(args: argparse.Namespace, space: Any, store: Store) -> list[dict[str, Any]]:
    """K random cells, retrained as the searched ones are, measured on each target (cached in out/random)."""
    folder = args.out / "random"
    folder.mkdir(parents=True, exist_ok=True)
    settings = SearchSettings(data=args.data, space_options=space.config_dict(), retrain_epochs=args.retrain_epochs)
    data = load_data(args.data, space.config.input_size, space.config.in_channels)
    archs = space.sample_many(args.random, seed=10_000)
    latency = {t: measure_archs(get_target(t), space, archs, TimingProtocol(), store) for t in args.targets}
    rows = []
    for i, arch in enumerate(archs):
        path = folder / f"{i}.json"
        if not path.is_file():
            started = time.perf_counter()
            _, accuracy = retrain(settings, space, arch, data, no_events)
            path.write_text(json.dumps({"test_accuracy": accuracy, "retrain_s": time.perf_counter() - started}))
            print(f"  random {i + 1}/{args.random}: test accuracy {accuracy:.4f}", file=sys.stderr, flush=True)
        row = json.loads(path.read_text()) | {"genotype": space.to_text(arch)}
        rows.append(row | {f"{t}_ms": latency[t][i].measurement.latency_ms.median for t in args.targets})
    return rows


def _stats(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def report(args: argparse.Namespace, rows: list[dict[str, Any]], random: list[dict[str, Any]]) -> None:
    for target in args.targets:
        mine = [r for r in rows if r["target"] == target]
        zero = {r["seed"]: r for r in mine if r["lambda"] == 0}
        print(f"\n## {target} ({len(args.seeds)} seeds: {', '.join(map(str, args.seeds))})")
        print(
            f"{'lambda':>12} {'test accuracy':>18} {'measured ms':>18} {'speed-up':>9} {'pred. error, each seed':>30}"
        )
        groups: dict[tuple[float, bool], list[dict[str, Any]]] = {}
        for r in mine:
            groups.setdefault((r["lambda"], r["followed"]), []).append(r)
        summary = {}
        for (lam, followed), group in sorted(groups.items()):
            speedup = float(np.mean([zero[r["seed"]]["measured_ms"] / r["measured_ms"] for r in group]))
            drop = float(np.mean([zero[r["seed"]]["test_accuracy"] - r["test_accuracy"] for r in group]))
            errors = [r["error"] for r in group if r["error"] is not None]
            label = f"{lam:g}" + ("" if followed or lam == 0 else " frozen")
            each = " ".join(f"{100 * e:+.1f}%" for e in errors) or "-"
            print(f"{label:>12} {_stats([r['test_accuracy'] for r in group]):>18} "
                  f"{_stats([r['measured_ms'] for r in group]):>18} {speedup:8.2f}x {each:>30}")  # fmt: skip
            summary[(lam, followed)] = {"speedup": speedup, "drop": drop, "errors": errors, "group": group}
        followed = [s for (lam, f), s in summary.items() if f and lam > 0]
        mean_error = float(np.mean([abs(e) for s in followed for e in s["errors"]]))
        limit = ERROR_TARGET.get(target, 0.05)
        print(f"predictor error at the searched network, followed: mean |error| {100 * mean_error:.1f}% "
              f"(target <= {100 * limit:.0f}%)  {verdict(mean_error <= limit)}")  # fmt: skip
        frozen = [abs(e) for (lam, f), s in summary.items() if not f and lam > 0 for e in s["errors"]]
        if frozen:
            print(f"  the same with the predictor frozen: mean |error| {100 * np.mean(frozen):.1f}%")
        good = [s for s in followed if s["drop"] <= 0.01]
        best = max(good or followed, key=lambda s: s["speedup"])
        lam = best["group"][0]["lambda"]
        ok = bool(good) and best["speedup"] >= 2
        print(
            f"best lambda {lam:g}: {best['speedup']:.2f}x faster measured than lambda 0 at "
            f"{100 * best['drop']:+.2f} points lower test accuracy (target >= 2x at <= 1 point)  {verdict(ok)}"
        )
        wins = 0
        for r in best["group"]:
            rivals = [c["test_accuracy"] for c in random if c[f"{target}_ms"] <= r["measured_ms"]]
            rival = max(rivals) if rivals else None
            wins += rival is None or r["test_accuracy"] >= rival
            print(
                f"  seed {r['seed']}: {r['test_accuracy']:.4f} at {r['measured_ms']:.4f} ms; best of "
                f"{len(rivals)} random cells at <= that latency: {'-' if rival is None else f'{rival:.4f}'}"
            )
        print(f"at least as accurate as the best random cell at <= its latency in {wins}/{len(best['group'])} seeds  "
              f"{verdict(wins == len(best['group']))}")  # fmt: skip
        points = [(c[f"{target}_ms"], c["test_accuracy"]) for c in random]
        plot_tradeoff([r for r in mine if r["followed"] or r["lambda"] == 0], target, args.out / f"pareto-{target}.png",
                      points)  # fmt: skip
        print(f"Pareto plot: {args.out / f'pareto-{target}.png'}")
    if random:
        cost = sum(c["retrain_s"] for c in random)
        print(f"\nrandom baseline: {len(random)} cells retrained in {cost:.0f} s ({cost / len(random):.0f} s each)")
    costs = [r for r in rows if "search_s" in r and r["followed"]]
    if costs:
        print(f"followed searches: {np.mean([r['search_s'] for r in costs]):.0f} s each on average; following took "
              f"{100 * np.mean([r['follow_share'] for r in costs]):.1f}% of the search, its slowest refit "
              f"{max(r['refit_s'] for r in costs):.3f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="ort-cpu,systolic-edge32")
    parser.add_argument("--data", default="cluttered")
    parser.add_argument("--lambdas", default="0.1,0.3,1")
    parser.add_argument("--frozen-lambda", type=float, default=0.3, help="lambda also searched with a frozen predictor")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--frozen-seeds", help="seeds that also search with a frozen predictor [all]")
    parser.add_argument("--random", type=int, default=20, help="random cells retrained as the baseline")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100, help="measurements for a missing predictor")
    parser.add_argument("--space-option", action="append", default=["layers=5", "channels=8", "input_size=16"])
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--out", type=Path, default=Path("runs/tradeoff"))
    args = parser.parse_args()
    args.targets = args.targets.split(",")
    args.lambdas = [float(v) for v in args.lambdas.split(",")]
    args.seeds = [int(v) for v in args.seeds.split(",")]
    args.frozen_seeds = [int(v) for v in args.frozen_seeds.split(",")] if args.frozen_seeds else args.seeds
    space, store = get_space("darts", parse_pairs(args.space_option, "--space-option")), Store(args.db)
    random = random_cells(args, space, store) if args.random else []
    report(args, searches(args, space, store), random)
    print("\n## collapse guard: lambda 0 with the skip cap (2, the default) and without")
    for row in skip_guard(args, space):
        print(f"  seed {row['seed']}: skip_connect in the normal cell {row['skips_capped']} capped, "
              f"{row['skips_uncapped']} uncapped; test accuracy {row['capped']:.4f} capped, {row['uncapped']:.4f} "
              "uncapped")  # fmt: skip


if __name__ == "__main__":
    main()
