"""Workers: processes that claim jobs from the database and see each through on their executor.

Three levels, each able to stop the one below:
- the supervisor (a thread of `ehdnas serve`) starts the workers, restarts one
  that died and gives its job back to the queue, and requeues jobs whose
  heartbeat stopped (a worker of an earlier server that was killed);
- a worker claims a job, has its executor (`server.executors`) start the work,
  and while it runs writes the heartbeat every half second, and stops it at
  once on cancel or shutdown;
- the work (`server.execute`, in a process of its own or a Ray task) runs at a
  lower CPU priority, so the web process answers quickly while a search uses
  every core, and records its progress, events and end in the job store.

A stopped job loses nothing that was finished: measurements are committed one
by one and a search resumes from its checkpoint when the job runs again.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError
from server.executors import SPAWN, Executor, ProcessExecutor, describe_exit
from server.jobs import Job, JobStore

POLL_S = 0.5  # how often a worker looks for work, heartbeats, and checks for a cancel
JOB_NICENESS = 10  # jobs yield the CPU to the web process
PROGRESS_EVERY_S = 0.5  # progress writes are at most this frequent (the last one always lands)
log = logging.getLogger("ehdnas.server")


@dataclass(frozen=True)
class WorkerSettings:
    db_url: str
    jobs_dir: Path
    stale_after_s: float = 10.0  # a running job without a heartbeat for this long has lost its worker
    executor: Executor = field(default_factory=ProcessExecutor)


def worker_name(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


class _Reporter:
    """Progress and events of one job, written by its process.

    Progress is written at most every PROGRESS_EVERY_S; one that comes sooner waits, and a timer writes the
    newest when that time is up (or the next call past it does). So the message shown is never more than
    PROGRESS_EVERY_S behind, even when the work after it reports nothing for minutes (a search setting up,
    a network exported and measured), and the last one (fraction 1) lands at once.
    """

    def __init__(self, jobs: JobStore, job_id: int, worker: str) -> None:
        self.jobs, self.job_id, self.worker, self.last = jobs, job_id, worker, -PROGRESS_EVERY_S
        self.waiting: tuple[float, str] | None = None
        self.timer: threading.Timer | None = None
        self.lock = threading.Lock()  # the job's thread and the timer's: one write at a time, in order

    def progress(self, fraction: float, message: str) -> None:
        with self.lock:
            self.waiting = (fraction, message)
            self._write(fraction >= 1.0)

    def event(self, record: dict[str, Any]) -> None:
        self.jobs.event(self.job_id, record)
        with self.lock:
            self._write()

    def _due(self) -> None:
        with self.lock:
            self.timer = None
            self._write()

    def _write(self, now: bool = False) -> None:
        """Write what waits if its time has come, else have the timer do it then; called holding the lock."""
        if self.waiting is None:
            return
        wait = self.last + PROGRESS_EVERY_S - time.monotonic()
        if now or wait <= 0:
            self.last = time.monotonic()
            self.jobs.report(self.job_id, self.worker, *self.waiting)
            self.waiting = None
        elif self.timer is None:
            self.timer = threading.Timer(wait, self._due)
            self.timer.daemon = True  # a job that ends leaves no thread behind; its end writes its own row
            self.timer.start()


def _when_orphaned(parent: int, action: Callable[[], None]) -> None:
    """Call `action` once `parent` is gone: a worker without its server stops in order, giving its job back."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        action()

    threading.Thread(target=watch, daemon=True).start()


def _run_recorded(db_url: str, job_id: int, worker: str, folder: Path) -> None:
    """The job's work, wherever its executor runs it: run it and record how it ended."""
    from server.execute import run_job

    os.nice(JOB_NICENESS)
    jobs = JobStore(db_url)
    job = jobs.get(job_id)
    assert job is not None
    reporter = _Reporter(jobs, job_id, worker)
    try:
        result = run_job(job.kind, job.spec, folder, db_url, reporter.progress, reporter.event)
    except UserError as err:
        jobs.fail(job_id, worker, str(err))
    except Exception as err:  # a bug: keep the traceback as an artifact, say so in one line
        (folder / "error.txt").write_text(traceback.format_exc())
        jobs.fail(job_id, worker, f"internal error: {type(err).__name__}: {err} (traceback in artifact error.txt)")
    else:
        jobs.succeed(job_id, worker, result)


