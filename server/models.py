"""What the API takes and gives: a job request per kind (its spec from `server.specs`); the job, list and event
documents it answers with are `ehdnas.client.models`, shared with the client."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from ehdnas.client.models import JobOut
from server.jobs import Job
from server.specs import SPECS


class _JobRequest(BaseModel):
    dry_run: bool = Field(False, description="Check and resolve the spec, queue nothing: for a search, the same "
                          "document as `ehdnas search ... --dry-run --json`.")  # fmt: skip


def _request(kind: str, spec: type) -> Any:
    name = "".join(part.title() for part in kind.split("_")) + "Job"
    return create_model(name, __base__=_JobRequest, kind=(Literal[kind], ...), spec=(spec, ...))


# One request model per job kind, from the one table of kinds (server.specs.SPECS).
JobRequest = Annotated[Union[tuple(_request(k, s) for k, s in SPECS.items())], Field(discriminator="kind")]  # noqa: UP007


def when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def artifact_names(folder: Path) -> list[str]:
    """The files a job wrote, as names relative to its folder: those the artifact route serves, so not a link (or
    what lies under one) that leads out of the folder."""
    if not folder.is_dir():
        return []
    root = folder.resolve()
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix != ".tmp" and p.resolve().is_relative_to(root)
    )


def job_out(job: Job, jobs_dir: Path | None = None) -> JobOut:
    """The job as the API shows it; with `jobs_dir` (the single-job view) the names of its artifacts too."""
    return JobOut(
        id=job.id, kind=job.kind, status=job.status, progress=job.progress, message=job.message, spec=job.spec,
        created_at=when(job.created_at), started_at=when(job.started_at), finished_at=when(job.finished_at),
        attempts=job.attempts, error=job.error, result=job.result,
        artifacts=artifact_names(jobs_dir / str(job.id)) if jobs_dir is not None else None,
    )  # fmt: skip
