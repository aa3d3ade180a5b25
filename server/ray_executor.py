"""Jobs as Ray tasks: `ehdnas serve --executor ray [--ray-address ADDR]`.

The workers stay this server's processes (claim, heartbeat, cancel, requeue:
`server.worker`); each joins the cluster as a Ray driver and runs each job's
work as one Ray task that reserves what the job needs (`needs`): CPUs, GPUs for
a search when the operator gives searches some, and one unit of the custom
resource `target:<name>` for a job that times networks on a target, so it
runs on a node that holds the device, one job per unit at a time. The task
writes its progress, events and end to the job store, as a local job's process
does. A task whose node died is requeued like a job whose worker died; a
cancel, a shutdown or a job no longer the worker's kills the task. Ray retries
nothing itself: the job store decides what runs again.

Without an address the server starts a Ray of its own on this machine, whose
node holds one unit of every target's resource; it stops with the server.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import NodeDiedError, RayError, RayTaskError

from ehdnas.core.errors import UserError
from server.executors import Ending, Run, Work
from server.jobs import Job
from server.settings import RaySettings

CONNECT_WAIT_S = 60.0  # for a cluster to answer (Ray itself retries for many minutes)
STOP_WAIT_S = 15.0  # for a killed task to be reported ended
PROBE_WAIT_S = 5.0  # for a TCP connection to a given address: nothing listening is said at once
OWN_OBJECT_STORE_BYTES = 128 * 2**20  # Ray's minimum is 75 MiB; the tasks return nothing, results go to the store
MEASURING_KINDS = frozenset({"benchmark", "collect", "search"})  # jobs that time networks on their target


def target_resource(target: str) -> str:
    """The custom resource of a node that holds `target`'s device (`ray start --resources '{"target:NAME": 1}'`)."""
    return f"target:{target}"


def needs(job: Job, settings: RaySettings) -> dict[str, float]:
    """What `job` reserves, in Ray's resource names."""
    reserved = {"CPU": settings.cpus}
    if job.kind == "search" and settings.search_gpus:
        reserved["GPU"] = settings.search_gpus
    if job.kind in MEASURING_KINDS:
        reserved[target_resource(job.spec["target"])] = 1.0
    return reserved


@ray.remote(max_retries=0, max_calls=1)  # a fresh process per job, as the local executor gives it
def _job_task(work: Work, sees_gpus: bool) -> None:
    if not sees_gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # Ray leaves every GPU visible to a task that reserves none
    work()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


@dataclass
class _RayRun:
    ref: Any  # the task's ObjectRef
    note: str

    def wait(self, timeout_s: float) -> bool:
        ready, _ = ray.wait([self.ref], timeout=timeout_s)
        return bool(ready)

    def stop(self) -> None:
        ray.cancel(self.ref, force=True)  # kills the task's process, as a local job's is killed
        ray.wait([self.ref], timeout=STOP_WAIT_S)

    def ending(self) -> Ending:
        try:
            ray.get(self.ref, timeout=0)
        except NodeDiedError:
            return Ending("its Ray node died", lost=True)
        except RayTaskError as err:  # the work raised while recording its end, e.g. the store unreachable
            return Ending(f"the job's Ray task failed: {_first_line(err.cause or err)}")
        except RayError as err:  # its process died (killed, out of memory), or the cluster went
            return Ending(f"the job's Ray task died: {type(err).__name__}: {_first_line(err)}")
        return Ending("the job's Ray task ended without recording its end")


def _init(**arguments: Any) -> None:
    """`ray.init` in the main thread, keeping its SIGTERM handler (Ray sets one that exits at once; the worker's
    stops its job first, the server's stops in order)."""
    kept = signal.getsignal(signal.SIGTERM)
    ray.init(logging_level=logging.WARNING, **arguments)
    signal.signal(signal.SIGTERM, kept)


@dataclass(frozen=True)
class RayExecutor:
    """Each job a Ray task on the cluster at `address`; handed to every worker process, which joins it."""

    address: str
    settings: RaySettings
    where: str

    def start(self, job: Job, work: Work) -> Run:
        if not ray.is_initialized():  # a worker process joins on its first job
            _init(address=self.address)
        reserved = needs(job, self.settings)
        totals = ray.cluster_resources()
        missing = [f"{amount:g} {name}" for name, amount in reserved.items() if totals.get(name, 0.0) < amount]
        custom = {name: amount for name, amount in reserved.items() if name not in ("CPU", "GPU")}
        ref = _job_task.options(
            num_cpus=reserved["CPU"], num_gpus=reserved.get("GPU", 0), resources=custom, name=f"ehdnas-job-{job.id}"
        ).remote(work, "GPU" in reserved)
        return _RayRun(ref, f"waiting for a Ray node with {', '.join(missing)}" if missing else "")

    def close(self) -> None:
        ray.shutdown()  # a Ray of the server's own stops with it


def _probe(address: str) -> None:
    """Refuse an address nothing listens on at once (Ray itself retries for minutes)."""
    if address == "auto":
        return
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or "://" in host:
        raise UserError(f"Ray address {address!r}: expected HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_WAIT_S).close()
    except OSError as err:
        raise UserError(f"Ray address {address!r}: cannot connect: {err.strerror or err}") from None


def _within(seconds: float, call: Callable[[], None], what: str) -> None:
    """`call` (which may block for minutes) within `seconds`, else a one-line `UserError`; its error in one line."""
    failed: list[BaseException] = []

    def attempt() -> None:
        try:
            call()
        except BaseException as err:  # SystemExit too: Ray exits on some bad addresses
            failed.append(err)

    thread = threading.Thread(target=attempt, name="ehdnas-ray-connect", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise UserError(f"{what}: no answer within {seconds:g} s")
    if failed:
        raise UserError(f"{what}: {_first_line(failed[0])}")


def _own_ray() -> dict[str, Any]:
    """ray.init's arguments for a Ray of the server's own, with a token that only its processes know."""
    from backends.base import TARGETS

    # Ray runs whatever its clients send, so a new local Ray takes a token (unless RAY_AUTH_MODE=disabled): this one,
    # in the environment that the workers inherit, rather than one Ray would write into ~/.ray.
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    return {
        "address": "local",  # never a cluster that a stale `ray_current_cluster` file names
        "include_dashboard": False,
        "object_store_memory": OWN_OBJECT_STORE_BYTES,
        "resources": {target_resource(name): 1.0 for name in TARGETS.names()},
    }


def open_ray(settings: RaySettings) -> RayExecutor:
    """Join the cluster at `settings.address`, or start a Ray of the server's own (`RayExecutor.close` ends it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the server sends nothing anywhere unasked
    if settings.address is None:
        _init(**_own_ray())  # not in a thread: Ray's processes die with the thread that started them (fate sharing)
        joined = ray.get_runtime_context().gcs_address
        return RayExecutor(joined, settings, f"a Ray of its own ({joined})")
    _probe(settings.address)
    connect = lambda: ray.init(address=settings.address, logging_level=logging.WARNING)  # noqa: E731
    _within(CONNECT_WAIT_S, connect, f"Ray address {settings.address!r}")
    return RayExecutor(settings.address, settings, f"Ray at {settings.address}")
