"""Measuring on remote devices: a real tracker and real device servers on loopback, each in a process of its own.

The devices are started as `ehdnas device` with torch blocked from import, so
every remote measurement here also shows the device side runs without it. A
collection is made wall-clock bound (not bound by this machine's 2 cores) by
the devices' test setting, a sleep before each measurement, longer than the
host's export of a network (exports run one at a time; at 1 s they bounded the
collection and 2 devices took as long as 1).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from backends import TimingProtocol, get_target
from backends.remote.client import Tracker, device_report, reachable
from backends.remote.device import TEST_DELAY_ENV
from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import export_arch
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.measure import collect
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from tests.conftest import ROOT
from tests.methods.test_requests import PROTOCOL

TRACKER_PORT = 18141  # this suite's ports: 18140-18179
DEVICE_PORTS = (18150, 18165)
NO_TORCH_CLI = "import sys; sys.modules['torch'] = None; from ehdnas.cli import main; main()"
QUICK = TimingProtocol(warmup=1, min_repeats=5, min_time_s=0.0, max_cv=10.0)  # a noisy one is not taken again
SPACE = {"layers": 3, "channels": 4, "input_size": 8}


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`ehdnas ARGS` without torch, in a session of its own (so killing it takes what it forked along)."""
    return subprocess.Popen(
        [sys.executable, "-c", NO_TORCH_CLI, *args], cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _devices_under(key: str) -> int:
    try:
        with Tracker(("127.0.0.1", TRACKER_PORT), timeout_s=1.0) as tracker:
            return tracker.keys().get(key, {}).get("free", 0)
    except UserError:
        return 0


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def tracker() -> Iterator[str]:
    process = _start("tracker", "--port", str(TRACKER_PORT))
    _wait_for(lambda: reachable_at() is None, "the tracker")
    yield f"127.0.0.1:{TRACKER_PORT}"
    _kill(process)


def reachable_at() -> str | None:
    try:
        Tracker(("127.0.0.1", TRACKER_PORT), timeout_s=1.0).close()
    except UserError as err:
        return str(err)
    return None


@pytest.fixture
def devices(tracker: str) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a device under a key: `devices(key, port_index, delay_s)`; all are killed after the test."""
    started: list[subprocess.Popen] = []

    def start(key: str, index: int = 0, delay_s: float = 0.0) -> subprocess.Popen:
        before = _devices_under(key)
        env = {TEST_DELAY_ENV: str(delay_s)} if delay_s else {}
        started.append(_start("device", "--tracker", tracker, "--key", key, "--port", str(DEVICE_PORTS[index]),
                              env=env))  # fmt: skip
        _wait_for(lambda: _devices_under(key) > before, f"device {index} under {key!r}")
        return started[-1]

    yield start
    for process in started:
        _kill(process)


@pytest.fixture(scope="module")
def darts_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    space = get_space("darts", SPACE)
    return export_arch(space, space.sample(np.random.default_rng(0)), tmp_path_factory.mktemp("net") / "net.onnx").path


@pytest.mark.slow
def test_the_device_side_runs_and_measures_with_torch_blocked(darts_net: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "net.onnx").write_bytes(darts_net.read_bytes())
    request = {"target": "ort-cpu", "config": {"threads": 1}, "protocol": QUICK.to_dict(), "model": "net.onnx",
               "inputs": {"input": [1, 3, 8, 8]}, "artifact": None}  # fmt: skip
    script = f"""
import json, sys
sys.modules["torch"] = None
import tvm_ffi
from backends.remote import device
device.init()
tvm_ffi.register_global_func("tvm.rpc.server.workpath", lambda name: {str(work)!r} + "/" + name, override=True)
report = json.loads(tvm_ffi.get_global_func("ehdnas.describe")())
measured = json.loads(tvm_ffi.get_global_func("ehdnas.measure")({json.dumps(request)!r}))
print(json.dumps({{"report": report, "measured": measured, "heavy": sorted(
    m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "fastapi", "perf_models", "server")
    or m.startswith(("ehdnas.spaces", "ehdnas.pipeline", "ehdnas.methods")))}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["heavy"] == []
    assert answer["report"]["runtimes"]["ort-cpu"]["available"]
    assert answer["measured"]["latency_ms"]["n"] >= QUICK.min_repeats
    assert answer["measured"]["host"] == answer["report"]["runtimes"]["ort-cpu"]["host"]


@pytest.mark.slow
def test_a_remote_measurement_equals_the_local_one_and_carries_the_device_fingerprint(
    devices: Callable[..., subprocess.Popen], tracker: str, darts_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices("cpu-a")
    protocol = TimingProtocol(warmup=20, min_repeats=50, min_time_s=0.5)
    local = get_target("ort-cpu").measure(darts_net, protocol)
    runner = get_target("ort-cpu", [f"remote={tracker}/cpu-a"])
    remote = runner.measure(darts_net, protocol)
    assert remote.model == local.model
    assert remote.details["remote"] == f"{tracker}/cpu-a"
    # Within the protocol's noise on a shared 2-core machine: the two medians' spreads overlap.
    assert abs(remote.latency_ms.median - local.latency_ms.median) <= max(
        0.25 * local.latency_ms.median, local.latency_ms.p90 - local.latency_ms.p10
    )
    # The key's host is what the device reports, not this process's fingerprint (made to differ here).
    monkeypatch.setattr("backends.base.host_info", lambda libraries: {"cpu": "the host", "libraries": libraries})
    space = get_space("darts", SPACE)
    device_host = device_report(runner.remote)["runtimes"]["ort-cpu"]["host"]
    assert MeasurementKey.of(runner, space).host == device_host == remote.host
    assert MeasurementKey.of(get_target("ort-cpu"), space).host["cpu"] == "the host"
    assert "remote" not in runner.config_dict()


def test_a_missing_key_or_tracker_fails_fast_in_one_line(tracker: str, darts_net: Path) -> None:
    start = time.monotonic()
    with pytest.raises(UserError, match="no device is registered under key 'nowhere'"):
        get_target("ort-cpu", {"remote": f"{tracker}/nowhere"}).measure(darts_net, QUICK)
    assert reachable(get_target("ort-cpu", {"remote": "127.0.0.1:18179/k"}).remote).startswith(
        "no RPC tracker answers at 127.0.0.1:18179"
    )
    assert time.monotonic() - start < 5
    with pytest.raises(UserError, match="is not HOST:PORT/KEY"):
        get_target("ort-cpu", {"remote": "127.0.0.1/k"})


@pytest.mark.slow
def test_killing_a_device_mid_collect_loses_nothing_and_collect_resumes(
    devices: Callable[..., subprocess.Popen], tracker: str, db_url: str
) -> None:
    first = devices("cpu-b", delay_s=0.5)
    runner, space = get_target("ort-cpu", {"remote": f"{tracker}/cpu-b"}), get_space("darts", SPACE)
    store = Store(db_url)
    key = MeasurementKey.of(runner, space)
    failed: list[Exception] = []

    def run() -> None:
        try:
            collect(runner, space, 8, 0, QUICK, store)
        except UserError as err:
            failed.append(err)

    collecting = threading.Thread(target=run)
    collecting.start()
    _wait_for(lambda: len(store.stored_archs(key)) >= 2, "two stored measurements")
    _kill(first)
    collecting.join(timeout=120)
    assert not collecting.is_alive() and len(failed) == 1
    kept = len(store.stored_archs(key))
    assert 2 <= kept < 8
    devices("cpu-b")
    report = collect(runner, space, 8, 0, QUICK, store)
    assert (report.already_stored, report.measured) == (kept, 8 - kept)
    assert len(store.stored_archs(key)) == 8


@pytest.mark.slow
def test_two_devices_halve_the_wall_time_of_a_wall_clock_bound_collection(
    devices: Callable[..., subprocess.Popen], tracker: str, tmp_path: Path
) -> None:
    runner, space = get_target("ort-cpu", {"remote": f"{tracker}/cpu-c"}), get_space("darts", SPACE)
    # Wall-clock bound whatever the load: each device's measurement takes 3 times as long as the host's export
    # (exports run one at a time; at load 4 here one took 4 s and bounded both collections alike).
    start = time.perf_counter()
    export_arch(space, space.sample(np.random.default_rng(1)), tmp_path / "timed.onnx")
    delay_s = max(2.0, 3 * (time.perf_counter() - start))
    devices("cpu-c", 0, delay_s=delay_s)
    walls = []
    for count in (1, 2):
        if count == 2:
            devices("cpu-c", 1, delay_s=delay_s)
        start = time.perf_counter()
        report = collect(runner, space, 6, 0, QUICK, Store(f"sqlite:///{tmp_path / f'{count}.db'}"))
        walls.append(time.perf_counter() - start)
        assert report.measured == 6
    assert walls[1] < 0.65 * walls[0], (walls, delay_s)


@pytest.mark.slow
def test_tvm_llvm_builds_on_the_host_for_the_device_and_times_there(
    devices: Callable[..., subprocess.Popen], tracker: str, darts_net: Path
) -> None:
    devices("cpu-d")
    protocol = TimingProtocol(warmup=5, min_repeats=50, min_time_s=0.5)
    runner = get_target("tvm-llvm", {"mode": "untuned", "remote": f"{tracker}/cpu-d"})  # this CPU: the same code
    remote = runner.measure(darts_net, protocol)
    local = get_target("tvm-llvm", {"mode": "untuned"}).measure(darts_net, protocol)
    assert remote.details["built_on_host"]
    assert abs(remote.latency_ms.median - local.latency_ms.median) <= max(
        0.25 * local.latency_ms.median, local.latency_ms.p90 - local.latency_ms.p10
    )
    assert remote.host == device_report(runner.remote)["runtimes"]["tvm-llvm"]["host"]


def test_a_target_that_cannot_measure_remotely_is_refused_in_one_line(darts_net: Path) -> None:
    with pytest.raises(UserError, match="target 'tflite-cpu' cannot measure on a remote device; ort-cpu, tvm-llvm"):
        get_target("tflite-cpu", {"remote": "127.0.0.1:18179/k"}).measure(darts_net, QUICK)


def test_a_job_spec_with_a_remote_is_checked_at_submission(tracker: str) -> None:
    from ehdnas.core.limits import Limits
    from ehdnas.methods.requests import check_measure
    from ehdnas.methods.resolve import SettingErrors

    for remote, problem in ((f"{tracker}/nowhere", "no device is registered under key 'nowhere'"),
                            ("127.0.0.1:18179/k", "no RPC tracker answers at 127.0.0.1:18179")):  # fmt: skip
        with pytest.raises(SettingErrors) as caught:
            check_measure("ort-cpu", {"remote": remote}, "darts", SPACE, PROTOCOL, Limits(), samples=1)
        found = [(e.field, e.message[: len(problem)]) for e in caught.value.problems]
        assert found == [(("options", "remote"), problem)]