def _see_through(
    job: Job, jobs: JobStore, name: str, folder: Path, stopping: threading.Event, executor: Executor
) -> None:
    """Run `job` on `executor`; heartbeat, and stop it on cancel or shutdown."""
    run = executor.start(job, functools.partial(_run_recorded, jobs.url, job.id, name, folder))
    if run.note:
        jobs.report(job.id, name, job.progress, run.note)
    while not run.wait(POLL_S):
        if not jobs.heartbeat(job.id, name):  # no longer this worker's job (e.g. requeued while it stalled)
            run.stop()
        elif (current := jobs.get(job.id)) is not None and current.cancel_requested:
            run.stop()
            jobs.cancelled(job.id, name)
        elif stopping.is_set():
            run.stop()
            jobs.release(job.id, name, "the server stopped", counted=False)
    current = jobs.get(job.id)
    if current is not None and current.status == "running" and current.worker == name:
        ending = run.ending()
        if ending.lost:
            jobs.release(job.id, name, ending.reason)
        else:
            jobs.fail(job.id, name, ending.reason)


def run_worker(settings: WorkerSettings) -> None:
    """A worker process's loop: until SIGTERM, claim a job and see it to its end; one log line each way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to `serve`, which stops the workers in order
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    _when_orphaned(os.getppid(), stopping.set)  # `serve` was killed: stop too, giving the job back
    name = worker_name(os.getpid())
    jobs = JobStore(settings.db_url)
    while not stopping.is_set():
        job = jobs.claim(name)
        if job is None:
            stopping.wait(POLL_S)
            continue
        print(f"job {job.id} ({job.kind}): started, attempt {job.attempts}", file=sys.stderr, flush=True)
        started = time.monotonic()
        folder = settings.jobs_dir / str(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        _see_through(job, jobs, name, folder, stopping, settings.executor)
        end = jobs.get(job.id)
        assert end is not None
        print(f"job {job.id} ({job.kind}): {end.status} after {time.monotonic() - started:.1f} s"
              + (f": {end.error}" if end.error else ""), file=sys.stderr, flush=True)  # fmt: skip


class Supervisor:
    """Keeps `count` workers running and no job stranded; a thread of the server process."""

    def __init__(self, settings: WorkerSettings, count: int) -> None:
        self.settings, self.count = settings, count
        self.jobs = JobStore(settings.db_url)
        self.workers: list[Any] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="ehdnas-supervisor", daemon=True)

    def _start_worker(self) -> Any:
        process = SPAWN.Process(target=run_worker, args=(self.settings,), name="ehdnas-worker")
        process.start()
        return process

    def start(self) -> None:
        self.jobs.requeue_stale(self.settings.stale_after_s)
        self.workers = [self._start_worker() for _ in range(self.count)]
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                self._check()
            except Exception:  # e.g. the database briefly unreachable: say so, keep watching
                log.exception("supervisor: checking the workers failed; trying again in a second")

    def _check(self) -> None:
        for i, process in enumerate(self.workers):
            if process.is_alive() or self.stopping.is_set():
                continue
            reason = f"its worker process died ({describe_exit(process.exitcode)})"
            for job_id in self.jobs.running_on(worker_name(process.pid)):
                self.jobs.release(job_id, worker_name(process.pid), reason)
            self.workers[i] = self._start_worker()
        self.jobs.requeue_stale(self.settings.stale_after_s)

    def stop(self) -> None:
        """Stop every worker; their running jobs go back to the queue for the next start."""
        self.stopping.set()
        for process in self.workers:
            process.terminate()
        for process in self.workers:
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join()
