"""The timing protocol on a shared host: the same networks timed twice under one round and under rounds.

The first N DARTS networks of seed 0 (by default the space's default settings,
8 cells, 16 channels, 32x32, on `tflite-cpu -o precision=int8`; `--target`,
`-o` and `--space-option` choose others), each timed in two passes
(all networks, then all again) under three protocols:

- one: one round of the whole budget, no pinning, nothing retimed (one round
  has no spread to judge): the protocol before rounds;
- rounds: the default protocol on the wall clock: 5 short rounds, each on an
  idle core when there is one, the 3 fastest kept, more rounds while their
  medians lie more than 5% apart, flagged when still so;
- rounds+cpu: the same on the cpu clock (the timed thread's CPU time per run).

and under two conditions: `loaded`, with `--spinners` busy processes beside it,
and `quiet`, without them (other work on the host goes on: say what it was).
It prints, per condition and protocol, the median cv of one measurement's runs
and the median spread of its kept rounds' medians, the share flagged, the
median change of a network's median between the passes and Kendall's tau
between the two passes' medians (rank agreement). Conversions are
cached under EHDNAS_CACHE: point it at a collection's cache to skip them.

    .venv/bin/python -m benchmarks.timing_noise [--networks 30] [--spinners 2] [--conditions loaded,quiet]
        [--target tflite-cpu -o precision=int8] [--space-option layers=5 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import stats

from backends import TimingProtocol, get_target
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space

PROTOCOLS = {
    "one": TimingProtocol(rounds=1, keep_rounds=1, pin_idle_core=False, min_cpu_share=0.0, retries=0),
    "rounds": TimingProtocol(),
    "rounds+cpu": TimingProtocol(clock="cpu"),
}


@contextlib.contextmanager
def spinners(count: int) -> Iterator[None]:
    """`count` processes spinning on the CPU for the block, at this process's priority."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--spinners", type=int, default=os.cpu_count() or 1, help="busy processes when loaded")
    parser.add_argument("--conditions", default="loaded,quiet")
    parser.add_argument("--target", default="tflite-cpu")
    parser.add_argument("-o", "--option", action="append", help="target setting [precision=int8 on tflite-cpu]")
    parser.add_argument("--space-option", action="append", default=[], help="DARTS setting KEY=VALUE")
    args = parser.parse_args()

    options = args.option if args.option is not None else ["precision=int8"] * (args.target == "tflite-cpu")
    runner, space = get_target(args.target, options), get_space("darts", args.space_option)
    print(f"host: {runner.host()['cpu']}, {os.cpu_count()} cores; {args.networks} networks of darts "
          f"{space.config_dict()} on {args.target} {' '.join(options)}")  # fmt: skip
    header = f"{'condition':9} {'protocol':11} {'median cv':>9} {'spread':>6} {'flagged':>7} {'pass change':>11} "
    header += f"{'tau':>6} "
    header += f"{'s/net':>6}"
    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        archs = space.sample_many(args.networks, 0)
        models = [export_arch(space, a, Path(tmp) / f"{i}.onnx") for i, a in enumerate(archs)]
        for i, model in enumerate(models):  # converted (or found in the cache) before anything is timed
            runner.prepare(model)
            print(f"\r  prepared {i + 1}/{len(models)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        lines = []
        for condition in args.conditions.split(","):
            with spinners(args.spinners if condition == "loaded" else 0):
                for name, protocol in PROTOCOLS.items():
                    start = time.perf_counter()
                    passes = [[runner.measure(m, protocol) for m in models] for _ in range(2)]
                    seconds = (time.perf_counter() - start) / (2 * len(models))
                    first, second = (np.array([x.latency_ms.median for x in p]) for p in passes)
                    cvs = [x.latency_ms.cv for p in passes for x in p]
                    spread = np.median([x.spread() for p in passes for x in p])
                    flagged = np.mean([x.flagged for p in passes for x in p])
                    change = np.median(np.abs(second - first) / first)
                    tau = stats.kendalltau(first, second).statistic
                    lines.append(
                        f"{condition:9} {name:11} {np.median(cvs):9.3f} {spread:6.1%} {flagged:7.0%} {change:11.1%} "
                        f"{tau:6.3f} "
                        f"{seconds:6.1f}"
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
    print(header)
    print("-" * len(header))
    print("\n".join(lines))
    print("cv: of the samples a measurement's median comes from; spread: slowest / fastest kept round's median - 1;")
    print("pass change: |pass 2 - pass 1| / pass 1 of a network's median; tau: Kendall's tau between the passes'")
    print("medians; loaded: with --spinners busy processes")


if __name__ == "__main__":
    main()
