"""The job queue: two tables in the measurement store's database, and every state change as one statement.

A job moves queued -> running -> succeeded | failed | cancelled. Each change is
a single conditional UPDATE (compare and set on the status and the worker), so
two workers cannot claim one job, a late worker cannot overwrite a cancelled
one, and a restart finds every job as the last committed statement left it.
A running job's worker writes a heartbeat; a job whose heartbeat stops is
requeued (or failed after too many attempts) by `requeue_stale`.
The tables are created under the store's schema lock, so processes opening one
new database at once (a server's workers, on SQLite or PostgreSQL) do not race.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, func, insert, literal, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ehdnas.pipeline.store import make_engine, schema_lock

MAX_ATTEMPTS = 3  # a job whose worker died this many times is failed, not requeued again


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[str] = mapped_column(Text)  # JSON, as validated at submission
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")  # what the job is doing now
    created_at: Mapped[float] = mapped_column(Float)  # Unix seconds
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON


class EventRow(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # increasing: clients poll with ?after=<id>
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    data: Mapped[str] = mapped_column(Text)  # JSON


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row."""

    id: int
    kind: str
    spec: dict[str, Any]
    status: str
    progress: float
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker: str | None
    attempts: int
    cancel_requested: bool
    error: str | None
    result: Any

    @classmethod
    def from_row(cls, row: Any) -> Job:
        values = dict(row._mapping)
        values["spec"] = json.loads(values["spec"])
        values["result"] = None if values["result"] is None else json.loads(values["result"])
        return cls(**values)


def _update(conn: Connection, job_id: int, where: tuple[Any, ...], values: dict[str, Any]) -> bool:
    """A conditional UPDATE of one job; whether it changed the row."""
    return conn.execute(update(JobRow).where(JobRow.id == job_id, *where).values(**values)).rowcount == 1


def _insert_event(conn: Connection, job_id: int, data: dict[str, Any]) -> None:
    conn.execute(insert(EventRow).values(job_id=job_id, at=time.time(), data=json.dumps(data)))


