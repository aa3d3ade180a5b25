"""The job server's client (`ehdnas.client`, `ehdnas jobs`) against a real `ehdnas serve`, and the queue's quota."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ehdnas.client import Client, ServerError
from ehdnas.core.errors import UserError
from server.jobs import JobStore
from server.local import LocalServer, free_port, start_server
from tests.conftest import TOKEN, run_main
from tests.server.test_server import FAST, TINY

QUEUED = 5  # the idle server's quota
BENCHMARK = {"target": "ort-cpu", "space_options": TINY, "samples": 1, **FAST}


def _server(folder: Path, workers: int, *args: str) -> Iterator[LocalServer]:
    env = {"EHDNAS_API_TOKEN": TOKEN, "XDG_DATA_HOME": str(folder / "data")}
    server = start_server(f"sqlite:///{folder / 'store.db'}", folder / "serve.log", workers, env, args)
    yield server
    assert server.stop() == 0, (folder / "serve.log").read_text()


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server whose worker runs jobs."""
    yield from _server(tmp_path_factory.mktemp("busy"), 1)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server that runs nothing (jobs stay queued), with a quota of QUEUED."""
    yield from _server(tmp_path_factory.mktemp("idle"), 0, "--limit", f"queued={QUEUED}")


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point `ehdnas jobs` at a server through the environment, as a user would; no stored token is found."""

    def at(server: LocalServer) -> str:
        monkeypatch.setenv("EHDNAS_SERVER", server.url)
        monkeypatch.setenv("EHDNAS_API_TOKEN", TOKEN)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "client-data"))
        return server.url

    return at


def jobs(*args: str) -> tuple[int, str, str]:
    proc = run_main("jobs", *args)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow  # a job's process imports torch: seconds
def test_a_job_from_a_toml_file_is_watched_to_the_end_and_its_artifacts_downloaded(busy, at, tmp_path: Path) -> None:
    at(busy)
    spec = tmp_path / "spec.toml"
    spec.write_text('target = "ort-cpu"\nsamples = 1\nrepeats = 3\nmin_time = 0\nwarmup = 1\n\n'
                    "[space_options]\nlayers = 3\nchannels = 4\ninput_size = 8\n")  # FAST and TINY  # fmt: skip
    code, out, _ = jobs("submit", "benchmark", "--spec", str(spec), "--json")
    assert code == 0
    job = json.loads(out)
    assert (job["status"], job["spec"]["samples"], job["spec"]["space_options"]) == ("queued", 1, TINY)
    code, out, err = jobs("watch", str(job["id"]))
    assert code == 0, err
    stages = [line.split()[2] for line in out.splitlines()[:-1]]  # date, time, stage, ...
    assert stages == ["queued", "started", "succeeded"] and out.splitlines()[-1].startswith(f"job {job['id']} succ")
    assert f"job {job['id']}: " in err  # the status line, off a terminal
    listed = json.loads(jobs("list", "--status", "succeeded", "--json")[1])
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["total"] == 1
    assert f"{job['id']} │ benchmark │ succeeded │     100%" in jobs("list")[1]
    got = json.loads(jobs("get", str(job["id"]), "--json")[1])
    assert got["result"]["results"][0]["latency_ms"]["median"] > 0 and got["artifacts"] == ["result.json"]
    assert jobs("artifacts", str(job["id"])) == (0, "result.json\n", "")
    code, out, _ = jobs("artifacts", str(job["id"]), "--out", str(tmp_path / "got"))
    assert code == 0 and out.strip() == str(tmp_path / "got" / "result.json")
    assert json.loads((tmp_path / "got" / "result.json").read_text()) == got["result"]
    assert [p.name for p in (tmp_path / "got").iterdir()] == ["result.json"]  # no partial file left


def test_watch_exits_non_zero_when_the_job_fails_and_says_why(idle, at) -> None:
    at(idle)
    store = JobStore(f"sqlite:///{idle.log.parent / 'store.db'}")  # the server's own database: a worker's side
    job = store.submit("benchmark", BENCHMARK)
    assert store.claim("a-worker").id == job.id
    store.fail(job.id, "a-worker", "RuntimeError: the target went away")
    code, out, err = jobs("watch", str(job.id))
    assert code == 1 and err.splitlines()[-1] == f"error: job {job.id} failed: RuntimeError: the target went away"
    assert [line.split()[2] for line in out.splitlines()] == ["queued", "started", "failed"]


def test_the_client_watches_a_job_from_queued_to_cancelled(idle) -> None:
    with Client(idle.url, TOKEN) as client:
        job = client.submit("benchmark", BENCHMARK)
        updates = client.watch(job.id, poll_s=0.05)
        first = next(updates)  # at once
        assert (first.job.status, [e.data["stage"] for e in first.events]) == ("queued", ["queued"])
        assert client.jobs("queued").jobs[0].id == job.id
        threading.Timer(0.3, client.cancel, [job.id]).start()
        rest = list(updates)
        assert rest[-1].job.status == "cancelled" and [e.data["stage"] for u in rest for e in u.events] == ["cancelled"]
        assert len(rest) == 1  # nothing changed while it waited: no update
        with pytest.raises(ServerError, match=f"^job {job.id} already cancelled$") as refused:
            client.cancel(job.id)
        assert refused.value.status == 409


