"""The job queue on SQLite and on a real PostgreSQL; a real `ehdnas serve` on PostgreSQL runs a job to its end."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.jobs import MAX_ATTEMPTS, JobStore
from server.local import start_server
from tests.conftest import TOKEN
from tests.server.test_server import FAST, TINY, finished, submit, wait_for


def stages(jobs: JobStore, job_id: int, after: int = 0) -> list[str]:
    return [event["data"]["stage"] for event in jobs.events(job_id, after)]


def test_competing_workers_claim_each_job_once_oldest_first(store_url: str) -> None:
    jobs = JobStore(store_url)
    submitted = [jobs.submit("benchmark", {"n": i}).id for i in range(40)]

    def claim_all(worker: str) -> list[int]:
        mine = JobStore(store_url)  # an engine of its own, as each worker process has
        claimed = []
        while (job := mine.claim(worker)) is not None:
            claimed.append(job.id)
        return claimed

    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(claim_all, [f"w{i}" for i in range(4)]))
    assert sorted(i for claimed in claims for i in claimed) == submitted  # each exactly once
    assert all(claimed == sorted(claimed) for claimed in claims)  # the oldest queued first
    assert all(jobs.get(i).status == "running" and jobs.get(i).attempts == 1 for i in submitted)
    assert jobs.claim("late") is None


def test_cancel_finish_requeue_and_events_are_conditional(store_url: str) -> None:
    jobs = JobStore(store_url)
    queued, running, stale = (jobs.submit("collect", {"n": i}).id for i in range(3))
    assert jobs.request_cancel(queued) == "cancelled" and jobs.claim("w").id == running  # a queued job: at once
    assert jobs.request_cancel(running) == "running" and jobs.get(running).cancel_requested
    assert not jobs.succeed(running, "someone-else", {}) and jobs.cancelled(running, "w")
    assert not jobs.succeed(running, "w", {})  # too late: it was cancelled
    assert stages(jobs, running) == ["queued", "started", "cancelled"]
    seen = jobs.events(stale)[-1]["id"]
    for _ in range(MAX_ATTEMPTS):  # its worker stops writing heartbeats, every time
        assert jobs.claim("w").id == stale and jobs.report(stale, "w", 0.5, "halfway")
        time.sleep(0.05)
        assert jobs.requeue_stale(0.01) == [stale]
    assert jobs.get(stale).status == "failed" and jobs.get(stale).error.endswith(f"after {MAX_ATTEMPTS} attempts")
    assert stages(jobs, stale, after=seen) == ["started", "requeued"] * (MAX_ATTEMPTS - 1) + ["started", "failed"]
    assert jobs.count(status="cancelled") == 2 and [job.id for job in jobs.list()] == [stale, running, queued]


@pytest.mark.slow
def test_a_server_on_postgresql_runs_a_benchmark_job_to_its_end(postgres_url: str, tmp_path: Path) -> None:
    env = {"EHDNAS_API_TOKEN": TOKEN, "XDG_DATA_HOME": str(tmp_path / "data")}
    server = start_server(postgres_url, tmp_path / "serve.log", workers=1, env=env)
    try:
        client = server.client(TOKEN)
        spec = {"target": "ort-cpu", "space_options": TINY, "samples": 2, **FAST}
        job = wait_for(client, submit(client, "benchmark", **spec)["id"], finished)
        assert job["status"] == "succeeded" and job["progress"] == 1.0, job["error"]
        measured = {r["arch"] for r in job["result"]["results"]}
        listed = client.get("/v1/measurements", params={"target": "ort-cpu"}).json()
        assert len(measured) == 2 and {m["arch"] for m in listed} == measured  # stored in PostgreSQL
        events = client.get(f"/v1/jobs/{job['id']}/events").json()
        assert [e["data"]["stage"] for e in events] == ["queued", "started", "succeeded"]
        assert (tmp_path / "data" / "ehdnas" / "jobs" / str(job["id"]) / "result.json").is_file()
    finally:
        assert server.stop() == 0, (tmp_path / "serve.log").read_text()
