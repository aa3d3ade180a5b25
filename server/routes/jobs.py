"""`/v1/jobs`: submit, list, read, cancel, follow a job's events, fetch what it wrote (the status page's plots too).

A submission past the `queued` limit (the queue's quota, over every client: the
server knows one token) gets 429. The count and the insert are two statements,
so one lock per process keeps a burst from passing the limit together; several
API processes on one database may overshoot by one job each.
"""

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse

from ehdnas.client.models import FINISHED, STATUSES, Event, JobList, JobOut
from ehdnas.core.limits import ENV_PREFIX
from server.deps import JobsDep, JobsDirDep, SettingsDep
from server.jobs import Job, JobStore
from server.models import JobRequest, job_out, when
from server.specs import SPECS, check_spec, dry_run_document, outside_data_dirs, stored_spec

JobId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="The job's id.")]  # SQLite's INTEGER range

router = APIRouter(prefix="/jobs")
_queueing = threading.Lock()  # the queued count and the insert, one submission at a time (see above)


def job_or_404(jobs: JobStore, job_id: int) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.post(
    "", status_code=201, response_model=JobOut,
    responses={200: {"description": "dry_run: the spec as it would run, resolved; nothing is queued"},
               429: {"description": "the queue is full (limit `queued`); nothing is queued"}},
)  # fmt: skip
def submit(request: Annotated[JobRequest, Body()], jobs: JobsDep, jobs_dir: JobsDirDep, settings: SettingsDep) -> Any:
    """Queue a job (or, with dry_run, show what would run); 422 names the spec field at fault, including targets
    and spaces unknown here, and paths outside the folders the operator allows (before anything looks at them);
    429 when the queue holds as many jobs as the `queued` limit."""
    problems = outside_data_dirs(request.spec, settings.data_dirs) or check_spec(request.spec, settings.limits)
    if problems:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": ("body", request.kind, "spec", *loc), "msg": msg, "input": None}
                for loc, msg in problems
            ]
        )
    if request.dry_run:
        return JSONResponse(dry_run_document(request.spec))
    spec, limit = stored_spec(request.spec), settings.limits.queued
    with _queueing:
        if (queued := jobs.count("queued")) >= limit:
            raise HTTPException(
                429, f"{queued:,} jobs are queued, the most this server takes (limit 'queued': raise it with "
                f"{ENV_PREFIX}QUEUED=N or ehdnas serve --limit queued=N); submit again once some have started",
            )  # fmt: skip
        job = jobs.submit(request.kind, spec)
    return job_out(job, jobs_dir)


@router.get("", response_model=JobList)
async def list_jobs(
    jobs: JobsDep,
    status: Annotated[Literal[STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    kind: Annotated[Literal[tuple(SPECS)] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> JobList:
    """Jobs, newest first, without their results (`GET /v1/jobs/{id}` has the result and artifacts)."""
    return JobList(jobs=[job_out(j) for j in jobs.list(status, kind, limit, offset)], total=jobs.count(status, kind))


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: JobId, jobs: JobsDep, jobs_dir: JobsDirDep) -> JobOut:
    return job_out(job_or_404(jobs, job_id), jobs_dir)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut)
def cancel(job_id: JobId, jobs: JobsDep) -> JobOut:
    """Cancel a queued job at once; a running one stops within seconds (status `cancelled` then)."""
    job = job_or_404(jobs, job_id)
    if job.status in FINISHED:
        raise HTTPException(409, f"job {job_id} already {job.status}")
    jobs.request_cancel(job_id)
    return job_out(job_or_404(jobs, job_id))


@router.get("/{job_id}/events", response_model=list[Event])
async def events(
    job_id: JobId,
    jobs: JobsDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only events with a larger id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[Event]:
    job_or_404(jobs, job_id)
    return [Event(id=e["id"], at=when(e["at"]), data=e["data"]) for e in jobs.events(job_id, after, limit)]


@router.get("/{job_id}/artifacts/{name:path}", response_class=FileResponse)
def artifact(job_id: JobId, name: str, jobs: JobsDep, jobs_dir: JobsDirDep) -> FileResponse:
    """A file the job wrote (`result.json`, `model.onnx`, `search.png`, ...), by its name in the job's folder."""
    job_or_404(jobs, job_id)
    folder = (jobs_dir / str(job_id)).resolve()
    try:
        path = (folder / name).resolve()
        if not path.is_relative_to(folder):
            raise HTTPException(400, "artifact names are paths inside the job's folder")
        if not path.is_file():
            raise HTTPException(404, f"job {job_id} has no artifact {name!r}")
    except (OSError, ValueError):  # a NUL byte; a name longer than the file system takes (ENAMETOOLONG)
        raise HTTPException(400, "not a valid artifact name") from None
    return FileResponse(path, filename=path.name)