def test_a_job_from_stdin_cancelled_from_the_command_line_and_watch_says_so(idle, at, monkeypatch) -> None:
    at(idle)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(BENCHMARK)))
    code, out, _ = jobs("submit", "benchmark", "--spec", "-")
    job_id = out.split()[1]
    assert code == 0 and out == f"job {job_id} queued (benchmark): follow it with `ehdnas jobs watch {job_id}`\n"
    assert jobs("cancel", job_id) == (0, f"job {job_id} cancelled\n", "")
    code, out, err = jobs("watch", job_id)
    assert code == 1 and err.endswith(f"\nerror: job {job_id} cancelled\n")
    assert out.splitlines()[-1].endswith("cancelled")


def test_refusals_are_the_servers_messages_in_one_line(idle, at, tmp_path: Path, monkeypatch) -> None:
    url = at(idle)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"target": "ort-cpu", "samples": 10**9, "options": {"threads": 1000}}))
    (tmp_path / "token").write_text("wrong\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bad.toml").write_text("target = \n")
    nowhere = f"http://127.0.0.1:{free_port()}"
    for args, line in [
        (["submit", "collect", "--spec", str(spec)],
         "error: options.threads: 1,000 is over the limit of 256 (limit 'threads': raise it with "
         "EHDNAS_LIMITS__THREADS=N); samples: 1,000,000,000 is over the limit of 20,000"),
        (["submit", "nope", "--spec", str(spec)], "error: Input tag 'nope' found using 'kind' does not match"),
        (["list", "--status", "done"], "error: status: Input should be 'queued', 'running', 'succeeded'"),
        (["get", "999"], "error: no job 999"),
        (["artifacts", "999"], "error: no job 999"),
        (["list", "--token-file", str(tmp_path / "token")],
         f"error: missing or wrong bearer token (token from --token-file {tmp_path / 'token'})"),
        (["list", "--token-file", str(tmp_path / "none")], f"error: --token-file {tmp_path / 'none'}: no such file"),
        (["list", "--server", nowhere], f"error: no server at {nowhere}"),
        (["list", "--server", "localhost:8000"], "error: not a server URL: 'localhost:8000' (give http://HOST:PORT)"),
        (["submit", "collect", "--spec", str(tmp_path / "list.json")],
         f"error: --spec {tmp_path / 'list.json'}: a spec is an object of settings, not list"),
        (["submit", "collect", "--spec", str(tmp_path / "bad.toml")],
         f"error: --spec {tmp_path / 'bad.toml'}: not TOML: Invalid value (at line 1, column 10)"),
        (["submit", "collect", "--spec", str(tmp_path)], f"error: --spec {tmp_path}: a folder, not a file"),
    ]:  # fmt: skip
        code, out, err = jobs(*args)
        assert code == 2 and err.startswith(line) and err.count("\n") == 1 and not out, (args, err)
    monkeypatch.setattr("sys.stdin", io.StringIO("{nope"))
    assert jobs("submit", "collect", "--spec", "-")[2].startswith("error: --spec stdin: not JSON: Expecting property")
    monkeypatch.delenv("EHDNAS_API_TOKEN")
    assert jobs("list")[2] == "error: missing or wrong bearer token (no token sent: set $EHDNAS_API_TOKEN or give " \
                              "--token-file)\n"  # fmt: skip
    stored = tmp_path / "client-data" / "ehdnas" / "api-token"  # where `ehdnas serve` keeps the token it made
    stored.parent.mkdir(parents=True)
    stored.write_text(TOKEN + "\n")
    assert jobs("list", "--server", url)[0] == 0


def test_a_burst_of_submissions_fills_the_queue_to_its_limit_and_no_further(idle, at, tmp_path: Path) -> None:
    at(idle)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(BENCHMARK))
    client = Client(idle.url, TOKEN)
    before = client.jobs("queued").total

    def submit(_: int) -> int | str:
        try:
            return client.submit("benchmark", BENCHMARK).id
        except ServerError as refused:
            assert refused.status == 429
            return str(refused)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(submit, range(40)))
    accepted = [a for a in answers if isinstance(a, int)]
    try:
        assert len(accepted) == QUEUED - before and client.jobs("queued").total == QUEUED  # not one more
        refusals = {a for a in answers if isinstance(a, str)}
        assert refusals == {
            f"{QUEUED} jobs are queued, the most this server takes (limit 'queued': raise it with "
            f"EHDNAS_LIMITS__QUEUED=N or ehdnas serve --limit queued=N); submit again once some have started"
        }
        assert client.dry_run("benchmark", BENCHMARK)["samples"] == 1  # a dry run queues nothing: still answered
        assert jobs("submit", "benchmark", "--spec", str(spec)) == (2, "", f"error: {refusals.pop()}\n")
        assert json.loads(jobs("submit", "benchmark", "--spec", str(spec), "--dry-run")[1])["samples"] == 1
        client.cancel(accepted[0])
        assert client.submit("benchmark", BENCHMARK).status == "queued"  # room again
    finally:
        for job in client.jobs("queued").jobs:
            client.cancel(job.id)
        client.close()


def test_the_client_refuses_a_token_no_header_can_carry() -> None:
    with pytest.raises(UserError, match="holds characters an HTTP header cannot carry"):
        Client("http://127.0.0.1:1", "tökén")
