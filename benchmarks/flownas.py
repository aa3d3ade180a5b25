"""FlowNAS under a measured latency budget: the searched encoder against the best of random ones.

Runs `search --space flownas` on the embedded photo pairs with the constraint
measured on `--target` (every candidate's encoder exported and timed, stored),
then draws random encoders of the same space until `--random` of them meet the
same budget, measured the same way, and scores each with the search's own
fitness (its BatchNorm statistics recalibrated, validation EPE through the
shared supernet weights and flow head). The budget defaults to the point
`--budget-at` of the way from the smallest encoder's measured latency to the
largest's. Prints the chosen encoder's measured latency against the budget,
its validation and test EPE against the best random encoder's, the zero-flow
and teacher EPE for scale, the search cost and the share of candidates the
constraint rejected. Targets (issue 10): the budget is met when measured; the
searched encoder's validation EPE is below the best random one's.

Trained stages are kept in `--out` (default under the system's temp folder),
so a rerun with another budget or evolution reuses the teacher and supernet.

    .venv/bin/python -m benchmarks.flownas [--target ort-cpu] [--teacher-epochs 15] [--epochs 8] [--random 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backends import TimingProtocol, get_target
from benchmarks.common import verdict
from ehdnas.core.options import parse_pairs
from ehdnas.methods.flownas import (
    Fitness,
    latency_function,
    run_flow_search,
    supernet_stage,
    teacher_stage,
)
from ehdnas.methods.resolve import resolve
from ehdnas.pipeline.measure import measure_archs
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from ehdnas.tasks.flow_data import epe, load_flow_data

EVOLUTION = ["population=20", "generations=8", "parents=5", "mutations=10", "crossovers=10"]


def show(event: dict[str, Any]) -> None:
    """One line per finished epoch or generation, on stderr."""
    stage = event["stage"]
    if event.get("tick"):  # a running stage's status: this log has a line per finished unit only
        return
    if stage in ("flow-train", "supernet"):
        val = f", val EPE {event['val_epe']:.3f} px" if "val_epe" in event else ""
        print(f"  {stage} {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}{val}, {event['epoch_s']:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    elif stage == "evolution":
        print(f"  evolution {event['generation']}/{event['generations']}: best fitness {event['best_fitness']:.3f} "
              f"at {event['best_latency_ms']:.3f} ms", file=sys.stderr, flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: EHDNAS_DB or the user store)")
    parser.add_argument("--target", default="ort-cpu")
    parser.add_argument("-o", "--option", action="append", default=[], help="target setting KEY=VALUE")
    parser.add_argument("--space-option", action="append", default=["input_height=48", "input_width=64"])
    parser.add_argument("--budget-ms", type=float, help="latency budget (default: see --budget-at)")
    parser.add_argument("--budget-at", type=float, default=0.4, help="fraction from the smallest to the largest")
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=8, help="supernet training epochs")
    parser.add_argument("--evolution", action="append", default=[], help=f"K=V over {' '.join(EVOLUTION)}")
    parser.add_argument("--random", type=int, default=50, help="random encoders under the budget to compare with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "ehdnas-bench-flownas")
    args = parser.parse_args()

    runner, space, store = get_target(args.target, args.option), get_space("flownas", args.space_option), Store(args.db)
    protocol = TimingProtocol()
    smallest, largest = (
        r.measurement.latency_ms.median
        for r in measure_archs(runner, space, [space.smallest(), space.largest()], protocol, store)
    )
    budget = args.budget_ms or smallest + args.budget_at * (largest - smallest)
    evolution = EVOLUTION + args.evolution
    asked = {
        "data": "photos",
        "latency_budget_ms": budget,
        "latency_from": "measured",
        "epochs": args.epochs,
        "teacher_epochs": args.teacher_epochs,
        "evolution": parse_pairs(evolution, "--evolution"),
        "seed": args.seed,
    }
    settings = resolve(args.target, args.option, "flownas", args.space_option, "flownas", asked).settings  # fmt: skip
    print(f"flownas on {runner.name} at {space.input_shape}: smallest encoder {smallest:.3f} ms, largest "
          f"{largest:.3f} ms, budget {budget:.3f} ms", file=sys.stderr, flush=True)  # fmt: skip
    result = run_flow_search(settings, None, store, args.out, show)

    # The random baseline: the same data, stages, fitness and measured constraint as the search.
    c = space.config
    data = load_flow_data(settings.data, c.input_height, c.input_width, seed=settings.seed)
    teacher = teacher_stage(settings, space, data, args.out, show)
    supernet, head = supernet_stage(settings, space, data, teacher, args.out, show)
    fitness = Fitness(supernet, head, teacher, data, settings)
    latency = latency_function(settings, space, runner, None, store)
    rng, seen, drawn, started = np.random.default_rng(args.seed + 1), set(), 0, time.perf_counter()
    while len(seen) < args.random:
        arch = space.sample(rng)
        text = space.to_text(arch)
        if text in seen:
            continue
        drawn += 1
        if latency(arch) <= budget:
            seen.add(text)
            fitness(arch)
            print(f"\r  random {len(seen)}/{args.random} ({drawn} drawn)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    random_s = time.perf_counter() - started
    scores = {text: fitness.scores[text] for text in seen}
    best_random = min(scores, key=lambda t: scores[t]["val_epe"])
    random_test = fitness.epe(fitness.encoder(space.parse(best_random)), data.test)  # as the search's own choice
    val = data.val
    zero_val = float(epe(torch.zeros_like(val.flow), val.flow, val.valid))

    searched_val, best_val = result["val_epe"], scores[best_random]["val_epe"]
    measured = result["measured_latency_ms"]["median"]
    cost, evo = result["cost"], result["evolution"]
    random_vals = np.array([s["val_epe"] for s in scores.values()])
    print(f"\nFlowNAS on {runner.name}, {c.input_height}x{c.input_width} photo pairs, budget {budget:.3f} ms "
          f"(smallest encoder {smallest:.3f} ms, largest {largest:.3f} ms)")  # fmt: skip
    print("| encoder | measured ms | val EPE px | test EPE px |")
    print("| --- | --- | --- | --- |")
    print(f"| searched `{result['encoder']}` | {measured:.3f} | {searched_val:.3f} | {result['test_epe']:.3f} |")
    best_ms, teacher = latency(space.parse(best_random)), result["teacher"]
    print(f"| best of {args.random} random `{best_random}` | {best_ms:.3f} | {best_val:.3f} | {random_test:.3f} |")
    print(f"| teacher (largest) | {teacher['measured_latency_ms']:.3f} | | {teacher['test_epe']:.3f} |")
    print(f"| zero flow | | {zero_val:.3f} | |")
    print(f"random encoders' val EPE: median {np.median(random_vals):.3f}, worst {random_vals.max():.3f}, best "
          f"{random_vals.min():.3f} px; {drawn} drawn to find {args.random} under the budget")  # fmt: skip
    print(f"search cost: teacher {cost['teacher_s']:.0f} s, supernet {cost['supernet_s']:.0f} s, evolution "
          f"{cost['search_s']:.0f} s ({evo['evaluated']} fitness evaluations); random {random_s:.0f} s")  # fmt: skip
    print(f"constraint: {evo['rejected']} of {evo['drawn']} candidates drawn were over the budget "
          f"({100 * evo['rejected_share']:.0f}% rejected before their fitness was computed)")  # fmt: skip
    print(f"budget met when measured ({measured:.3f} <= {budget:.3f} ms): {verdict(result['meets_budget_measured'])}")
    print(f"searched val EPE below the best random one's ({searched_val:.3f} < {best_val:.3f}): "
          f"{verdict(searched_val < best_val)}")  # fmt: skip


if __name__ == "__main__":
    main()
