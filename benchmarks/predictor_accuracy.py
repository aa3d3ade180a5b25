"""Latency predictors on a target: accuracy against measurements, growth with data, cost in a search step.

Measures (or reuses from the store) 1,000 sampled DARTS architectures, then for
the first 100, 300 and 1,000 of them trains every predictor kind and evaluates
it on that set's held-out 20%. Targets (issue 3): with 1,000 measurements, mlp
within ±10% for at least 95% of held-out architectures, Kendall tau >= 0.85,
better than lut and flops on every metric (a tie is reported: ±10% saturates at 100%);
forward + backward under 1 ms.

    .venv/bin/python -m benchmarks.predictor_accuracy [--db URL] [--samples 1000]
    .venv/bin/python -m benchmarks.predictor_accuracy --target tvm-llvm -o mode=untuned --samples 300 --sizes 100,300 \
        --space-option layers=5 --space-option channels=8 --space-option input_size=16
    .venv/bin/python -m benchmarks.predictor_accuracy --target systolic-edge32 --samples 10000 \
        --sizes 1000,3000,10000 --space-option layers=5 --space-option channels=8 --space-option input_size=16

On a simulated target (no noise) the issue-6 target applies too: mlp within ±5% for 99%.
"""

from __future__ import annotations

import argparse
import time

import torch

from backends import get_target
from benchmarks.common import measured_darts, verdict
from perf_models.metrics import METRICS
from perf_models.train import train_predictors

HIGHER_IS_BETTER = {"acc5", "acc10", "kendall_tau", "spearman_rho"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sizes", default="100,300,1000", help="training-set sizes to report")
    parser.add_argument("--target", default="ort-cpu")
    parser.add_argument("-o", "--option", action="append", default=[], help="target setting KEY=VALUE")
    parser.add_argument("--space-option", action="append", default=[], help="DARTS setting KEY=VALUE")
    args = parser.parse_args()

    data = measured_darts(args.db, args.samples, 0, args.target, args.option, args.space_option)
    median = sorted(data.latency_ms)[len(data) // 2]
    settings = " ".join([*args.option, *args.space_option])
    print(f"{len(data)} measured DARTS architectures on {args.target} {settings}, median latency {median:.3f} ms")
    print(f"{'n':>5} {'kind':8} {'MAPE%':>7} {'RMSE ms':>8} {'±5%':>6} {'±10%':>6} {'tau':>6} {'rho':>6} {'fit s':>6}")
    final = {}
    for n in (int(s) for s in args.sizes.split(",")):
        report = train_predictors(data.subset(list(range(min(n, len(data))))))
        for kind, m in report.metrics.items():
            print(
                f"{min(n, len(data)):5d} {kind:8} {m['mape']:7.2f} {m['rmse_ms']:8.4f} {100 * m['acc5']:6.1f} "
                f"{100 * m['acc10']:6.1f} {m['kendall_tau']:6.3f} {m['spearman_rho']:6.3f} {m['fit_s']:6.1f}"
            )
        final = report.metrics
        predictor = report.predictor if report.best == "mlp" else None

    mlp = final["mlp"]
    print(f"\ntargets at n={min(n, len(data))} (held-out {report.sizes['test']}):")
    print(f"  mlp within ±10%: {100 * mlp['acc10']:.1f}% (target >= 95%)  {verdict(mlp['acc10'] >= 0.95)}")
    if get_target(args.target, args.option).simulated:  # no measurement noise: issue 6 asks for ±5% on 99%
        print(f"  mlp within ±5%: {100 * mlp['acc5']:.1f}% (target >= 99%)  {verdict(mlp['acc5'] >= 0.99)}")
    print(f"  mlp Kendall tau: {mlp['kendall_tau']:.3f} (target >= 0.85)  {verdict(mlp['kendall_tau'] >= 0.85)}")
    for baseline in ("lut", "flops"):
        sign = {k: 1 if k in HIGHER_IS_BETTER else -1 for k in METRICS}
        worse = [k for k in METRICS if sign[k] * (mlp[k] - final[baseline][k]) < 0]
        tied = [k for k in METRICS if mlp[k] == final[baseline][k]]
        note = f"worse on {', '.join(worse)}" if worse else f"tied on {', '.join(tied)}" if tied else ""
        print(f"  mlp no worse than {baseline} on every metric: {verdict(not worse)} {note}")

    from perf_models.mlp import MLPPredictor

    model = predictor if isinstance(predictor, MLPPredictor) else MLPPredictor([8] * 28)
    model.eval().requires_grad_(False)
    alpha = torch.zeros(28, 8, requires_grad=True)
    for _ in range(20):
        model(torch.softmax(alpha, -1)).backward()
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        model(torch.softmax(alpha, -1)).backward()
    per_call = (time.perf_counter() - start) * 1e3 / calls
    print(f"  forward + backward on softmax(alpha): {per_call:.3f} ms (target < 1 ms)  {verdict(per_call < 1)}")


if __name__ == "__main__":
    main()
