"""The HTTP face: FastAPI routes over the job queue and the measurement store.

Routes only validate, read and enqueue; the work runs in `server.worker`
processes, so a CPU-heavy search never stalls a request here. The routes that
poll (a job, the list, events, health) and the token check are `async def` and
read the database directly: a SQLite read in WAL mode never waits for a writer
and takes far less than the hop to a worker thread would (measured with
benchmarks/server_load.py). Routes that write, load models or walk the disk
stay in the thread pool. Every route but `/healthz` needs the bearer token;
the read-only status page and its images also accept the cookie that
`/?token=...` sets, so a browser can show them.
"""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from ehdnas.pipeline.store import MeasurementRow
from server.jobs import FINISHED, KINDS, STATUSES, Job, JobStore
from server.middleware import BodyLimit
from server.models import Event, JobList, JobOut, JobRequest, artifact_names, when
from server.page import status_page
from server.specs import Limits, check_spec

COOKIE = "ehdnas_token"
JobId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="The job's id.")]  # SQLite's INTEGER range


def create_app(jobs: JobStore, jobs_dir: Path, limits: Limits, token: str) -> FastAPI:
    """The application over `jobs` (whose database also holds the measurements)."""
    app = FastAPI(
        title="ehdnas",
        version="1",
        summary="Hardware-aware NAS jobs: search, collect, train_predictor, benchmark.",
        openapi_url=None,  # served below, behind the token like every route but /healthz
        docs_url=None,
        redoc_url=None,
    )
    bearer = HTTPBearer(auto_error=False, description="The server's API token (EHDNAS_API_TOKEN).")

    def authorized(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
        given = credentials.credentials if credentials else None
        if given is None and request.method == "GET":  # the browser's cookie, for reading only
            given = request.cookies.get(COOKIE)
        return given is not None and secrets.compare_digest(given.encode(), token.encode())

    async def require_token(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> None:
        if not authorized(request, credentials):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def job_or_404(job_id: int) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def out(job: Job, detail: bool = False) -> JobOut:
        return JobOut(
            id=job.id, kind=job.kind, status=job.status, progress=job.progress, message=job.message, spec=job.spec,
            created_at=when(job.created_at), started_at=when(job.started_at), finished_at=when(job.finished_at),
            attempts=job.attempts, error=job.error, result=job.result,
            artifacts=artifact_names(jobs_dir / str(job.id)) if detail else None,
        )  # fmt: skip

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])

    @api.post("/jobs", status_code=201, response_model=JobOut)
    def submit(request: Annotated[JobRequest, Body()]) -> JobOut:
        """Queue a job; 422 names the spec field at fault, including targets and spaces unknown here."""
        problems = check_spec(request.spec, limits)
        if problems:
            raise RequestValidationError(
                [
                    {"type": "value_error", "loc": ("body", request.kind, "spec", *loc), "msg": msg, "input": None}
                    for loc, msg in problems
                ]
            )
        return out(jobs.submit(request.kind, request.spec.model_dump(mode="json")), detail=True)

    @api.get("/jobs", response_model=JobList)
    async def list_jobs(
        status: Annotated[Literal[STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
        kind: Annotated[Literal[KINDS] | None, Query()] = None,  # type: ignore[valid-type]
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    ) -> JobList:
        """Jobs, newest first, without their results (`GET /v1/jobs/{id}` has the result and artifacts)."""
        return JobList(jobs=[out(j) for j in jobs.list(status, kind, limit, offset)], total=jobs.count(status, kind))

    @api.get("/jobs/{job_id}", response_model=JobOut)
    async def get_job(job_id: JobId) -> JobOut:
        return out(job_or_404(job_id), detail=True)

    @api.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobOut)
    def cancel(job_id: JobId) -> JobOut:
        """Cancel a queued job at once; a running one stops within seconds (status `cancelled` then)."""
        job = job_or_404(job_id)
        if job.status in FINISHED:
            raise HTTPException(409, f"job {job_id} already {job.status}")
        jobs.request_cancel(job_id)
        return out(job_or_404(job_id))

    @api.get("/jobs/{job_id}/events", response_model=list[Event])
    async def events(
        job_id: JobId,
        after: Annotated[int, Query(ge=0, le=2**62, description="Only events with a larger id.")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> list[Event]:
        job_or_404(job_id)
        return [Event(id=e["id"], at=when(e["at"]), data=e["data"]) for e in jobs.events(job_id, after, limit)]

    @api.get("/jobs/{job_id}/artifacts/{name:path}", response_class=FileResponse)
    def artifact(job_id: JobId, name: str) -> FileResponse:
        """A file the job wrote (`result.json`, `model.onnx`, `search.png`, ...), by its name in the job's folder."""
        job_or_404(job_id)
        folder = (jobs_dir / str(job_id)).resolve()
        try:
            path = (folder / name).resolve()
        except (OSError, ValueError):
            raise HTTPException(400, "not a valid artifact name") from None
        if not path.is_relative_to(folder):
            raise HTTPException(400, "artifact names are paths inside the job's folder")
        if not path.is_file():
            raise HTTPException(404, f"job {job_id} has no artifact {name!r}")
        return FileResponse(path, filename=path.name)

    @api.get("/targets")
    def targets() -> list[dict[str, Any]]:
        """Every target, whether it is usable on this server and why not."""
        return _targets()

    @api.get("/measurements")
    def measurements(
        target: str | None = None,
        space: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    ) -> list[dict[str, Any]]:
        """Stored measurements, newest first (the full record, raw samples included, is in the store)."""
        columns = (MeasurementRow.id, MeasurementRow.target, MeasurementRow.space, MeasurementRow.arch,
                   MeasurementRow.median_ms, MeasurementRow.created_at, MeasurementRow.config_key,
                   MeasurementRow.host_key)  # fmt: skip
        query = select(*columns).order_by(MeasurementRow.id.desc()).limit(limit).offset(offset)
        if target:
            query = query.where(MeasurementRow.target == target)
        if space:
            query = query.where(MeasurementRow.space == space)
        with jobs.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    @api.get("/predictors")
    def predictors() -> list[dict[str, Any]]:
        """The predictors saved where searches look for them, with what each was trained on and how well."""
        from ehdnas.core.paths import predictors_dir

        return [_predictor_info(path, path.stat().st_mtime) for path in sorted(predictors_dir().glob("*.pt"))]

    app.include_router(api)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_token)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ehdnas API")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness, with a database round trip; needs no token."""
        jobs.count()
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request, token_: Annotated[str | None, Query(alias="token")] = None) -> Any:
        if token_ is not None and secrets.compare_digest(token_.encode(), token.encode()):
            response = RedirectResponse("/", status_code=303)  # the token leaves the address bar
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if not authorized(request, None):
            return HTMLResponse(status_page(None, jobs_dir), status_code=401)
        return HTMLResponse(status_page(jobs.list(limit=100, results=True), jobs_dir))

    app.add_middleware(BodyLimit, limit=limits.body_bytes)
    return app


@lru_cache(maxsize=1)
def _targets() -> list[dict[str, Any]]:
    from backends import list_targets

    return list_targets()


@lru_cache(maxsize=64)
def _predictor_info(path: Path, mtime: float) -> dict[str, Any]:
    from ehdnas.core.errors import UserError
    from perf_models import load_predictor

    try:
        meta = load_predictor(path).meta
    except UserError as err:
        return {"file": path.name, "error": str(err)}
    keep = ("kind", "space", "space_config", "target", "target_config", "measurements", "metrics", "created_at")
    return {"file": path.name, **{k: meta.get(k) for k in keep}}
