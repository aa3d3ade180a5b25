"""`ehdnas serve`: the API token, the workers' supervisor and uvicorn, started and stopped together."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from ehdnas.core.errors import UserError
from ehdnas.core.paths import cache_root
from ehdnas.core.writable import writable_dir
from ehdnas.pipeline.store import check_store_url
from server.settings import Settings


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


def _check_paths(settings: Settings) -> None:
    """The store, the jobs folder and the cache, refused in one line before anything starts; nothing is made."""
    check_store_url(settings.db)
    writable_dir(settings.jobs_folder(), "--jobs-dir")
    cache_root()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(given: dict[str, Any], say: Callable[[str], None]) -> None:
    """`run` with the settings the command line gave over the environment's (`Settings`)."""
    if given.get("workers", 0) < 0:
        raise UserError("--workers must be 0 (no jobs run: API only) or more")
    settings = Settings.load(**given)
    if "ray" in given and settings.executor != "ray":
        raise UserError("--ray-address is for --executor ray (or EHDNAS_EXECUTOR=ray)")
    run(settings, say)


def run(settings: Settings, say: Callable[[str], None]) -> None:
    """Run the server until Ctrl-C or SIGTERM; running jobs go back to the queue for the next start."""
    import uvicorn

    from server.app import create_app
    from server.executors import open_executor
    from server.worker import Supervisor, WorkerSettings

    _check_paths(settings)
    host = settings.host
    sock = _listen(host, settings.port)
    port = sock.getsockname()[1]  # --port 0: the one the system chose, in the start-up line
    settings, source = settings.with_token()
    folder = settings.jobs_folder()
    folder.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"jobs_dir": folder})  # the app and the workers resolve it alike
    app = create_app(settings)
    # A Ray cluster joined or started before the workers that use it, and before uvicorn's Config, which resets the
    # process's logging (its dictConfig closes every handler): a refused address leaves the logging as it was.
    executor = open_executor(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    supervisor = Supervisor(WorkerSettings(settings.db, folder, executor=executor), settings.workers)
    supervisor.start()
    shown = f"[{host}]" if ":" in host else host
    # The token only to a person at a terminal: a log (a container's, a service's) is read by others.
    token = settings.token() if sys.stderr.isatty() else "<token>"
    store = make_url(settings.db).render_as_string(hide_password=True)
    say(
        f"ehdnas serve: http://{shown}:{port} with {settings.workers} worker(s) running jobs on {executor.where}; "
        f"store {store}; job folders in {folder}\n"
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
        executor.close()
