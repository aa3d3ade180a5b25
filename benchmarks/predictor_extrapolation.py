"""Latency predictors away from the data they learned: the kind `train-predictor` chooses against the lookup table.

A search drives the architecture wherever the predictor says latency is low,
often to cells of parameter-free ops (pooling, skip) that a uniform sample
rarely fills. For each training-set size (the first N DARTS architectures of
seed 0, measured or reused from the store), mlp and lut are trained as
`train-predictor` trains them and scored on the usual held-out split and on two
sets measured through the same runner and store, drawn off the sampled
distribution: every edge picks a parameter-free op (max_pool_3x3,
avg_pool_3x3, skip_connect) with probability --bias, else another op; and the
same for the separable and dilated convolutions. The check: the kind the rule
chooses is no worse than lut on the parameter-free set. It holds by itself
where the rule chooses lut, so each line also gives the kind the lowest
validation MAPE alone would have chosen, and its error there.

    .venv/bin/python -m benchmarks.predictor_extrapolation [--target systolic-edge32] [--samples 100,300] [--db URL]
    .venv/bin/python -m benchmarks.predictor_extrapolation --target ort-cpu
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from backends import TimingProtocol, get_target
from benchmarks.common import measured_darts, verdict
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.measure import measure_archs
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from ehdnas.spaces.darts import CHOSEN_OPS, NODES, Genotype
from perf_models.dataset import Dataset
from perf_models.metrics import mape
from perf_models.train import train_predictors

DEMO_SIZE = ["layers=5", "channels=8", "input_size=16"]  # the demo's networks
PARAMETER_FREE = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")
CONVS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
KINDS = ("mlp", "lut")  # what a search's auto-trained predictor chooses between


def biased_genotypes(count: int, favoured: Sequence[str], bias: float, seed: int) -> list[Genotype]:
    """DARTS genotypes drawn as the space draws them, except that each edge's op is one of `favoured` with
    probability `bias` (uniformly among them), else one of the other ops."""
    rng = np.random.default_rng(seed)
    rest = [op for op in CHOSEN_OPS if op not in favoured]

    def cell() -> tuple[tuple[str, int], ...]:
        edges = []
        for node in range(NODES):
            for src in rng.choice(node + 2, size=2, replace=False):
                ops = favoured if rng.random() < bias else rest
                edges.append((ops[rng.integers(len(ops))], int(src)))
        return tuple(edges)

    return [Genotype(normal=cell(), reduce=cell()) for _ in range(count)]


def measured(db: str | None, target: str, options: Sequence[str], space_options: Sequence[str], archs: list) -> Dataset:
    """`archs` measured on `target` (or taken from the store), as a Dataset."""
    runner, space, store = get_target(target, options), get_space("darts", space_options), Store(db)
    measure_archs(runner, space, archs, TimingProtocol(), store)
    data = load_dataset(store, space, MeasurementKey.of(runner, space))
    wanted = {space.to_text(a) for a in archs}
    return data.subset([i for i, arch in enumerate(data.archs) if arch in wanted])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--target", default="systolic-edge32")
    parser.add_argument("--samples", default="100,300", help="training-set sizes (uniform samples of seed 0)")
    parser.add_argument("--off", type=int, default=60, help="architectures in each off-distribution set")
    parser.add_argument("--bias", type=float, default=0.8, help="probability an edge takes a favoured op")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of the initialisations")
    parser.add_argument("-o", "--option", action="append", default=[], help="target setting KEY=VALUE")
    parser.add_argument(
        "--space-option", action="append", default=None, help=f"DARTS setting KEY=VALUE [{' '.join(DEMO_SIZE)}]"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.samples.split(",")]
    space_options = DEMO_SIZE if args.space_option is None else args.space_option

    space = get_space("darts", space_options)
    uniform = measured_darts(args.db, max(sizes), 0, args.target, args.option, space_options)
    order = {space.to_text(a): i for i, a in enumerate(space.sample_many(max(sizes), 0))}
    uniform = uniform.subset(sorted(range(len(uniform)), key=lambda i: order[uniform.archs[i]]))  # sample order
    off = {
        name: measured(args.db, args.target, args.option, space_options, biased_genotypes(args.off, ops, args.bias, s))
        for name, ops, s in (("param-free", PARAMETER_FREE, 1), ("conv", CONVS, 2))
    }

    settings = " ".join([*args.option, *space_options])
    print(f"DARTS on {args.target} {settings}: {len(uniform)} uniform architectures (seed 0); off the distribution,")
    print(f"{len(off['param-free'])} with parameter-free ops and {len(off['conv'])} with convolutions favoured")
    print(
        f"on each edge with probability {args.bias}; median latency (ms): uniform {np.median(uniform.latency_ms):.4f}"
    )
    print(f"  param-free {np.median(off['param-free'].latency_ms):.4f}  conv {np.median(off['conv'].latency_ms):.4f}")
    print(f"\n{'n':>5} {'kind':5} {'val MAPE%':>9} {'± se':>6} {'held-out%':>9} {'param-free%':>11} {'conv%':>7}")
    checks, picks = [], []
    for n in sizes:
        report = train_predictors(uniform.subset(list(range(min(n, len(uniform))))), KINDS, args.seed)
        scores = {k: {name: mape(report.fitted[k].predict(d), d.latency_ms) for name, d in off.items()} for k in KINDS}
        for kind in KINDS:
            v, held_out, away = report.validation[kind], report.metrics[kind]["mape"], scores[kind]
            print(
                f"{report.sizes['train'] + report.sizes['val'] + report.sizes['test']:5d} {kind:5} {v['mape']:9.2f} "
                f"{v['se']:6.2f} {held_out:9.2f} {away['param-free']:11.2f} {away['conv']:7.2f}  "
                f"{'chosen' if kind == report.best else ''}"
            )
        lowest = min(KINDS, key=lambda k: report.validation[k]["mape"])
        picks.append(f"  n={n}: {report.reason}; the lowest validation MAPE alone picks {lowest}")
        chosen, lut, alone = (scores[k]["param-free"] for k in (report.best, "lut", lowest))
        checks.append(
            f"  n={n}: chosen {report.best} on the parameter-free set {chosen:.2f}% vs lut {lut:.2f}%  "
            f"{verdict(chosen <= lut)}  (the lowest validation MAPE alone: {lowest} {alone:.2f}%)"
        )
    print("\nthe rule chooses:", *picks, sep="\n")
    print("\nchosen kind no worse than lut off the distribution (parameter-free ops):", *checks, sep="\n")


if __name__ == "__main__":
    main()
