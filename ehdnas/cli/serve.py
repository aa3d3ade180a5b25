"""`serve`: the job server. The CLI is the composition root: the one place that imports the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehdnas.cli.common import (
    DbOpt,
    app,
    err,
)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes running jobs (0: API only).")] = 1,
    jobs_dir: Annotated[
        Path | None, typer.Option("--jobs-dir", help="Where job folders go [beside a SQLite store].")
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option("--limit", help="Raise or lower a bound on what one job may ask, e.g. epochs=500 (see README)."),
    ] = None,
    db: DbOpt = None,
) -> None:
    """The job server: the HTTP API under /v1 (OpenAPI at /openapi.json), its status page at /, and the workers."""
    from ehdnas.core.options import make_config, parse_pairs
    from ehdnas.core.paths import default_db_url
    from server.serve import serve as run_server
    from server.specs import Limits

    limits = make_config(Limits, parse_pairs(limit or [], "--limit"), "--limit")
    say = lambda text: err.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    run_server(host, port, db or default_db_url(), workers, jobs_dir, limits, say)
