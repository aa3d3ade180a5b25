"""Active collection (`collect --strategy uncertain`) against uniform sampling, on the same measurements.

Pool-based, so both strategies draw from identical, already measured
architectures: 200 measured DARTS networks are held out for testing; from the
other 800, each strategy starts with the same 50 random ones and adds 50 per
round, uniform picks at random, uncertain picks the ones the ensemble disagrees
on most (the code `collect --strategy uncertain` runs). After each round an mlp
predictor is trained on what the strategy holds and scored on the test set.

    .venv/bin/python -m benchmarks.active_collection [--db URL] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from benchmarks.common import measured_darts
from perf_models.active import fit_for_selection, most_uncertain
from perf_models.metrics import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--repeats", type=int, default=3, help="independent starts, averaged")
    parser.add_argument("--sizes", default="100,200,300", help="numbers of measurements to score at")
    parser.add_argument("--pool-factor", type=int, default=3, help="candidates per chosen architecture")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    batch = 50

    data = measured_darts(args.db, 1000)
    scores: dict[tuple[str, int], list[dict[str, float]]] = {}
    for repeat in range(args.repeats):
        order = np.random.default_rng(100 + repeat).permutation(len(data))
        test, pool = data.subset(order[:200]), order[200:]
        for strategy in ("uniform", "uncertain"):
            rng = np.random.default_rng(repeat)
            held = list(rng.choice(pool, size=batch, replace=False))
            while len(held) < max(sizes):
                model = fit_for_selection(data.subset(held), seed=repeat)
                if len(held) in sizes:
                    scores.setdefault((strategy, len(held)), []).append(evaluate(model.predict(test), test.latency_ms))
                rest = np.setdiff1d(pool, held)
                if strategy == "uniform":
                    chosen = rng.choice(rest, size=batch, replace=False)
                else:  # as collect does: the most uncertain of a fresh random pool of pool_factor x batch
                    pool_rows = rng.choice(rest, size=min(len(rest), args.pool_factor * batch), replace=False)
                    chosen = pool_rows[most_uncertain(model, data.indices[pool_rows], batch)]
                held.extend(int(i) for i in chosen)
            model = fit_for_selection(data.subset(held), seed=repeat)
            scores.setdefault((strategy, len(held)), []).append(evaluate(model.predict(test), test.latency_ms))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    print(f"\nmlp on 200 held-out architectures, mean of {args.repeats} starts")
    print(f"{'measured':>8} {'strategy':10} {'MAPE%':>7} {'±5%':>6} {'±10%':>6} {'tau':>6}")
    for size in sizes:
        for strategy in ("uniform", "uncertain"):
            runs = scores[(strategy, size)]
            mean = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
            print(
                f"{size:8d} {strategy:10} {mean['mape']:7.2f} {100 * mean['acc5']:6.1f} "
                f"{100 * mean['acc10']:6.1f} {mean['kendall_tau']:6.3f}"
            )


if __name__ == "__main__":
    main()
