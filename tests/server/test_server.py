"""The job server as users run it: a real `ehdnas serve` (uvicorn, worker processes, a SQLite file) over HTTP."""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from ehdnas.core.errors import UserError
from ehdnas.core.limits import Limits
from server.jobs import JobStore
from server.local import LocalServer, start_server
from server.settings import Settings
from tests.conftest import TOKEN, run_cli

TINY = {"layers": 3, "channels": 4, "input_size": 8}
# As tests.conftest.FAST: never flagged.
FAST = {"repeats": 3, "min_time": 0, "warmup": 1, "max_spread": 10, "clock": "cpu"}


def wait_for(client: httpx.Client, job_id: int, done: Callable[[dict], bool], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if done(job):
            return job
        assert job["status"] != "failed", job["error"]
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} still {job['status']} ({job['message']}) after {timeout} s")


def finished(job: dict) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def submit(client: httpx.Client, kind: str, **spec) -> dict:
    response = client.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert response.status_code == 201, response.text
    return response.json()


def _claim_all(db_url: str, worker: str, start: Any) -> list[int]:
    jobs, claimed = JobStore(db_url), []
    start.wait()  # all connected before any claims: a worker that starts late on a busy machine found nothing left
    while (job := jobs.claim(worker)) is not None:
        claimed.append(job.id)
    return claimed


def test_concurrent_workers_never_claim_one_job_twice(db_url: str) -> None:
    jobs = JobStore(db_url)
    submitted = [jobs.submit("benchmark", {"n": i}).id for i in range(300)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(4, mp_context=context) as pool:
        start = manager.Barrier(4, timeout=120)  # a worker that never starts fails the test, not hangs it
        claims = list(pool.map(_claim_all, [db_url] * 4, [f"w{i}" for i in range(4)], [start] * 4))
    everything = [job_id for claimed in claims for job_id in claimed]
    assert sorted(everything) == submitted  # each job exactly once
    assert sum(bool(claimed) for claimed in claims) >= 2  # and they did compete (seen: 135, 57, 72, 36)
    assert all(jobs.get(i).status == "running" and jobs.get(i).attempts == 1 for i in submitted)
    # Only the claiming worker may finish a job; a cancel wins over a late worker.
    first, second = submitted[:2]
    owner = next(f"w{i}" for i, claimed in enumerate(claims) if first in claimed)
    assert not jobs.succeed(first, "someone-else", {}) and jobs.succeed(first, owner, {"ok": 1})
    assert jobs.request_cancel(second) == "running" and jobs.get(second).cancel_requested
    assert jobs.request_cancel(jobs.submit("collect", {}).id) == "cancelled"  # a queued job: at once


def test_every_route_but_healthz_needs_the_token(launch) -> None:
    server = launch(workers=0)
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    for path in ("/v1/jobs", "/v1/targets", "/v1/measurements", "/v1/predictors", "/openapi.json", "/docs"):
        assert httpx.get(server.url + path).status_code == 401, path
        assert server.client("wrong").get(path).status_code == 401, path
        assert server.client(TOKEN).get(path).status_code == 200, path
    assert server.client(None).post("/v1/jobs", json={}).status_code == 401
    # The page: 401 without the token; ?token= sets a cookie that reads but cannot submit.
    refused = httpx.get(server.url + "/", headers={"Authorization": f"Bearer {TOKEN}"})  # the page reads no header
    assert refused.status_code == 401 and "/?token=" in refused.text and "Authorization" not in refused.text
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        assert browser.get(f"/?token={TOKEN}").status_code == 200  # redirected to / with the cookie
        assert "ehdnas jobs" in browser.get("/").text
        assert browser.get("/v1/jobs").status_code == 200
        assert browser.post("/v1/jobs", json={"kind": "benchmark", "spec": {"target": "ort-cpu"}}).status_code == 401


def test_a_generated_token_is_stored_on_first_start_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"XDG_DATA_HOME": str(data), "EHDNAS_API_TOKEN": ""}
    db = f"sqlite:///{tmp_path / 'store.db'}"
    first = start_server(db, tmp_path / "first.log", 0, env)
    first.stop()
    token_file = data / "ehdnas" / "api-token"
    assert f"generated and stored in {token_file}" in (tmp_path / "first.log").read_text()
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    second = start_server(db, tmp_path / "second.log", 0, env)
    try:
        assert f"stored in {token_file}" in (tmp_path / "second.log").read_text()
        assert second.client(token).get("/v1/jobs").status_code == 200
    finally:
        assert second.stop() == 0


