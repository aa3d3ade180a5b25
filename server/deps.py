"""What routes take from the application, declared once: `Annotated[..., Depends(...)]` types and the token check.

Every getter is `async def`: a plain `def` dependency would send each polling
request through the thread pool, which the polling routes are async to avoid.
"""

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from server.jobs import JobStore
from server.settings import Settings

COOKIE = "ehdnas_token"  # set by `/?token=...`; the status page and GET routes accept it

bearer = HTTPBearer(auto_error=False, description="The server's API token (EHDNAS_API_TOKEN).")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_jobs(request: Request) -> JobStore:
    return request.app.state.jobs


async def get_store(request: Request) -> Engine:
    """The database the jobs and the measurements share."""
    return request.app.state.jobs.engine


async def get_jobs_dir(request: Request) -> Path:
    return request.app.state.jobs_dir


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
StoreDep = Annotated[Engine, Depends(get_store)]
JobsDirDep = Annotated[Path, Depends(get_jobs_dir)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def authorized(request: Request, credentials: HTTPAuthorizationCredentials | None, token: str) -> bool:
    """The bearer token, or for a GET the browser's cookie, is `token`."""
    given = credentials.credentials if credentials else None
    if given is None and request.method == "GET":  # the browser's cookie, for reading only
        given = request.cookies.get(COOKIE)
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


async def require_token(request: Request, settings: SettingsDep, credentials: Credentials) -> None:
    if not authorized(request, credentials, settings.token()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


RequireToken = Depends(require_token)  # for `dependencies=[RequireToken]`: a route or router behind the token