class JobStore:
    """Jobs and their events in the database at `url` (the same one as the measurements)."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        with schema_lock(self.engine) as connection:
            Base.metadata.create_all(connection)

    def _set(self, job_id: int, *where: Any, **values: Any) -> bool:
        """One conditional UPDATE in its own transaction; whether it changed the row."""
        with self.engine.begin() as conn:
            return _update(conn, job_id, where, values)

    def submit(self, kind: str, spec: dict[str, Any]) -> Job:
        with self.engine.begin() as conn:
            job_id = conn.execute(
                insert(JobRow).values(
                    kind=kind,
                    spec=json.dumps(spec),
                    status="queued",
                    progress=0.0,
                    message="queued",
                    created_at=time.time(),
                    attempts=0,
                    cancel_requested=False,
                )  # fmt: skip
            ).inserted_primary_key[0]
        self.event(job_id, {"stage": "queued"})
        return self.get(job_id)  # type: ignore[return-value]

    def get(self, job_id: int) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(JobRow.__table__).where(JobRow.id == job_id)).first()
        return Job.from_row(row) if row else None

    def _filtered(self, query: Any, status: str | None, kind: str | None) -> Any:
        if status:
            query = query.where(JobRow.status == status)
        return query.where(JobRow.kind == kind) if kind else query

    def list(
        self, status: str | None = None, kind: str | None = None, limit: int = 100, offset: int = 0,
        results: bool = False,
    ) -> list[Job]:  # fmt: skip
        """Jobs, newest first; their results (which may be large) only when asked for."""
        columns = [c if results or c.name != "result" else literal(None).label("result") for c in JobRow.__table__.c]
        query = self._filtered(select(*columns), status, kind).order_by(JobRow.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [Job.from_row(row) for row in conn.execute(query)]

    def count(self, status: str | None = None, kind: str | None = None) -> int:
        with self.engine.connect() as conn:
            return conn.execute(self._filtered(select(func.count()).select_from(JobRow), status, kind)).scalar_one()

    def event(self, job_id: int, data: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            _insert_event(conn, job_id, data)

    def events(self, job_id: int, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        query = (
            select(EventRow.id, EventRow.at, EventRow.data)
            .where(EventRow.job_id == job_id, EventRow.id > after)
            .order_by(EventRow.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [{"id": i, "at": at, "data": json.loads(data)} for i, at, data in conn.execute(query)]

    # The worker's side.

    def claim(self, worker: str) -> Job | None:
        """Take the oldest queued job for `worker`, or None; safe against other workers doing the same."""
        while True:
            with self.engine.connect() as conn:  # a read of its own: SQLite upgrades no stale snapshot below
                job_id = conn.execute(
                    select(JobRow.id).where(JobRow.status == "queued").order_by(JobRow.id).limit(1)
                ).scalar()
            if job_id is None:
                return None
            now = time.time()
            claimed = self._set(
                job_id, JobRow.status == "queued",
                status="running", worker=worker, started_at=now, heartbeat_at=now, attempts=JobRow.attempts + 1,
                message="started",
            )  # fmt: skip
            if claimed:
                job = self.get(job_id)
                assert job is not None
                self.event(job_id, {"stage": "started", "worker": worker, "attempt": job.attempts})
                return job

    def _mine(self, worker: str) -> tuple[Any, Any]:
        return JobRow.status == "running", JobRow.worker == worker

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Record that `worker` still runs the job; False once the job is no longer its to run."""
        return self._set(job_id, *self._mine(worker), heartbeat_at=time.time())

    def report(self, job_id: int, worker: str, progress: float, message: str) -> bool:
        return self._set(job_id, *self._mine(worker), progress=min(max(progress, 0.0), 1.0), message=message[:500])

    def _transition(self, job_id: int, where: tuple[Any, ...], event: dict[str, Any], **values: Any) -> bool:
        """A conditional state change and, if it happened, its event, in one transaction: a client that sees a job
        finished finds its last event too."""
        with self.engine.begin() as conn:
            done = _update(conn, job_id, where, values)
            if done:
                _insert_event(conn, job_id, event)
        return done

    def succeed(self, job_id: int, worker: str, result: Any) -> bool:
        return self._transition(
            job_id, self._mine(worker), {"stage": "succeeded"},
            status="succeeded", progress=1.0, message="done", result=json.dumps(result), finished_at=time.time(),
        )  # fmt: skip

    def fail(self, job_id: int, worker: str, error: str) -> bool:
        return self._transition(
            job_id, self._mine(worker), {"stage": "failed", "error": error},
            status="failed", message="failed", error=error, finished_at=time.time(),
        )  # fmt: skip

    def request_cancel(self, job_id: int) -> str | None:
        """Cancel a queued job at once, or ask a running one's worker to stop it; the status after, or None."""
        if self._transition(job_id, (JobRow.status == "queued",), {"stage": "cancelled"},
                            status="cancelled", message="cancelled", finished_at=time.time()):  # fmt: skip
            return "cancelled"
        self._set(job_id, JobRow.status == "running", cancel_requested=True, message="cancelling")
        job = self.get(job_id)
        return job.status if job else None

    def cancelled(self, job_id: int, worker: str) -> bool:
        """The worker stopped the job on request."""
        return self._transition(
            job_id, self._mine(worker), {"stage": "cancelled"},
            status="cancelled", message="cancelled", finished_at=time.time(),
        )  # fmt: skip

    def release(self, job_id: int, worker: str, reason: str, counted: bool = True) -> str | None:
        """Give a running job back to the queue (or fail it after `MAX_ATTEMPTS`); its new status."""
        job = self.get(job_id)
        if job is None or job.status != "running" or job.worker != worker:
            return None
        attempts = job.attempts if counted else job.attempts - 1
        if job.cancel_requested:
            self.cancelled(job_id, worker)
            return "cancelled"
        if attempts >= MAX_ATTEMPTS:
            self.fail(job_id, worker, f"{reason}; given up after {attempts} attempts")
            return "failed"
        requeued = self._transition(
            job_id, self._mine(worker), {"stage": "requeued", "reason": reason},
            status="queued", worker=None, heartbeat_at=None, attempts=attempts, message=f"requeued: {reason}",
        )  # fmt: skip
        return "queued" if requeued else None

    def requeue_stale(self, stale_after_s: float) -> list[int]:
        """Release every running job whose worker has not written a heartbeat for `stale_after_s`."""
        limit = time.time() - stale_after_s
        with self.engine.connect() as conn:
            stale = conn.execute(
                select(JobRow.id, JobRow.worker).where(JobRow.status == "running", JobRow.heartbeat_at < limit)
            ).all()
        reason = f"its worker stopped (no heartbeat for {stale_after_s:g} s)"
        return [job_id for job_id, worker in stale if self.release(job_id, worker, reason)]

    def running_on(self, worker: str) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(JobRow.id).where(*self._mine(worker))).scalars())
