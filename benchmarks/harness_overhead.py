"""Harness overhead and measurement spread of the ort-cpu runner.

For each model, compares the runner's latency with a bare ONNX Runtime loop
(same session options, no per-call timing) and reports the spread of the
runner's samples and how far two independent measurements' medians differ.
Target: overhead within 5%, medians of two runs within a few percent.

    .venv/bin/python -m benchmarks.harness_overhead [--rounds 5] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from backends import TimingProtocol, get_target, load_model
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def bare_loop_ms(path: Path, feeds: dict, calls: int) -> float:
    """Mean latency of `calls` back-to-back session.run calls, timed as one block."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(5):
        session.run(None, feeds)
    start = time.perf_counter()
    for _ in range(calls):
        session.run(None, feeds)
    return (time.perf_counter() - start) * 1e3 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of harness and bare loop")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per round (fewer for big models)")
    args = parser.parse_args()

    runner = get_target("ort-cpu")
    with tempfile.TemporaryDirectory() as tmp:
        space = get_space("darts")
        darts = export_arch(space, space.sample(np.random.default_rng(0)), Path(tmp) / "darts_sample0.onnx").path
        models = [darts, LIGHT / "light_squeezenet.onnx", LIGHT / "light_resnet50.onnx"]
        print(f"host: {runner.host()}")
        columns = ("harness mean", "bare mean", "overhead", "cv", "run1 med", "run2 med", "diff")
        widths = (12, 10, 9, 6, 9, 9, 6)
        header = f"{'model':26} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths))
        print(header)
        print("-" * len(header))
        for path in models:
            model = load_model(path)
            feeds = model.fixed_inputs()
            calls = args.calls if "resnet" not in path.name else max(10, args.calls // 20)
            protocol = TimingProtocol(warmup=5, min_repeats=calls, min_time_s=0.0, max_repeats=calls)
            harness, bare, medians, cvs = [], [], [], []
            for _ in range(args.rounds):  # alternate, so drift of the machine hits both alike
                m = runner.measure(model, protocol)
                harness.append(m.latency_ms.mean)
                medians.append(m.latency_ms.median)
                cvs.append(m.latency_ms.cv)
                bare.append(bare_loop_ms(path, feeds, calls))
            h, b = statistics.median(harness), statistics.median(bare)
            run1, run2 = medians[0], medians[-1]
            print(
                f"{path.name:26} {h:10.3f}ms {b:8.3f}ms {100 * (h / b - 1):+8.2f}% {100 * statistics.median(cvs):5.1f}%"
                f" {run1:7.3f}ms {run2:7.3f}ms {100 * abs(run1 / run2 - 1):5.1f}%"
            )
    print("overhead: harness mean / bare-loop mean - 1 (median over rounds); cv: std/mean of one run's samples;")
    print("run1/run2 med: medians of the first and last independent measurement.")


if __name__ == "__main__":
    main()
