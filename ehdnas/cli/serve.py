"""`serve`: the job server. The CLI is the composition root: the one place that imports the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ehdnas.cli.common import DbOpt, _escaped, app, err
from ehdnas.core.errors import UserError

SERVER_EXTRA = "ehdnas serve needs the server extra: pip install 'ehdnas[server]'"


def _default(name: str) -> str:
    """A server setting's default, from the server's one Settings class (help text only: unset flags pass nothing)."""
    try:
        from server.settings import Settings
    except ImportError:  # the core alone: `serve` says what to install when it is run
        return ""
    default = Settings.model_fields[name].get_default(call_default_factory=False)
    return _escaped(f" [{default}; env EHDNAS_{name.upper()}]")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface)." + _default("host"))
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (0: a free one, named on start)." + _default("port"))
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes running jobs (0: API only)." + _default("workers"))
    ] = None,
    jobs_dir: Annotated[
        Path | None, typer.Option("--jobs-dir", help=_escaped("Where job folders go [beside a SQLite store]."))
    ] = None,
    data_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--data-dir",
            help=_escaped(
                "A folder whose files specs may name (accelerator files, data and calibration folders); repeatable "
                "[none: specs name no paths; env EHDNAS_DATA_DIRS, a JSON list]."
            ),
        ),
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option("--limit", help="Raise or lower a bound on what one job may ask, e.g. epochs=500 (see README)."),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help=_escaped(
                "Where jobs run: local (processes of this machine) or ray (a Ray task each; pip install 'ehdnas[ray]')."
            )
            + _default("executor"),
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help=_escaped(
                "The cluster for --executor ray: its head's HOST:PORT or auto (the one `ray start` made here) "
                "[none: a Ray of the server's own on this machine; env EHDNAS_RAY__ADDRESS]."
            ),
        ),
    ] = None,
    db: DbOpt = None,
) -> None:
    """The job server: the HTTP API under /v1 (OpenAPI at /openapi.json), its status page at /, and the workers.

    Every flag left out takes the server's setting: its EHDNAS_* variable, else its default.
    """
    from ehdnas.core.limits import Limits
    from ehdnas.core.options import make_config, parse_pairs

    try:
        from server.serve import serve as run_server
    except ImportError:
        raise UserError(SERVER_EXTRA) from None

    given: dict[str, Any] = {"host": host, "port": port, "workers": workers, "jobs_dir": jobs_dir, "db": db}
    given |= {"executor": executor, "ray": {"address": ray_address} if ray_address is not None else None}
    given["data_dirs"] = data_dir or None  # none given: the environment's
    if limit:
        given["limits"] = make_config(Limits, parse_pairs(limit, "--limit"), "--limit")
    say = lambda text: err.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    run_server({k: v for k, v in given.items() if v is not None}, say)
