"""Jobs on Ray: a real `ehdnas serve --executor ray` over HTTP, on a real local Ray (its own, or the test's)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import psutil
import pytest

from server.local import free_port
from tests.conftest import TOKEN, run_main
from tests.server.test_server import FAST, TINY, finished, submit, wait_for


@pytest.fixture
def ray_temp_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A temp dir for Ray's session; short, for Ray's sockets live under it and a Unix socket's path has 107 bytes."""
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)
    yield temp_dir
    shutil.rmtree(temp_dir, ignore_errors=True)


def _task_processes(job_id: int) -> list[psutil.Process]:
    """The processes running the job's Ray task: Ray titles them after the task's name."""
    title = f"ray::ehdnas-job-{job_id}"
    return [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [""])[0] == title]


@pytest.mark.slow
def test_jobs_run_as_ray_tasks_on_a_ray_of_the_servers_own_and_a_cancel_ends_the_task(
    ray_temp_dir: str, launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # where Ray would write a token of its making
    monkeypatch.setenv("EHDNAS_RAY__SEARCH_GPUS", "64")  # more than any node has
    server = launch(args=("--executor", "ray"))  # `launch` checks at the end that nothing is left running
    assert "running jobs on a Ray of its own (" in server.log.read_text()
    client = server.client(TOKEN)
    # A search reserves the GPUs: it waits, says for what, and is cancelled as it waits.
    search = {"target": "ort-cpu", "space_options": TINY, "auto_predictor": True, "auto_samples": 50, "epochs": 1}
    waiting = submit(client, "search", **search)["id"]
    job = wait_for(client, waiting, lambda job: job["message"].startswith("waiting"), timeout=60)
    assert job["status"] == "running" and job["message"] == "waiting for a Ray node with 64 GPU"
    assert client.post(f"/v1/jobs/{waiting}/cancel").status_code == 202
    assert wait_for(client, waiting, finished, timeout=30)["status"] == "cancelled"
    # One runs to its end, its progress, events and artifacts written by its task as a local job's process writes them.
    done = wait_for(client, submit(client, "benchmark", target="ort-cpu", space_options=TINY, samples=2, **FAST)["id"],
                    finished, timeout=120)  # fmt: skip
    assert (done["status"], done["progress"], done["message"]) == ("succeeded", 1.0, "done"), done
    assert [r["cached"] for r in done["result"]["results"]] == [False, False]
    stages = [e["data"]["stage"] for e in client.get(f"/v1/jobs/{done['id']}/events").json()]
    assert stages == ["queued", "started", "succeeded"]
    assert "result.json" in client.get(f"/v1/jobs/{done['id']}").json()["artifacts"]
    # A long one reports progress from its task; a cancel kills the task's process.
    long = submit(client, "collect", target="ort-cpu", space_options=TINY, samples=5000, **FAST)["id"]
    job = wait_for(client, long, lambda job: job["progress"] > 0, timeout=120)
    assert job["message"].startswith("measured ") and job["status"] == "running"
    tasks = _task_processes(long)
    assert len(tasks) == 1
    assert client.post(f"/v1/jobs/{long}/cancel").status_code == 202
    assert wait_for(client, long, finished, timeout=30)["status"] == "cancelled"
    _, alive = psutil.wait_procs(tasks, timeout=10)
    assert not alive, alive
    stages = [e["data"]["stage"] for e in client.get(f"/v1/jobs/{long}/events").json()]
    assert stages == ["queued", "started", "cancelled"]
    assert not (tmp_path / "home" / ".ray").exists()


@pytest.fixture
def ray_cluster(ray_temp_dir: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A one-node Ray cluster started as an operator starts one (`ray start --head`), in its own processes; its
    address. Its node holds the device a search on systolic-edge32 reserves, declared as an operator would."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "a-token-for-this-test-0123456789")  # the cluster's, which the server reads
    port = free_port()
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--port", str(port),
               "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--include-dashboard", "false",
               "--object-store-memory", str(80 * 2**20), "--temp-dir", ray_temp_dir,
               "--resources", json.dumps({"target:systolic-edge32": 1})]  # fmt: skip
    head = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(address):
            assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every Ray process it started
        head.wait(30)


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_a_search_runs_to_its_end_on_a_ray_cluster_the_server_joins_watched_by_the_client(
    ray_cluster: str, launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHDNAS_API_TOKEN", TOKEN)  # the client's
    server = launch(args=("--executor", "ray", "--ray-address", ray_cluster))
    assert f"running jobs on Ray at {ray_cluster};" in server.log.read_text()
    spec = tmp_path / "search.json"
    search = {"target": "systolic-edge32", "space_options": TINY, "auto_predictor": True, "auto_samples": 50,
              "epochs": 1, "retrain_epochs": 1, "batch_size": 256}  # fmt: skip
    spec.write_text(json.dumps(search))
    submitted = run_main("jobs", "submit", "search", "--spec", str(spec), "--json", "--server", server.url)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    watched = run_main("jobs", "watch", str(job_id), "--server", server.url)
    assert watched.returncode == 0, watched.stderr
    job = server.client(TOKEN).get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["result"]["measured_latency_ms"]["n"] >= 1
    assert " search " in watched.stdout and " done " in watched.stdout  # its events, as they came
    assert "model.onnx" in job["artifacts"]


def test_a_job_reserves_cpus_a_search_its_gpus_and_a_measuring_job_its_targets_device() -> None:
    from server.jobs import Job
    from server.ray_executor import needs
    from server.settings import RaySettings

    def job(kind: str) -> Job:
        return Job(id=1, kind=kind, spec={"target": "edgetpu"}, status="running", progress=0.0, message="",
                   created_at=0.0, started_at=None, finished_at=None, heartbeat_at=None, worker=None, attempts=1,
                   cancel_requested=False, error=None, result=None)  # fmt: skip

    settings = RaySettings(cpus=2, search_gpus=0.5)
    assert needs(job("search"), settings) == {"CPU": 2, "GPU": 0.5, "target:edgetpu": 1}
    assert needs(job("search"), RaySettings()) == {"CPU": 1, "target:edgetpu": 1}
    assert needs(job("benchmark"), settings) == needs(job("collect"), settings) == {"CPU": 2, "target:edgetpu": 1}
    assert needs(job("train_predictor"), settings) == {"CPU": 2}  # it times nothing


def test_a_ray_address_nothing_listens_on_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHDNAS_API_TOKEN", TOKEN)
    address = f"127.0.0.1:{free_port()}"
    db = f"sqlite:///{tmp_path / 'store.db'}"
    start = time.monotonic()
    proc = run_main("serve", "--port", "0", "--executor", "ray", "--ray-address", address, db=db)
    assert proc.returncode == 2 and time.monotonic() - start < 30
    assert proc.stderr.strip() == f"error: Ray address {address!r}: cannot connect: Connection refused", proc.stderr
    for bad in ("nowhere", "host:port", "ray://host:10001"):
        proc = run_main("serve", "--port", "0", "--executor", "ray", "--ray-address", bad, db=db)
        assert proc.stderr.strip().endswith("expected HOST:PORT or auto"), proc.stderr
    proc = run_main("serve", "--port", "0", "--ray-address", address, db=db)
    assert proc.stderr.strip() == "error: --ray-address is for --executor ray (or EHDNAS_EXECUTOR=ray)"


def test_without_the_ray_extra_the_ray_executor_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHDNAS_API_TOKEN", TOKEN)
    with mock.patch.dict(sys.modules, {"ray": None}):  # as if not installed (restored after)
        sys.modules.pop("server.ray_executor", None)
        proc = run_main("serve", "--port", "0", "--executor", "ray", db=f"sqlite:///{tmp_path / 'store.db'}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --executor ray needs the ray extra: pip install 'ehdnas[ray]'"
