"""`ehdnas serve`: the API token, the workers' supervisor and uvicorn, started and stopped together."""

from __future__ import annotations

import os
import secrets
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from ehdnas.core.errors import UserError
from server.specs import Limits

TOKEN_ENV = "EHDNAS_API_TOKEN"


def api_token() -> tuple[str, str]:
    """The token and where it came from: `EHDNAS_API_TOKEN`, else a file made on the first start."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], f"from ${TOKEN_ENV}"
    from platformdirs import user_data_dir

    path = Path(user_data_dir("ehdnas")) / "api-token"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by this user only
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip(), f"generated and stored in {path}"
    return path.read_text().strip(), f"stored in {path}"


def default_jobs_dir(db_url: str) -> Path:
    """Job folders sit beside a SQLite store (job ids are per database); else in the user data directory."""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        db_file = Path(db_url.removeprefix("sqlite:///")).expanduser()
        return db_file.with_name(f"{db_file.stem}-jobs")
    from platformdirs import user_data_dir

    return Path(user_data_dir("ehdnas")) / "jobs"


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts, so a taken port is one clear line."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(
    host: str,
    port: int,
    db_url: str,
    workers: int,
    jobs_dir: Path | None,
    limits: Limits,
    say: Callable[[str], None],
) -> None:
    """Run the server until Ctrl-C or SIGTERM; running jobs go back to the queue for the next start."""
    import uvicorn

    from server.app import create_app
    from server.jobs import JobStore
    from server.worker import Supervisor, WorkerSettings

    if workers < 0:
        raise UserError("--workers must be 0 (no jobs run: API only) or more")
    sock = _listen(host, port)
    token, source = api_token()
    jobs = JobStore(db_url)
    folder = (jobs_dir or default_jobs_dir(db_url)).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    app = create_app(jobs, folder, limits, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    supervisor = Supervisor(WorkerSettings(db_url, folder), workers)
    supervisor.start()
    shown = f"[{host}]" if ":" in host else host
    say(
        f"ehdnas serve: http://{shown}:{port} with {workers} worker(s); store {db_url}; job folders in {folder}\n"
        f"API token {source}; send it as `Authorization: Bearer <token>`\n"
        f"status page: http://{shown}:{port}/?token={token}"
    )
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises the signal it caught once it has shut down
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
