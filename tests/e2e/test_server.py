"""End to end (slow), beside tests/server/test_server.py: the job server as users run it: a real `ehdnas serve`
(uvicorn, worker processes, a SQLite file) over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backends import TimingProtocol, get_target
from ehdnas.pipeline.export import export_arch
from ehdnas.spaces import get_space
from tests.conftest import ROOT
from tests.server.test_server import FAST, TINY, TOKEN, _job_process, finished, submit, wait_for  # noqa: F401

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


@pytest.mark.slow
def test_a_search_job_runs_end_to_end_and_shows_its_plot(launch) -> None:
    server = launch()
    client = server.client(TOKEN)
    spec = {"target": "systolic-edge32", "space_options": TINY, "auto_predictor": True, "auto_samples": 50,
            "epochs": 2, "retrain_epochs": 1, "batch_size": 256}  # fmt: skip
    job = wait_for(client, submit(client, "search", **spec)["id"], finished, timeout=400)
    assert job["status"] == "succeeded", job["error"]
    assert {"model.onnx", "genotype.txt", "weights.pt", "search.png", "result.json"} <= set(job["artifacts"])
    assert job["result"]["target"] == "systolic-edge32" and job["result"]["measured_latency_ms"]["median"] > 0
    stages = [e["data"]["stage"] for e in client.get(f"/v1/jobs/{job['id']}/events").json()]
    assert stages.count("search") == 2 and stages.count("retrain") == 1 and stages[-1] == "succeeded"
    saved = client.get("/v1/predictors").json()
    assert [p["target"] for p in saved] == ["systolic-edge32"]  # auto_predictor saved it where searches look
    named = {**spec, "auto_predictor": False, "predictor": saved[0]["file"], "epochs": 1}
    again = wait_for(client, submit(client, "search", **named)["id"], finished, timeout=400)
    assert again["status"] == "succeeded", again["error"]
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        browser.get(f"/?token={TOKEN}")
        page = browser.get(f"/jobs/{job['id']}").text  # the job's page, linked from the list
        assert f'<a href="/jobs/{job["id"]}">' in browser.get("/").text
        plot = f"/v1/jobs/{job['id']}/artifacts/search.png"
        assert plot in page and "test accuracy" in page
        image = browser.get(plot)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


@pytest.mark.slow
def test_a_flownas_search_job_meets_a_measured_budget(launch, tmp_path: Path) -> None:
    space_options = {"input_height": 32, "input_width": 32}
    space, runner = get_space("flownas", space_options), get_target("systolic-edge32")
    ends = [
        runner.measure(export_arch(space, arch, tmp_path / f"{i}.onnx"), TimingProtocol()).latency_ms.median
        for i, arch in enumerate((space.smallest(), space.largest()))
    ]
    budget = sum(ends) / 2  # rules out part of the space, never all of it
    server = launch()
    client = server.client(TOKEN)
    evolution = {"population": 4, "generations": 2, "parents": 2, "mutations": 2, "crossovers": 2}
    spec = {"target": "systolic-edge32", "space": "flownas", "space_options": space_options,
            "latency_budget_ms": budget, "latency_from": "measured", "pairs": [8, 4, 4], "teacher_epochs": 1,
            "epochs": 1, "batch_size": 4, "evolution": evolution}  # fmt: skip
    seen: list[float] = []
    job = wait_for(client, submit(client, "search", **spec)["id"], lambda j: seen.append(j["progress"]) or finished(j),
                   timeout=600)  # fmt: skip
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and seen == sorted(seen)  # never backwards
    result = job["result"]
    assert result["meets_budget_measured"] and result["measured_latency_ms"]["median"] <= budget
    assert result["latency_budget_ms"] == budget and result["settings"]["latency"] == "measured"
    assert {"pareto.png", "encoder.onnx", "encoder.txt", "teacher.pt", "supernet.pt", "result.json"} <= set(
        job["artifacts"]
    )
    for name in ("pareto.png", "encoder.onnx"):
        artifact = client.get(f"/v1/jobs/{job['id']}/artifacts/{name}")
        assert artifact.status_code == 200 and len(artifact.content) > 0, name
    events = [e["data"] for e in client.get(f"/v1/jobs/{job['id']}/events").json()]
    stages = [e["stage"] for e in events]
    assert stages == ["queued", "started", "flow-train", "supernet", "evolution", "evolution", "done", "succeeded"]
    assert [e["generation"] for e in events if e["stage"] == "evolution"] == [1, 2]
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        browser.get(f"/?token={TOKEN}")
        page = browser.get("/").text
        assert f"budget {budget} ms (measured)" in page and "(budget met)" in page and "test EPE" in page


@pytest.mark.slow
def test_cancel_stops_a_running_job_within_seconds_and_a_queued_one_at_once(launch) -> None:
    server = launch()
    client = server.client(TOKEN)
    running = submit(client, "collect", target="ort-cpu", space_options=TINY, samples=2000, **FAST)["id"]
    queued = submit(client, "benchmark", target="ort-cpu", space_options=TINY, **FAST)["id"]
    wait_for(client, running, lambda job: job["progress"] > 0)
    assert client.post(f"/v1/jobs/{queued}/cancel").json()["status"] == "cancelled"
    asked = time.monotonic()
    assert client.post(f"/v1/jobs/{running}/cancel").status_code == 202
    job = wait_for(client, running, finished, timeout=10)
    assert job["status"] == "cancelled" and time.monotonic() - asked < 5
    assert client.post(f"/v1/jobs/{running}/cancel").status_code == 409
    kept = len(client.get("/v1/measurements", params={"limit": 1000}).json())
    assert kept > 0  # what was measured before the cancel stays in the store
    time.sleep(1)
    assert len(client.get("/v1/measurements", params={"limit": 1000}).json()) == kept  # and nothing runs on
    assert client.get(f"/v1/jobs/{queued}").json()["started_at"] is None


@pytest.mark.slow
def test_a_killed_worker_and_a_killed_server_lose_nothing(launch) -> None:
    server = launch()
    client = server.client(TOKEN)
    collect = submit(client, "collect", target="ort-cpu", space_options=TINY, samples=80, **FAST)["id"]
    later = submit(client, "benchmark", target="ort-cpu", space_options=TINY, samples=2, seed=7, **FAST)["id"]
    wait_for(client, collect, lambda job: job["progress"] > 0.1)
    _job_process(server).parent().kill()  # the worker, mid-job
    job = wait_for(client, collect, lambda job: job["attempts"] == 2 and job["status"] == "running", timeout=30)
    events = [e["data"] for e in client.get(f"/v1/jobs/{collect}/events").json()]
    assert {"stage": "requeued", "reason": "its worker process died (killed by SIGKILL)"} in events
    wait_for(client, collect, lambda job: job["progress"] > 0.3)
    server.kill_all()  # serve, workers and the job process at once: nobody records anything

    restarted = launch()
    client = restarted.client(TOKEN)
    assert [j["id"] for j in client.get("/v1/jobs").json()["jobs"]] == [later, collect]
    job = wait_for(client, collect, finished, timeout=300)  # requeued once its heartbeat is stale
    assert job["status"] == "succeeded" and job["attempts"] == 3
    assert job["result"]["samples"] == 80 and 0 < job["result"]["measured"] < 80  # resumed, not restarted
    assert wait_for(client, later, finished)["status"] == "succeeded"
    archs = {m["arch"] for m in client.get("/v1/measurements", params={"limit": 1000}).json()}
    assert len(archs) == 82


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(launch, tmp_path: Path) -> None:
    """A property-based run over the server's own OpenAPI schema (benchmarks/server_fuzz.py runs it longer), then one
    over job submissions whose bodies hold NaN, infinities and wrong-typed values nested deep (HOOKS)."""
    server = launch(workers=0)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [str(schemathesis), "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {TOKEN}",
               "--checks", "not_a_server_error", "--seed", "1", "--no-color"]  # fmt: skip
    hooked = {"SCHEMATHESIS_HOOKS": str(HOOKS), "PYTHONPATH": str(ROOT)}  # the hooks import tests.strategies
    for args, env in [
        (["--max-examples", "15", "--phases", "examples,coverage,fuzzing"], {}),
        (["--include-name", "POST /v1/jobs", "--max-examples", "100", "--phases", "fuzzing"], hooked),
    ]:
        proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                              env={**os.environ, **env})  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
