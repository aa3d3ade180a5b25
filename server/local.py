"""Start `ehdnas serve` as a subprocess on a loopback port it chooses itself and wait until it answers.

For scripts, benchmarks and tests that need a real server, as users run it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalServer:
    process: subprocess.Popen
    url: str
    log: Path

    def client(self, token: str | None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server (SIGTERM: a clean stop) and wait; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill_all(self) -> None:
        """SIGKILL the server and every process it started at once, as a power cut would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)


def start_server(db_url: str, log: Path, workers: int = 1, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), timeout: float = 60.0) -> LocalServer:  # fmt: skip
    """`ehdnas serve` in a session of its own (so killing its group reaches every worker); up when it returns.

    It listens on `--port 0` and names the port it got in its start-up line: a port picked here and passed to it
    could be taken by another server in between, whose answer would then be taken for this one's.
    """
    command = [str(Path(sys.executable).parent / "ehdnas"), "serve", "--port", "0", "--db", db_url]
    command += ["--workers", str(workers), *args]

    def default_signals() -> None:  # a job runner may have started us with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    start = log.stat().st_size if log.exists() else 0  # the log may hold an earlier server's lines
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True, preexec_fn=default_signals,
        )  # fmt: skip
    server = LocalServer(process, "", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ehdnas serve exited {process.returncode}:\n{log.read_text()}")
        if not server.url:
            with log.open("rb") as text:
                text.seek(start)
                named = re.search(rb"ehdnas serve: http://127\.0\.0\.1:(\d+) ", text.read())
            server.url = f"http://127.0.0.1:{int(named[1])}" if named else ""
        try:
            if server.url and httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill_all()
    raise RuntimeError(f"ehdnas serve did not answer within {timeout:g} s:\n{log.read_text()}")
