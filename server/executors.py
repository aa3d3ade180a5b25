"""Where a job's work runs: the seam between a worker (claim, heartbeat, cancel, requeue) and the compute.

A worker hands its executor the job and the work (a picklable call that runs the
job and records how it ended through the job store); the executor starts it
somewhere and returns a `Run` that the worker watches and may stop. Two live
behind it: `ProcessExecutor`, a process of this machine per job (the default),
and `server.ray_executor`, a Ray task per job. The job store stays the source
of truth either way: the work writes its progress, events and end there itself.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ehdnas.core.errors import UserError
from ehdnas.core.lifeline import die_with
from server.jobs import Job
from server.settings import Settings

RAY_EXTRA = "--executor ray needs the ray extra: pip install 'ehdnas[ray]'"
SPAWN = multiprocessing.get_context("spawn")  # no inherited locks, threads or sockets

Work = Callable[[], None]  # runs one job to its end and records that end in the job store


@dataclass(frozen=True)
class Ending:
    """How a run ended that did not record its end: `lost` work (its machine went) is requeued, the rest failed."""

    reason: str
    lost: bool = False


class Run(Protocol):
    """One job's work, started."""

    note: str  # the job's message until the work reports, when there is something to say (what it waits for)

    def wait(self, timeout_s: float) -> bool:
        """Whether it has ended, after waiting up to `timeout_s`."""
        ...

    def stop(self) -> None:
        """End it now (a cancel, a shutdown, a job no longer this worker's); returns once it has ended."""
        ...

    def ending(self) -> Ending:
        """Why it ended, for a run that ended without recording it (asked only then)."""
        ...


class Executor(Protocol):
    """Starts jobs' work; picklable, since the supervisor hands it to each worker process."""

    where: str  # for the server's start-up line

    def start(self, job: Job, work: Work) -> Run: ...

    def close(self) -> None:
        """Leave (or stop) what `open_executor` joined (or started): the server's, at its end."""
        ...


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _in_child(parent: int, work: Work) -> None:
    die_with(parent)  # the job is no longer its worker's to record
    work()


@dataclass
class _ProcessRun:
    process: Any
    note: str = ""

    def wait(self, timeout_s: float) -> bool:
        self.process.join(timeout_s)
        return not self.process.is_alive()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def ending(self) -> Ending:
        return Ending(f"the job's process died ({describe_exit(self.process.exitcode)})")


@dataclass(frozen=True)
class ProcessExecutor:
    """Each job in a process of its own, started by its worker, that dies with it."""

    where: str = "worker processes"

    def start(self, job: Job, work: Work) -> Run:
        process = SPAWN.Process(target=_in_child, args=(os.getpid(), work), name=f"ehdnas-job-{job.id}")
        process.start()
        return _ProcessRun(process)

    def close(self) -> None:
        pass  # each job's process ends with its job


def open_executor(settings: Settings) -> Executor:
    """The executor `settings` choose, ready for the server's workers; a missing extra is one line."""
    if settings.executor == "local":
        return ProcessExecutor()
    try:
        from server.ray_executor import open_ray
    except ModuleNotFoundError as err:
        if err.name != "ray":
            raise
        raise UserError(RAY_EXTRA) from None
    return open_ray(settings.ray)
