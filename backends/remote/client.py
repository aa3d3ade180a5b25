"""The host side: a tracker asked with bounded waits, devices described, models measured on them.

TVM's own tracker client waits forever for a key with no free device, so the
requests here speak the tracker's protocol on a socket with a deadline: a key
with no device is refused at once, a key whose devices stay busy (or vanish)
past `WAIT_S` is one `UserError`. Each measurement takes a device for itself
(a session: upload, measure, close), so the tracker hands the next one to
whichever device is free, one in flight per device.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from backends.base import Measurement, Runner
from backends.onnx_model import OnnxModel
from backends.protocol import TimingProtocol
from backends.remote.address import RemoteAddress
from ehdnas.core.errors import UserError

CONNECT_S = 5.0  # a tracker that does not answer within this is not there
WAIT_S = 60.0  # how long a request waits for a device of its key to come free


class Tracker:
    """One connection to a TVM RPC tracker, every answer awaited for a bounded time."""

    def __init__(self, address: tuple[str, int], timeout_s: float = CONNECT_S) -> None:
        from tvm.rpc import base

        self.address = address
        where = f"{address[0]}:{address[1]}"
        try:
            self._sock = socket.create_connection(address, timeout=timeout_s)
            self._sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
            magic = struct.unpack("<i", base.recvall(self._sock, 4))[0]
        except OSError as err:
            raise UserError(f"no RPC tracker answers at {where} ({err.strerror or err})") from None
        if magic != base.RPC_TRACKER_MAGIC:
            raise UserError(f"{where} is not a TVM RPC tracker")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _ask(self, message: list[Any], timeout_s: float) -> Any:
        from tvm.rpc import base

        self._sock.settimeout(timeout_s)
        base.sendjson(self._sock, message)
        answer = base.recvjson(self._sock)
        if answer == base.TrackerCode.SUCCESS:
            return None
        if not isinstance(answer, list) or answer[0] != base.TrackerCode.SUCCESS:
            raise UserError(f"the tracker at {self.address[0]}:{self.address[1]} answered {answer!r}")
        return answer[1]

    def keys(self) -> dict[str, dict[str, int]]:
        """Every key with devices or requests: its devices (`total`), how many are `free`, requests `pending`."""
        from tvm.rpc import base

        summary = self._ask([base.TrackerCode.SUMMARY], CONNECT_S)
        totals: dict[str, int] = {}
        for server in summary["server_info"]:
            key = server["key"].partition(":")[2]  # "server:KEY"
            totals[key] = totals.get(key, 0) + 1
        queues = summary["queue_info"]
        return {
            key: {"total": totals.get(key, 0), "free": queues.get(key, {}).get("free", 0),
                  "pending": queues.get(key, {}).get("pending", 0)}
            for key in sorted(set(totals) | set(queues))
        }  # fmt: skip

    def request(self, key: str, wait_s: float = WAIT_S) -> Any:
        """A session on a free device of `key`: at once, within `wait_s` if all are busy, else a `UserError`."""
        from tvm import rpc
        from tvm.rpc import base

        where = f"{self.address[0]}:{self.address[1]}"
        if missing := _missing_key(self.keys(), key, where):
            raise UserError(missing)
        try:
            url, port, match = self._ask([base.TrackerCode.REQUEST, key, "", 1], wait_s)
        except TimeoutError:
            self.close()  # the tracker forgets a closed client's pending request
            raise UserError(f"no device under key {key!r} at {where} came free within {wait_s:g} s") from None
        except OSError as err:
            raise UserError(f"the tracker at {where} went away ({err.strerror or err})") from None
        return rpc.connect(url, port, match)


@contextmanager
def device_session(address: RemoteAddress, wait_s: float = WAIT_S) -> Iterator[Any]:
    """A session on one free device of the address's key, held for the block; a lost device is a `UserError`."""
    with Tracker(address.tracker) as tracker:
        session = tracker.request(address.key, wait_s)
    try:
        yield session
    except (RuntimeError, OSError) as err:  # TVM's errors derive from RuntimeError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"the device under {address} was lost mid-measurement ({reason})") from None
    finally:
        del session  # the last reference: the connection closes and the device is free again


def _call(session: Any, name: str, *args: Any) -> dict[str, Any]:
    """A device function's JSON answer; a device not started by `ehdnas device` has none."""
    try:
        function = session.get_function(name)
    except (RuntimeError, AttributeError):
        raise UserError(f"the device does not serve {name} (start it with `ehdnas device`)") from None
    answer = json.loads(function(*args))
    if "error" in answer:
        raise UserError(answer["error"])
    return answer


