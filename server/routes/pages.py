"""What a browser reads: the job list at `/`, a job's page at `/jobs/{id}` (and its live part), `/docs` and its
schema.

The pages sit beside the JSON API, not inside it: `/v1/jobs/{id}` is the job as data, `/jobs/{id}` the page that
shows it, so neither answers by content negotiation. A page takes the token once in `?token=` (it sets a cookie
and redirects to the same address without it), then the cookie; a bearer header is not read, as a browser sends
none. The plots and artifact links are `/v1/jobs/{id}/artifacts/...`, which accept the cookie for a GET.
"""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ehdnas.client.models import FINISHED
from server.deps import COOKIE, JobsDep, JobsDirDep, RequireToken, SettingsDep, authorized
from server.models import artifact_names
from server.page import layer_tables, plots, templates
from server.routes.jobs import JobId
from server.settings import Settings

router = APIRouter(include_in_schema=False)
GivenToken = Annotated[str | None, Query(alias="token")]


@router.get("/openapi.json", dependencies=[RequireToken])
def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()


@router.get("/docs", dependencies=[RequireToken])
def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="ehdnas API")


def _turned_away(request: Request, settings: Settings, given: str | None) -> Response | None:
    """The answer to a visitor who may not see the page yet: `?token=` right sets the cookie and redirects to the
    address without it (the token leaves the address bar); no valid cookie, the 401 page. None: show the page."""
    token = settings.token()
    if given is not None and secrets.compare_digest(given.encode(), token.encode()):
        response = RedirectResponse(request.url.path, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response
    if not authorized(request, None, token):
        return templates.TemplateResponse(request, "locked.html", status_code=401)
    return None


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request, settings: SettingsDep, jobs: JobsDep, given: GivenToken = None) -> Response:
    if (away := _turned_away(request, settings, given)) is not None:
        return away
    listed = jobs.list(limit=100, results=True)
    active = any(job.status not in FINISHED for job in listed)  # the browser asks again every 5 s meanwhile
    return templates.TemplateResponse(request, "jobs.html", {"jobs": listed, "active": active})


def _missing(request: Request, job_id: int) -> Response:
    return templates.TemplateResponse(request, "missing.html", {"job_id": job_id}, status_code=404)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, job_id: JobId, settings: SettingsDep, jobs: JobsDep, jobs_dir: JobsDirDep,
    given: GivenToken = None,
) -> Response:  # fmt: skip
    """The job's spec, status, progress, events and artifacts, its plots and per-layer figures once written."""
    if (away := _turned_away(request, settings, given)) is not None:
        return away
    if (job := jobs.get(job_id)) is None:
        return _missing(request, job_id)
    artifacts = artifact_names(jobs_dir / str(job_id))
    context = {"job": job, "events": jobs.events(job_id), "artifacts": artifacts, "plots": plots(artifacts),
               "layer_tables": layer_tables(job)}  # fmt: skip
    return templates.TemplateResponse(request, "job.html", context)


@router.get("/jobs/{job_id}/live", response_class=HTMLResponse)
def job_live(request: Request, job_id: JobId, settings: SettingsDep, jobs: JobsDep, jobs_dir: JobsDirDep) -> Response:
    """The part of the job's page that moves while it runs, which the page's script fetches every second."""
    if not authorized(request, None, settings.token()):
        return HTMLResponse("missing or wrong token cookie", status_code=401)
    if (job := jobs.get(job_id)) is None:
        return _missing(request, job_id)
    context = {"job": job, "events": jobs.events(job_id), "artifacts": artifact_names(jobs_dir / str(job_id))}
    return templates.TemplateResponse(request, "job_live.html", context)
