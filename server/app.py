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

The routes live in `server.routes`, one module per resource; what they take
from the application (settings, the job queue, the store, the job folders, the
token check) is declared once in `server.deps`.
"""

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from server.jobs import JobStore
from server.middleware import BodyLimit, validation_failed
from server.routes import api, health, pages
from server.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """The application over `settings.db` (its jobs and its measurements); `settings` must hold the token."""
    settings.token()  # refuses settings without one: see Settings.with_token
    app = FastAPI(
        title="ehdnas",
        version="1",
        summary="Hardware-aware NAS jobs: search, collect, train_predictor, benchmark.",
        openapi_url=None,  # served by server.routes.pages, behind the token like every route but /healthz
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.jobs = JobStore(settings.db)
    app.state.jobs_dir = settings.jobs_folder()
    app.include_router(api)
    app.include_router(pages.router)
    app.include_router(health.router)
    app.add_middleware(BodyLimit, limit=settings.limits.body_bytes)
    app.add_exception_handler(RequestValidationError, validation_failed)
    return app
