"""Measuring on remote devices: a real tracker and real device servers on loopback, each in a process of its own.

The devices are started as `ehdnas device` with torch blocked from import, so
every remote measurement here also shows the device side runs without it. A
collection is made wall-clock bound (not bound by this machine's 2 cores) by
the devices' test setting, a sleep before each measurement: 3 s, longer than
the host's export of a network here (exports run one at a time; at 1 s they
bounded the collection and 2 devices took as long as 1).
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

from backends import LatencyStats, OnnxModel, TimingProtocol, get_target, litert_conversion
from backends.remote.client import Tracker, device_report, reachable
from backends.remote.device import TEST_DELAY_ENV
from backends.remote.servers import PORTS_TRIED
from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import export_arch, export_model
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.measure import collect
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from tests.conftest import ROOT
from tests.methods.test_requests import PROTOCOL

TRACKER_PORT = 19541  # this suite's ports: 19540-19599
DEVICE_PORTS = (19550, 19570)
NO_TRACKER = "127.0.0.1:19599"
NO_TORCH_CLI = "import sys; sys.modules['torch'] = None; from ehdnas.cli import main; main()"
QUICK = TimingProtocol(warmup=1, min_repeats=5, min_time_s=0.0, max_spread=10.0)  # a noisy one is not taken again
SPACE = {"layers": 3, "channels": 4, "input_size": 8}


def _start(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """`ehdnas ARGS` without torch, in a session of its own (so killing it takes what it forked along), its
    stderr (a device's session log) in `log`."""
    with open(log or os.devnull, "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", NO_TORCH_CLI, *args], cwd=ROOT, env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )  # fmt: skip


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _device_ports(key: str) -> set[int]:
    """The ports of the devices registered under `key`, free or busy."""
    from tvm import rpc

    try:
        servers = rpc.connect_tracker("127.0.0.1", TRACKER_PORT).summary()["server_info"]
    except (RuntimeError, OSError):
        return set()
    return {server["addr"][1] for server in servers if server["key"] == f"server:{key}"}


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
    """Start a device under a key: `devices(key, port_index, delay_s, log)`; all are killed after the test."""
    started: list[subprocess.Popen] = []

    def start(key: str, index: int = 0, delay_s: float = 0.0, log: Path | None = None) -> subprocess.Popen:
        env = {TEST_DELAY_ENV: str(delay_s)} if delay_s else {}
        started.append(_start("device", "--tracker", tracker, "--key", key, "--port", str(DEVICE_PORTS[index]),
                              env=env, log=log))  # fmt: skip
        # Registered at its own port: a count could be met by another device of the key coming free again.
        ports = range(DEVICE_PORTS[index], DEVICE_PORTS[index] + PORTS_TRIED)
        _wait_for(lambda: not _device_ports(key).isdisjoint(ports), f"device {index} under {key!r}")
        return started[-1]

    yield start
    for process in started:
        _kill(process)