def test_serve_refuses_bad_settings_in_one_line(launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = launch(workers=0)
    port = taken.url.rsplit(":", 1)[1]
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for args, message in [
        (["--port", port], f"error: cannot listen on 127.0.0.1:{port}: Address already in use"),
        (["--limit", "epochs=0"], "error: limit epochs must be positive"),
        (["--limit", "nope=1"], "error: unknown --limit option 'nope'"),
        (["--workers", "-1"], "error: --workers must be 0"),
    ]:
        proc = run_cli("serve", *args, db=f"sqlite:///{tmp_path}/other.db", check=False, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr


def test_settings_come_from_the_environment_and_a_bad_value_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHDNAS_API_TOKEN", TOKEN)
    monkeypatch.setenv("EHDNAS_DB", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("EHDNAS_PORT", "9123")
    monkeypatch.setenv("EHDNAS_LIMITS__EPOCHS", "500")
    settings = Settings.load(workers=0)  # the caller's values over the environment's
    assert (settings.token(), settings.port, settings.workers) == (TOKEN, 9123, 0)
    assert settings.db == f"sqlite:///{tmp_path / 'env.db'}"
    assert settings.jobs_folder() == (tmp_path / "env-jobs").resolve()
    assert settings.limits == Limits(epochs=500)
    assert TOKEN not in repr(settings)
    for name, value, message in [
        ("EHDNAS_PORT", "eighty", "EHDNAS_PORT: Input should be a valid integer"),
        ("EHDNAS_LIMITS__EPOCHS", "0", "EHDNAS_LIMITS: limit epochs must be positive"),
        ("EHDNAS_LIMITS__NOPE", "1", "EHDNAS_LIMITS__NOPE: unknown setting"),
        ("EHDNAS_DB", "not a url", "EHDNAS_DB: not an SQLAlchemy database URL"),
        ("EHDNAS_API_TOKEN", " \t ", "EHDNAS_API_TOKEN: the API token must not be empty or blank"),
    ]:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(UserError) as refused:
                Settings.load()
            assert str(refused.value).startswith(message) and "\n" not in str(refused.value), (name, refused.value)
    with pytest.raises(UserError, match="^server setting api_token: the API token must not be empty"):
        Settings.load(api_token="")
    # An empty variable is an unset one: the stored token, as `ehdnas serve` does.
    monkeypatch.setenv("EHDNAS_API_TOKEN", "")
    assert Settings.load().api_token is None


def test_serve_refuses_a_bad_environment_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("EHDNAS_API_TOKEN", "   ")
    proc = run_cli("serve", "--workers", "0", db=f"sqlite:///{tmp_path}/store.db", check=False, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: EHDNAS_API_TOKEN: the API token must not be empty")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_serve_refuses_a_jobs_dir_or_store_it_cannot_use_in_one_line_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "a-file").write_text("kept\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    for args, message in [
        (["--jobs-dir", str(tmp_path / "a-file")], f"error: --jobs-dir {tmp_path / 'a-file'}: a file, not a folder"),
        (["--db", f"sqlite:///{tmp_path / 'a-file'}"], f"{tmp_path / 'a-file'} is not a SQLite database"),
    ]:
        proc = run_cli("serve", "--workers", "0", *args, db=db, check=False, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["a-file"] and (tmp_path / "a-file").read_text() == "kept\n"


def refusal(client: httpx.Client, kind: str, **spec) -> dict:
    """The 422 answer to a submission: message by location within the spec."""
    response = client.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert response.status_code == 422, response.text
    return {tuple(p["loc"][3:]): p["msg"] for p in response.json()["detail"]}


def test_bad_specs_are_refused_with_the_field_named(launch) -> None:
    server = launch(workers=0, args=("--limit", "samples=100"))
    client = server.client(TOKEN)
    problems = functools.partial(refusal, client)
    assert "unknown target 'nope'" in problems("benchmark", target="nope")[("target",)]
    assert "unknown search space 'nope'" in problems("collect", target="ort-cpu", space="nope", samples=5)[("space",)]
    assert "option 'x'" in problems("collect", target="ort-cpu", samples=5, options={"x": 1})[("options",)]
    assert ("samples",) in problems("collect", target="ort-cpu", samples=0)  # pydantic's own bound
    assert "101 is over the limit of 100" in problems("collect", target="ort-cpu", samples=101)[("samples",)]  # --limit
    threads = problems("collect", target="ort-cpu", samples=5, options={"threads": 1000})[("options", "threads")]
    assert threads.startswith("1,000 is over the limit of 256 (limit 'threads'")
    assert ("seed",) in problems("collect", target="ort-cpu", samples=5, seed=2**32)
    assert ("bogus",) in problems("collect", target="ort-cpu", samples=5, bogus=1)
    assert ("archs", 0) in problems("benchmark", target="ort-cpu", archs=["not a genotype"])
    assert "no latency predictor" in problems("search", target="ort-cpu")[("auto_predictor",)]
    assert "reads no file or folder outside" in problems("search", target="ort-cpu", data="folder:/tmp")[("data",)]
    for name in ("nope.pt", "../api-token"):
        assert "GET /v1/predictors" in problems("search", target="ort-cpu", predictor=name)[("predictor",)]
    too_few = problems("search", target="ort-cpu", auto_predictor=True, auto_samples=10)
    assert "at least 50" in too_few[("auto_samples",)]
    assert client.post("/v1/jobs", json={"kind": "nope", "spec": {}}).status_code == 422
    huge = {"kind": "benchmark", "spec": {"target": "ort-cpu", "archs": ["x" * 100_000]}}
    assert client.post("/v1/jobs", json=huge).status_code == 413
    assert client.get("/v1/jobs").json()["total"] == 0  # nothing was queued
    assert client.get("/v1/jobs/12345").status_code == 404


def test_bad_flownas_search_specs_are_refused_with_the_field_named(launch) -> None:
    server = launch(workers=0)
    client = server.client(TOKEN)
    problems = functools.partial(refusal, client, "search", target="systolic-edge32", space="flownas")
    measured = {"latency_budget_ms": 2.0, "latency_from": "measured"}
    assert "needs a latency budget" in problems(latency_from="measured")[("latency_budget_ms",)]
    assert "greater than 0" in problems(latency_budget_ms=0)[("latency_budget_ms",)]
    unknown = problems(**measured, evolution={"generation": 3})[("evolution",)]
    assert unknown.startswith("unknown evolution option 'generation'; known: crossovers, generations")
    assert "parents cannot outnumber" in problems(**measured, evolution={"parents": 99})[("evolution",)]
    too_long = problems(**measured, evolution={"generations": 1000})[("evolution",)]
    assert too_long.startswith("50000 fitness evaluations") and "at most 10000 (limit 'evaluations')" in too_long
    assert "three counts (TRAIN, VAL, TEST)" in problems(**measured, pairs=[8, 4])[("pairs",)]
    assert ("pairs", 0) in problems(**measured, pairs=[0, 4, 4])
    assert "expected photos, chairs:DIR or sintel:DIR" in problems(**measured, data="digits")[("data",)]
    darts_only = problems(**measured, method="dcp-nas", lambdas=[0, 1], retrain_epochs=5)
    eh_dnas = "applies to darts or nb201 searches only, not to flownas"  # the fields of EH-DNAS, on both spaces
    assert darts_only == {("lambdas",): eh_dnas, ("retrain_epochs",): eh_dnas,
                          ("method",): "applies to darts searches only, not to flownas"}  # fmt: skip
    assert "with latency_from 'predictor' only" in problems(**measured, auto_predictor=True)[("auto_predictor",)]
    assert "or latency_from 'measured'" in problems(latency_budget_ms=2.0)[("auto_predictor",)]  # no predictor
    flownas_only = problems(space="darts", latency_budget_ms=2.0, teacher_epochs=3)
    assert flownas_only[("teacher_epochs",)] == "applies to flownas searches only, not to darts"
    assert ("latency_budget_ms",) in flownas_only
    assert client.get("/v1/jobs").json()["total"] == 0  # nothing was queued


def test_wrong_shapes_non_finite_numbers_long_names_and_dangling_files_are_4xx(launch, tmp_path: Path) -> None:
    """Issue 21's cases, each a 500 before: the 422 names the field, and its body is JSON even for a NaN input."""
    predictors = tmp_path / "data" / "ehdnas" / "predictors"  # where the server looks (`launch` sets XDG_DATA_HOME)
    predictors.mkdir(parents=True)
    (predictors / "gone.pt").symlink_to(tmp_path / "nowhere.pt")
    server = launch(workers=0)
    client = server.client(TOKEN)
    problems = functools.partial(refusal, client, "benchmark", target="ort-cpu")
    for arch, message in [
        ('{"normal": 1, "reduce": 2}', "darts genotype normal: expected a list of [op, input] pairs, got 1"),
        ('{"normal": null, "reduce": null}', "darts genotype normal: expected a list of [op, input] pairs, got None"),
        ('{"normal": ' + "[" * 900 + "]" * 900 + ', "reduce": []}', "normal cell: expected 8 edges (2 per node"),
        ('{"normal": ' + "[" * 10_000 + "]" * 10_000 + "}", "darts architecture: invalid JSON (maximum recursion"),
    ]:
        assert problems(archs=[arch])[("archs", 0)].startswith(message), arch

    def answer(kind: str, spec: str) -> dict:  # as written: a JSON client would refuse to send a NaN
        body = f'{{"kind": "{kind}", "dry_run": true, "spec": {{"target": "ort-cpu", {spec}}}}}'
        response = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        return {tuple(p["loc"][3:]): (p["msg"], p["input"]) for p in response.json()["detail"]}

    finite = "Input should be a finite number"
    assert answer("collect", '"samples": NaN')[("samples",)] == (finite, "nan")
    assert answer("collect", '"samples": 5, "min_time": Infinity')[("min_time",)] == (finite, "inf")
    assert answer("collect", '"samples": 5, "max_spread": -Infinity')[("max_spread",)][1] == "-inf"
    assert ("options", "threads", "float") in answer("collect", '"samples": 5, "options": {"threads": NaN}')
    assert answer("search", '"lambdas": [0, NaN], "auto_predictor": true')[("lambdas", 1)] == (finite, "nan")
    assert answer("search", '"latency_budget_ms": Infinity')[("latency_budget_ms",)] == (finite, "inf")
    accelerator = '"target": "systolic-edge32", "samples": 1, "accelerator": {"array": [[NaN]]}'
    assert answer("benchmark", accelerator)[("accelerator", "array", "list", 0, "list", 0, "float")] == (finite, "nan")
    deep = answer("benchmark", '"archs": [' + "[" * 900 + "]" * 900 + "]")[("archs", 0)]
    assert deep[0] == "Input should be a valid string" and str(deep[1]).startswith("[[[[")  # cut short, not echoed
    whole = client.post("/v1/jobs", content="[NaN]", headers={"content-type": "application/json"})
    assert whole.status_code == 422 and whole.json()["detail"][0]["input"] == ["nan"]
    job = submit(client, "benchmark", target="ort-cpu", samples=1)["id"]  # queued: no worker runs it
    (tmp_path / "store-jobs" / str(job)).mkdir(parents=True)
    long_name = client.get(f"/v1/jobs/{job}/artifacts/{'a' * 300}")
    assert long_name.status_code == 400 and long_name.json() == {"detail": "not a valid artifact name"}
    assert client.get("/v1/predictors").json() == []  # the dangling link is no predictor


def test_benchmark_jobs_reuse_stored_measurements_and_serve_their_artifacts(launch) -> None:
    server = launch()
    client = server.client(TOKEN)
    spec = {"target": "ort-cpu", "space_options": TINY, "samples": 3, **FAST}
    first = wait_for(client, submit(client, "benchmark", **spec)["id"], finished)
    second = wait_for(client, submit(client, "benchmark", **spec)["id"], finished)
    assert first["status"] == second["status"] == "succeeded"
    assert [r["cached"] for r in first["result"]["results"]] == [False] * 3
    assert [r["cached"] for r in second["result"]["results"]] == [True] * 3
    assert [r["arch"] for r in second["result"]["results"]] == [r["arch"] for r in first["result"]["results"]]
    assert len(client.get("/v1/measurements", params={"target": "ort-cpu"}).json()) == 3
    listed = client.get("/v1/jobs", params={"kind": "benchmark", "status": "succeeded"}).json()
    assert listed["total"] == 2 and [j["result"] for j in listed["jobs"]] == [None, None]  # the list is light
    assert client.get("/v1/jobs", params={"kind": "search"}).json() == {"jobs": [], "total": 0}
    assert "result.json" in second["artifacts"]
    artifact = client.get(f"/v1/jobs/{first['id']}/artifacts/result.json")
    assert artifact.status_code == 200 and artifact.json()["target"] == "ort-cpu"
    for name in ("..%2F..%2Fstore.db", "..%2F2%2Fresult.json", "%2Fetc%2Fpasswd"):
        assert client.get(f"/v1/jobs/{first['id']}/artifacts/{name}").status_code == 400, name
    assert client.get(f"/v1/jobs/{first['id']}/artifacts/nothing.txt").status_code == 404
    stages = [e["data"]["stage"] for e in client.get(f"/v1/jobs/{first['id']}/events").json()]
    assert stages == ["queued", "started", "succeeded"]


def test_a_failing_job_records_a_readable_error(launch) -> None:
    server = launch()
    client = server.client(TOKEN)
    job = wait_for(client, submit(client, "train_predictor", target="ort-cpu", space_options=TINY)["id"], finished)
    assert job["status"] == "failed"
    assert job["error"].startswith("only 0 measurements; at least 50 are needed")


def _job_process(server: LocalServer) -> psutil.Process:
    """The process running the job: the grandchild of `serve` (serve -> worker -> job)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for worker in psutil.Process(server.process.pid).children():
            if worker.children():
                return worker.children()[0]
        time.sleep(0.1)
    raise AssertionError("no job process")
