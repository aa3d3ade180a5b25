"""What a browser reads: the status page at `/` (the token once in `?token=`, then a cookie), `/docs` and its schema.

The page's plots are job artifacts, served by `/v1/jobs/{id}/artifacts/...`.
"""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse

from server.deps import COOKIE, JobsDep, JobsDirDep, RequireToken, SettingsDep, authorized
from server.page import status_page

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json", dependencies=[RequireToken])
def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()


@router.get("/docs", dependencies=[RequireToken])
def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="ehdnas API")


@router.get("/", response_class=HTMLResponse)
def page(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    jobs_dir: JobsDirDep,
    token_: Annotated[str | None, Query(alias="token")] = None,
) -> Any:
    token = settings.token()
    if token_ is not None and secrets.compare_digest(token_.encode(), token.encode()):
        response = RedirectResponse("/", status_code=303)  # the token leaves the address bar
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response
    if not authorized(request, None, token):
        return HTMLResponse(status_page(None, jobs_dir), status_code=401)
    return HTMLResponse(status_page(jobs.list(limit=100, results=True), jobs_dir))