@pytest.fixture(scope="module")
def darts_model(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    """A tiny sampled DARTS network with the torch module it was exported from (LiteRT converts that)."""
    space = get_space("darts", SPACE)
    return export_arch(space, space.sample(np.random.default_rng(0)), tmp_path_factory.mktemp("net") / "net.onnx")


@pytest.fixture(scope="module")
def darts_net(darts_model: OnnxModel) -> Path:
    return darts_model.path


def _close(remote: LatencyStats, local: LatencyStats) -> bool:
    """Within the protocol's noise: the medians differ by less than a quarter or either's spread (the networks run
    in 30-100 us)."""
    spread = max(remote.p90 - remote.p10, local.p90 - local.p10)
    return abs(remote.median - local.median) <= max(0.25 * local.median, spread)


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
    # On the CPU clock: on 2 cores shared with the suite, the wall clock moved a 0.1 ms network's median by 60%.
    # Twice the rounds: this host has slow spells of a second or two that stretch even CPU time (the hypervisor's;
    # seen once in the suite: 0.11 ms remote, 0.07 ms local), and the two measurements are taken at different times.
    protocol = TimingProtocol(warmup=20, min_repeats=50, min_time_s=0.5, clock="cpu", rounds=10)
    local = get_target("ort-cpu").measure(darts_net, protocol)
    runner = get_target("ort-cpu", [f"remote={tracker}/cpu-a"])
    remote = runner.measure(darts_net, protocol)
    assert remote.model == local.model
    assert remote.details["remote"] == f"{tracker}/cpu-a"
    assert _close(remote.latency_ms, local.latency_ms), (remote.latency_ms, local.latency_ms)
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
    assert reachable(get_target("ort-cpu", {"remote": f"{NO_TRACKER}/k"}).remote).startswith(
        f"no RPC tracker answers at {NO_TRACKER}"
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
    delay_s = 3.0  # longer than the host's export of a network here
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
    with pytest.raises(UserError, match="target 'systolic-edge32' cannot measure on a remote device; ort-cpu, "):
        get_target("systolic-edge32", {"remote": f"{NO_TRACKER}/k"}).measure(darts_net, QUICK)


def test_a_job_spec_with_a_remote_is_checked_at_submission(tracker: str) -> None:
    from ehdnas.core.limits import Limits
    from ehdnas.methods.requests import check_measure
    from ehdnas.methods.resolve import SettingErrors

    for remote, problem in ((f"{tracker}/nowhere", "no device is registered under key 'nowhere'"),
                            (f"{NO_TRACKER}/k", f"no RPC tracker answers at {NO_TRACKER}")):  # fmt: skip
        with pytest.raises(SettingErrors) as caught:
            check_measure("ort-cpu", {"remote": remote}, "darts", SPACE, PROTOCOL, Limits(), samples=1)
        found = [(e.field, e.message[: len(problem)]) for e in caught.value.problems]
        assert found == [(("options", "remote"), problem)]


@pytest.mark.slow
def test_tflite_cpu_converts_on_the_host_and_times_the_file_on_the_device_as_locally(
    devices: Callable[..., subprocess.Popen], tracker: str, darts_model: OnnxModel
) -> None:
    devices("lite-a")  # torch blocked: the device never converts
    protocol = TimingProtocol(warmup=20, min_repeats=50, min_time_s=0.5, clock="cpu")  # see the ort-cpu test
    for precision in ("float32", "int8"):
        settings = {"precision": precision, "calibration_samples": 16}
        local = get_target("tflite-cpu", settings).measure(darts_model, protocol)
        runner = get_target("tflite-cpu", {**settings, "remote": f"{tracker}/lite-a"})
        remote = runner.measure(darts_model, protocol)
        assert remote.details["built_on_host"] and remote.details["precision"] == precision
        assert remote.details["ops"] == local.details["ops"]  # the host's conversion, the same file
        assert _close(remote.latency_ms, local.latency_ms), (precision, remote.latency_ms, local.latency_ms)
        assert remote.target_config == local.target_config == runner.config_dict()
        # The device's fingerprint, with the host's converters: they made the file it timed.
        device_host = device_report(runner.remote)["runtimes"]["tflite-cpu"]["host"]
        assert remote.host == runner.host() == MeasurementKey.of(runner, get_space("darts", SPACE)).host
        assert remote.host["libraries"] == {**device_host["libraries"], **litert_conversion.converter_versions()}


@pytest.mark.slow
def test_edgetpu_on_a_device_without_its_delegate_is_refused_in_one_line_before_anything_is_built(
    devices: Callable[..., subprocess.Popen], tracker: str, darts_model: OnnxModel
) -> None:
    devices("coral-a")
    runtime = device_report(get_target("edgetpu", {"remote": f"{tracker}/coral-a"}).remote)["runtimes"]["edgetpu"]
    assert not runtime["available"] and "libedgetpu.so.1" in runtime["reason"]
    assert "edgetpu_compiler" not in runtime["reason"]  # the compiler is the host's business, not the device's
    with pytest.raises(UserError) as caught:
        get_target("edgetpu", {"remote": f"{tracker}/coral-a"}).measure(darts_model, QUICK)
    line = str(caught.value)
    assert line.startswith(f"target 'edgetpu' is not available on the devices under {tracker}/coral-a: the Edge TPU")
    assert "\n" not in line


@pytest.mark.slow
def test_tuning_a_remote_tvm_llvm_times_its_candidates_on_the_device_into_the_device_kinds_database(
    devices: Callable[..., subprocess.Popen], tracker: str, tmp_path: Path
) -> None:
    import torch

    log = tmp_path / "device.log"
    devices("tune-a", log=log)
    # Two kernels (a convolution, a matmul): 8 trials tune in about a minute here; the tiny DARTS net has 36.
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 8 * 8, 10))  # fmt: skip
    model = export_model(conv, (1, 3, 8, 8), tmp_path / "conv.onnx")
    runner = get_target("tvm-llvm", {"mode": "tuned", "trials": 8, "remote": f"{tracker}/tune-a"})
    measured = runner.measure(model, QUICK)
    spent = measured.details["trials_spent"]
    assert spent >= 1 and measured.details["kernels_tuned_now"] >= 1 and measured.latency_ms.median > 0
    # The device's own database: neither this machine's nor shared with it (here the two CPUs are one).
    local_dir = get_target("tvm-llvm").tuning_dir(runner.target(device_report(runner.remote)["llvm"]))
    tuned_dir = Path(measured.details["tuning_dir"])
    assert tuned_dir != local_dir and (tuned_dir / "database_tuning_record.json").stat().st_size > 0
    # Every candidate ran on the device: a session each, beside the measurement's report and timing.
    sessions = log.read_text().count("connected from")
    assert sessions >= spent + 1, log.read_text()[-2000:]
