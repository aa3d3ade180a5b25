"""`jobs`: the job server's client on the command line, over `ehdnas.client` (which Python users call directly).

Every command takes `--server URL` and `--token-file FILE` (defaults in
`ehdnas.client.address`); a refusal is the server's own message, one line.
"""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ehdnas.cli.common import JsonOpt, _escaped, _print_json, _status, app, console, err
from ehdnas.core.errors import UserError
from ehdnas.core.events import tick

if TYPE_CHECKING:
    from ehdnas.client import Client, Event, JobOut

CLIENT_EXTRA = "ehdnas jobs needs the client extra: pip install 'ehdnas[client]'"

jobs_app = typer.Typer(
    help="The job server's client: submit jobs, follow them, fetch what they wrote (`ehdnas serve` is the server)."
)
app.add_typer(jobs_app, name="jobs")


@jobs_app.callback(invoke_without_command=True)
def _group(context: typer.Context) -> None:
    """`ehdnas jobs` alone: its help (click's no_args_is_help would end in an empty error line here)."""
    if context.invoked_subcommand is None:
        console.print(context.get_help())


ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server", help=_escaped("The server's URL [env EHDNAS_SERVER, else the address `ehdnas serve` listens on].")
    ),
]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help=_escaped("A file holding the API token [env EHDNAS_API_TOKEN, else the one `ehdnas serve` stored]."),
    ),
]
JobIdArg = Annotated[int, typer.Argument(help="The job's id.", min=1)]


def _client(server: str | None, token_file: Path | None) -> Client:
    try:
        from ehdnas.client import Client
    except ImportError:
        raise UserError(CLIENT_EXTRA) from None
    return Client(server, token_file=token_file)


def _read_spec(source: str) -> dict[str, Any]:
    """The spec in file `source` (`-`: stdin), JSON or TOML: by the file's suffix, else whichever it parses as."""
    from ehdnas.client.address import read_text

    name = "stdin" if source == "-" else source
    text = sys.stdin.read() if source == "-" else read_text(Path(source), "--spec")
    suffix = Path(source).suffix.lower()
    readers = {"json": json.loads, "toml": tomllib.loads}
    tried = [suffix[1:]] if suffix[1:] in readers else list(readers)
    problems = []
    for form in tried:
        try:
            spec = readers[form](text)
        except (ValueError, RecursionError) as error:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            problems.append(f"not {form.upper()}: {str(error).splitlines()[0]}")
            continue
        if not isinstance(spec, dict):
            raise UserError(f"--spec {name}: a spec is an object of settings, not {type(spec).__name__}")
        return spec
    raise UserError(f"--spec {name}: {'; '.join(problems)}")


