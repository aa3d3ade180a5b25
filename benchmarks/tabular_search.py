"""Tabular search on nb201: hardware-aware evolution against random search with as many table queries.

The accuracy table covers all 15,625 NAS-Bench-201 cells and is synthetic
(`synthetic_accuracy`): a fixed, seeded function of the ops, a score per
(edge, op) with convolutions worth more than pooling, skips and none, plus a
seeded pairwise term between the edges that hold convolutions, so the best
cell is not the sum of per-edge bests. The latency budget is the median
latency of `--budget-sample` seeded cells measured on `--target` (the systolic
simulator by default: deterministic), and every candidate either search draws
is measured there too (exported, simulated, stored in `--db`), so both hold to
the same measured budget. Evolution runs `--evolution` settings; random search
then draws as many cells within the budget as the evolution queried. Regret is
the table's true best within the budget (found by measuring cells in order of
accuracy until the first one within it) minus what each search found; 5 seeds
by default. Prints each seed's figures, then the mean and spread of both.

    .venv/bin/python -m benchmarks.tabular_search [--seeds 5] [--db sqlite:///tabular.db]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from backends import TimingProtocol, get_target
from ehdnas.methods.accuracy_table import load_accuracy_table
from ehdnas.methods.resolve import resolve
from ehdnas.pipeline.measure import measure_archs
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace, get_space
from ehdnas.spaces.nb201 import CELLS, OPS

SPACE = ["cells=1", "channels=8", "input_size=16"]  # a small network: the export, not the simulation, costs time
EVOLUTION = {"population": 10, "generations": 6, "parents": 5, "mutations": 5, "crossovers": 5, "mutation_prob": 0.3}


def synthetic_accuracy(space: SearchSpace, seed: int) -> dict[int, float]:
    """Accuracy of every nb201 cell by NAS-Bench-201 index: a fixed random smooth function of the ops (see above)."""
    rng = np.random.default_rng(seed)
    worth = np.array([0.0, 0.2, 0.5, 1.0, 0.3])  # per op, in OPS order: none, skip, 1x1, 3x3, pool
    per_edge = worth[None, :] * rng.uniform(0.5, 1.5, (6, len(OPS)))
    pair = rng.normal(0, 0.05, (6, 6))
    accuracy = {}
    for index in range(CELLS):
        ops = np.array(space.encode(space.from_index(index)))
        conv = (ops >= 2).astype(float)
        accuracy[index] = round(float(0.5 + per_edge[np.arange(6), ops].sum() / 10 + conv @ pair @ conv / 10), 6)
    return accuracy


def write_table(path: Path, accuracy: dict[int, float]) -> Path:
    path.write_text("arch,accuracy\n" + "".join(f"{i},{a:.6f}\n" for i, a in accuracy.items()))
    return path


def true_best(space: SearchSpace, table: Path, runner: Any, store: Store, budget_ms: float) -> tuple[str, float, int]:
    """The table's most accurate cell within the measured budget, and how many cells were measured to find it."""
    ranked = sorted(load_accuracy_table(table, space).accuracy.items(), key=lambda row: -row[1])
    for start in range(0, len(ranked), 32):
        chunk = ranked[start : start + 32]
        results = measure_archs(runner, space, [space.from_text(t) for t, _ in chunk], TimingProtocol(), store)
        for (text, accuracy), result in zip(chunk, results):
            if result.measurement.latency_ms.median <= budget_ms:
                return text, accuracy, start + chunk.index((text, accuracy)) + 1
    raise SystemExit("no cell within the budget")


def search(method: str, table: Path, budget_ms: float, seed: int, store: Store, out: Path, **values: Any) -> dict:
    """One tabular search through the method's own settings, its latency measured on the target."""
    options = {"accuracy_table": str(table), "latency_budget_ms": budget_ms, "latency_from": "measured",
               "seed": seed, **values}  # fmt: skip
    resolved = resolve(ARGS.target, {}, "nb201", SPACE, method, options)
    return resolved.method.run(resolved.settings, None, store, out / f"{method}-{seed}", lambda event: None)


def main() -> None:
    started = time.perf_counter()
    space, runner, store = get_space("nb201", SPACE), get_target(ARGS.target), Store(ARGS.db)
    out = Path(tempfile.mkdtemp(prefix="tabular-"))
    table = write_table(out / "accuracy.csv", synthetic_accuracy(space, ARGS.table_seed))
    sample = measure_archs(runner, space, space.sample_many(ARGS.budget_sample, 0), TimingProtocol(), store)
    budget_ms = float(np.median([r.measurement.latency_ms.median for r in sample]))
    best_text, best, scanned = true_best(space, table, runner, store, budget_ms)
    unconstrained = max(load_accuracy_table(table, space).accuracy.values())
    print(f"nb201 ({', '.join(SPACE)}) on {ARGS.target}; budget {budget_ms:.4f} ms (median of {ARGS.budget_sample} "
          f"measured cells); table seed {ARGS.table_seed}: best {unconstrained:.4f}, best within the budget "
          f"{best:.4f} ({scanned} cells measured to find it)")  # fmt: skip
    regrets: dict[str, list[float]] = {"evolution": [], "random": []}
    queries: dict[str, list[int]] = {"evolution": [], "random": []}
    for seed in range(ARGS.seeds):
        evolved = search("evolution", table, budget_ms, seed, store, out, evolution=EVOLUTION)
        drawn = search("random", table, budget_ms, seed, store, out, samples=evolved["table_queries"])
        for name, result in (("evolution", evolved), ("random", drawn)):
            assert result["meets_budget_measured"]
            regrets[name].append(best - result["accuracy"])
            queries[name].append(result["table_queries"])
        print(f"seed {seed}: evolution {evolved['accuracy']:.4f} ({evolved['table_queries']} queries, "
              f"{evolved['evolution']['rejected']} of {evolved['evolution']['drawn']} drawn over the budget), "
              f"random {drawn['accuracy']:.4f} ({drawn['table_queries']} queries)")  # fmt: skip
    for name in regrets:
        r, q = np.array(regrets[name]), np.array(queries[name])
        print(
            f"{name}: regret mean {r.mean():.4f}, std {r.std():.4f}, min {r.min():.4f}, max {r.max():.4f}; "
            f"found the true best in {int((r == 0).sum())}/{len(r)} seeds; queries mean {q.mean():.1f}"
        )
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="systolic-edge32")
    parser.add_argument("--db", default=None, help="Store URL [the default store]")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--table-seed", type=int, default=0)
    parser.add_argument("--budget-sample", type=int, default=40)
    ARGS = parser.parse_args()
    main()