_REPORTS: dict[RemoteAddress, dict[str, Any]] = {}


def device_report(address: RemoteAddress) -> dict[str, Any]:
    """What the devices of a key report (asked once per process): runtimes, fingerprints, LLVM target."""
    if address not in _REPORTS:
        with device_session(address) as session:
            _REPORTS[address] = _call(session, "ehdnas.describe")
    return _REPORTS[address]


def device_runtime(runner: Runner) -> dict[str, Any]:
    """The runner's runtime on its device: available there, with the host fingerprint its measurements carry."""
    from backends.remote.device import DEVICE_TARGETS

    if runner.name not in DEVICE_TARGETS:
        raise UserError(f"target {runner.name!r} cannot measure on a remote device; {', '.join(DEVICE_TARGETS)} can")
    address = runner.remote
    runtime = device_report(address)["runtimes"][runner.name]
    if not runtime["available"]:
        raise UserError(f"target {runner.name!r} is not available on the devices under {address}: {runtime['reason']}")
    return runtime


# The host's builds for devices, one at a time: torch's exporter and converter are not made for threads, and
# tuning writes one shared database (a farm's threads build here while the devices time).
_BUILDING = threading.Lock()


def measure_remote(runner: Runner, model: OnnxModel, protocol: TimingProtocol) -> Measurement:
    """`model` measured on a free device of the runner's key, by the runner's own code there.

    What the target builds on the host (a TVM library, a `.tflite` file) is
    built first and uploaded beside the ONNX file. The measurement carries the
    device's fingerprint with the host's build libraries, and the build's
    details; its `wall_s` is the host's, upload included, the device's own in
    `details["device_wall_s"]`.
    """
    address = runner.remote
    device_runtime(runner)
    with _BUILDING:
        build = runner.device_build(model, device_report(address))
    start = time.perf_counter()
    artifact = build.path if build else None
    request = {
        "target": runner.name,
        "config": runner.device_settings(),
        "protocol": protocol.to_dict(),
        "model": model.path.name,
        "inputs": {spec.name: list(spec.shape) for spec in model.inputs},
        "artifact": artifact.name if artifact else None,
    }
    with device_session(address) as session:
        session.upload(str(model.path), target=model.path.name)
        if artifact is not None:
            session.upload(str(artifact), target=artifact.name)
        answer = _call(session, "ehdnas.measure", json.dumps(request))
    measurement = Measurement.from_dict(answer)
    built = build.details if build else {}
    details = {**built, **measurement.details, "device_wall_s": measurement.wall_s, "remote": str(address)}
    return dataclasses.replace(
        measurement, target_config=runner.config_dict(), host=runner.host(), model=model.describe(),
        wall_s=time.perf_counter() - start, details=details,
    )  # fmt: skip


def device_count(address: RemoteAddress) -> int:
    """How many devices the key has, busy ones too: one just done re-registers as free a moment later, and a
    request waits for it (at least 1: a missing key is refused by the request)."""
    with Tracker(address.tracker) as tracker:
        return max(1, tracker.keys().get(address.key, {}).get("total", 0))


def reachable(address: RemoteAddress) -> str | None:
    """Why measuring at `address` cannot start (no tracker answers, no device has the key), or None."""
    try:
        with Tracker(address.tracker) as tracker:
            keys = tracker.keys()
    except UserError as err:
        return str(err)
    return _missing_key(keys, address.key, f"{address.host}:{address.port}")


def _missing_key(keys: dict[str, dict[str, int]], key: str, where: str) -> str | None:
    """Why `key` has no device at the tracker `where` (the keys that do), or None when it has one."""
    if keys.get(key, {}).get("total"):
        return None
    listed = ", ".join(k for k, v in keys.items() if v["total"]) or "none"
    return f"no device is registered under key {key!r} at the tracker {where} (keys with devices: {listed})"


def list_devices(address: tuple[str, int], wait_s: float = CONNECT_S) -> list[dict[str, Any]]:
    """Every key at the tracker: device counts, and the report of each free device (busy ones are not asked)."""
    with Tracker(address) as tracker:
        keys = tracker.keys()
    rows = []
    for key, counts in keys.items():
        reports, held = [], []
        with closing(Tracker(address)) as tracker:
            for _ in range(counts["free"]):  # each held session makes the next request reach another device
                try:
                    held.append(session := tracker.request(key, wait_s))
                    reports.append(_call(session, "ehdnas.describe"))
                except UserError as err:
                    reports.append({"error": str(err)})
                    break
        del held
        rows.append({"key": key, **counts, "busy": counts["total"] - counts["free"], "devices": reports})
    return rows