@jobs_app.command()
def submit(
    kind: Annotated[str, typer.Argument(help="The job's kind: search, collect, train_predictor or benchmark.")],
    spec: Annotated[
        str, typer.Option("--spec", help="A JSON or TOML file of the job's settings (the API's `spec`); - for stdin.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would run, checked and resolved; queue nothing.")
    ] = False,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Queue a job; the server checks its spec first, as the CLI's own commands check their flags."""
    document = _read_spec(spec)
    with _client(server, token_file) as client:
        if dry_run:
            _print_json(client.dry_run(kind, document))
            return
        job = client.submit(kind, document)
    if as_json:
        _print_json(job.model_dump(mode="json"))
    else:
        console.print(f"job {job.id} queued ({job.kind}): follow it with `ehdnas jobs watch {job.id}`", markup=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


@jobs_app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help="Only jobs in this state: queued, running, succeeded, ...")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="The newest this many.", min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """The server's jobs, newest first."""
    with _client(server, token_file) as client:
        listed = client.jobs(status, kind, limit)
    if as_json:
        _print_json(listed.model_dump(mode="json"))
        return
    table = Table(title=f"{len(listed.jobs)} of {listed.total} jobs", title_justify="left")
    for column in ("id", "kind", "status", "progress", "message", "created", "finished"):
        table.add_column(column, justify="right" if column in ("id", "progress") else "left")
    for job in listed.jobs:
        table.add_row(str(job.id), job.kind, job.status, f"{job.progress:.0%}", job.error or job.message,
                      _when(job.created_at), _when(job.finished_at))  # fmt: skip
    console.print(table, markup=False)


def _brief(value: Any, width: int = 300) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[:width] + " ... (--json for all)"


@jobs_app.command()
def get(job_id: JobIdArg, as_json: JsonOpt = False, server: ServerOpt = None, token_file: TokenFileOpt = None) -> None:
    """One job: its state, spec, result and artifacts."""
    with _client(server, token_file) as client:
        job = client.job(job_id)
    if as_json:
        _print_json(job.model_dump(mode="json"))
        return
    table = Table(show_header=False, box=None)
    rows = {
        "job": f"{job.id} ({job.kind})", "status": job.status, "progress": f"{job.progress:.0%}",
        "message": job.message, "error": job.error, "created": _when(job.created_at),
        "started": _when(job.started_at), "finished": _when(job.finished_at), "attempts": str(job.attempts),
        "spec": _brief(job.spec), "result": None if job.result is None else _brief(job.result),
        "artifacts": ", ".join(job.artifacts or []),
    }  # fmt: skip
    for name, value in rows.items():
        if value:
            table.add_row(name, value)
    console.print(table, markup=False)


def _event_line(event: Event) -> str:
    """An event as one line: its time, its stage, the rest as key=value."""
    data = dict(event.data)
    stage = data.pop("stage", "?")
    rest = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items())
    return f"{_when(event.at)} {stage} {rest}".rstrip()


@jobs_app.command()
def watch(job_id: JobIdArg, server: ServerOpt = None, token_file: TokenFileOpt = None) -> None:
    """Follow a job until it ends: a live bar with its message, each event as it comes.

    The exit status is 0 when it succeeded, 1 when it failed or was cancelled.
    """
    with _client(server, token_file) as client, _status() as show:
        for update in client.watch(job_id):
            for event in update.events:
                console.print(_event_line(event), markup=False, highlight=False, soft_wrap=True)
            job = update.job
            show(tick(job.status, job.progress, 1, f"job {job.id}: {job.message}"))  # thinned off a terminal
    _ended(job)


def _ended(job: JobOut) -> None:
    if job.status == "succeeded":
        console.print(
            f"job {job.id} succeeded; its artifacts: `ehdnas jobs artifacts {job.id}`", markup=False, highlight=False
        )
        return
    reason = f": {job.error}" if job.error else ""
    err.print(f"error: job {job.id} {job.status}{reason}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@jobs_app.command()
def cancel(job_id: JobIdArg, server: ServerOpt = None, token_file: TokenFileOpt = None) -> None:
    """Cancel a job: a queued one at once, a running one within seconds."""
    with _client(server, token_file) as client:
        job = client.cancel(job_id)
    after = "cancelled" if job.status == "cancelled" else "stops within seconds (`ehdnas jobs watch` to see it end)"
    console.print(f"job {job.id} {after}", markup=False)


@jobs_app.command()
def artifacts(
    job_id: JobIdArg,
    name: Annotated[str | None, typer.Argument(help="The artifact to download (a name the list shows).")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help=_escaped("Download into this folder: NAME, or every artifact [the current one].")),
    ] = None,
    server: ServerOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """List the files a job wrote, or download one (NAME) or all (--out DIR) of them."""
    from ehdnas.core.writable import writable_dir

    if name is None and out is None:
        with _client(server, token_file) as client:
            names = client.artifacts(job_id)
        for found in names:
            console.print(found, markup=False, highlight=False)
        if not names:
            err.print(f"job {job_id} has no artifacts yet", markup=False, highlight=False)
        return
    folder = writable_dir(out or Path.cwd(), "--out")
    with _client(server, token_file) as client:
        for wanted in [name] if name is not None else client.artifacts(job_id):
            console.print(str(client.download(job_id, wanted, folder)), markup=False, highlight=False)
