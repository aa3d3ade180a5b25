"""Remote measurement on loopback against local: overhead per network, and collection throughput with 1 and 2 devices.

Starts a tracker and device servers (`ehdnas tracker`, `ehdnas device`) on
loopback as processes of their own. Overhead: each network measured locally
and through a device under the same protocol, alternately, `--rounds` times;
the medians of the medians are compared (target: within 5%), with the wall
time of each (the remote one includes the session, the upload and, for
tvm-llvm, nothing more: the build is cached on the host after the first).
Throughput: a collection of `--samples` small DARTS networks on ort-cpu with 1,
then 2 devices, made wall-clock bound as on real devices by the devices' test
setting (each sleeps `--delay` s before measuring), since 2 devices on this
2-core machine would otherwise compete for the same cores.

    .venv/bin/python -m benchmarks.remote [--port 18140] [--models darts,squeezenet] [--targets ort-cpu,tvm-llvm]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from backends import TimingProtocol, get_target
from backends.remote.client import Tracker
from backends.remote.device import TEST_DELAY_ENV
from benchmarks.common import verdict
from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import export_arch
from ehdnas.pipeline.measure import collect
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
CLI = "import sys; sys.modules['torch'] = None; from ehdnas.cli import main; main()"  # devices run without torch


# The overhead of measuring remotely, not of tuning: tvm-llvm builds unscheduled (its default tunes for minutes).
SETTINGS = {"tvm-llvm": {"mode": "untuned"}}


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _free(port: int, key: str) -> int:
    try:
        with Tracker(("127.0.0.1", port), timeout_s=1.0) as tracker:
            return tracker.keys().get(key, {}).get("free", 0)
    except UserError:
        return -1


def _wait(condition, timeout_s: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("a server did not come up")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18140, help="tracker port; devices take the next ones up")
    parser.add_argument("--models", default="darts,squeezenet", help="darts (a sampled DARTS net) and/or squeezenet")
    parser.add_argument("--targets", default="ort-cpu,tvm-llvm", help="targets compared (tvm-llvm: mode=untuned)")
    parser.add_argument("--rounds", type=int, default=3, help="local/remote pairs per network")
    parser.add_argument("--samples", type=int, default=8, help="networks collected per throughput run (0: none)")
    parser.add_argument("--delay", type=float, default=3.0, help="seconds each device sleeps per measurement")
    args = parser.parse_args()
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        try:
            processes.append(_start("tracker", "--port", str(args.port)))
            _wait(lambda: _free(args.port, "x") >= 0)
            tracker = f"127.0.0.1:{args.port}"

            started: dict[str, int] = {}

            def device(key: str, index: int, delay: float = 0.0) -> None:
                # Every device of the key free, this one too: a count taken while another re-registers after a
                # session could be met by that one coming free again (and a 2-device run ran on one).
                started[key] = started.get(key, 0) + 1
                env = {TEST_DELAY_ENV: str(delay)} if delay else {}
                processes.append(_start("device", "--tracker", tracker, "--key", key, "--port",
                                        str(args.port + 10 + 10 * index), env=env))  # fmt: skip
                _wait(lambda: _free(args.port, key) >= started[key])

            device("cpu", 0)
            _overhead(args, tracker, Path(tmp))
            if not args.samples:
                return
            device("slow", 1, args.delay)
            walls = []
            for count in (1, 2):
                if count == 2:
                    device("slow", 2, args.delay)
                runner, space = get_target("ort-cpu", {"remote": f"{tracker}/slow"}), get_space("darts")
                quick = TimingProtocol(warmup=5, min_repeats=20, min_time_s=0.1, max_spread=10.0)
                start = time.perf_counter()
                collect(runner, space, args.samples, count, quick, Store(f"sqlite:///{tmp}/{count}.db"))
                walls.append(time.perf_counter() - start)
                print(f"collect {args.samples} on {count} device(s), {args.delay:g} s sleep each: {walls[-1]:.1f} s "
                      f"({args.samples / walls[-1]:.2f} networks/s)")  # fmt: skip
            speedup = walls[0] / walls[1]
            print(f"speed-up with 2 devices: {speedup:.2f}x (ideal 2x) {verdict(speedup > 1.6)}")
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)


def _overhead(args: argparse.Namespace, tracker: str, tmp: Path) -> None:
    paths = {}
    for name in args.models.split(","):
        if name == "darts":
            space = get_space("darts")
            paths[name] = export_arch(space, space.sample(np.random.default_rng(0)), tmp / "darts.onnx").path
        else:
            paths[name] = LIGHT / f"light_{name}.onnx"
    protocol = TimingProtocol()
    print(f"{'network':12} {'target':9} {'local ms':>9} {'remote ms':>9} {'median':>8} {'local s':>8} {'remote s':>8}")
    for name, path in paths.items():
        for target in args.targets.split(","):
            settings = SETTINGS.get(target, {})
            local_runner = get_target(target, settings)
            remote_runner = get_target(target, {**settings, "remote": f"{tracker}/cpu"})
            local_runner.measure(path, TimingProtocol(warmup=1, min_repeats=1, min_time_s=0))  # builds: not timed
            remote_runner.measure(path, TimingProtocol(warmup=1, min_repeats=1, min_time_s=0))
            local, remote = [], []
            for _ in range(args.rounds):
                local.append(local_runner.measure(path, protocol))
                remote.append(remote_runner.measure(path, protocol))
            lm = statistics.median(m.latency_ms.median for m in local)
            rm = statistics.median(m.latency_ms.median for m in remote)
            lw = statistics.median(m.wall_s for m in local)
            rw = statistics.median(m.wall_s for m in remote)
            print(f"{name:12} {target:9} {lm:9.3f} {rm:9.3f} {100 * (rm / lm - 1):+7.1f}% {lw:8.2f} {rw:8.2f} "
                  f"{verdict(abs(rm / lm - 1) <= 0.05)}")  # fmt: skip


if __name__ == "__main__":
    main()
