"""The job server under polling load while a CPU-heavy search runs: response times and errors.

Starts a real `ehdnas serve` (one worker) on a fresh store, submits a search
(systolic-edge32, its predictor trained by the job itself) and waits until the
supernet is training, then runs `--clients` concurrent clients on loopback for
`--seconds`, each polling `GET /v1/jobs/{id}` and waiting `--interval` seconds
between polls (0: as fast as answers come), starting at random within the first
interval. The load generator runs on the same cores as the server and the
search. Target (issue 7): no errors, p99 under 100 ms with 50 clients for 30 s.

    .venv/bin/python -m benchmarks.server_load [--clients 50] [--seconds 30] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time

import httpx
import numpy as np
import psutil

from benchmarks.common import SERVER_TOKEN as TOKEN
from benchmarks.common import private_server, verdict

SEARCH = {
    "target": "systolic-edge32", "space_options": {"layers": 5, "channels": 8, "input_size": 16},
    "auto_predictor": True, "auto_samples": 100, "epochs": 50, "retrain_epochs": 5,
}  # fmt: skip


async def poll(
    client: httpx.AsyncClient, path: str, until: float, interval: float, latencies: list[float], errors: list[str]
) -> None:
    await asyncio.sleep(random.uniform(0, interval))  # independent clients: not all in step
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await client.get(path)
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}")
        except httpx.HTTPError as err:
            errors.append(type(err).__name__)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(interval)


async def load(url: str, path: str, clients: int, seconds: float, interval: float) -> tuple[list[float], list[str]]:
    """`clients` connected clients (connected first, untimed: making 50 httpx clients takes the generator ~1 s)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    pollers = [httpx.AsyncClient(base_url=url, headers=headers, timeout=10) for _ in range(clients)]
    await asyncio.gather(*(client.get(path) for client in pollers))
    latencies: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(poll(client, path, until, interval, latencies, errors) for client in pollers))
    await asyncio.gather(*(client.aclose() for client in pollers))
    return latencies, errors


def _cpu_seconds(serve_pid: int) -> float:
    """CPU time so far of the job processes (the grandchildren of `serve`: serve -> worker -> job)."""
    total = 0.0
    for worker in psutil.Process(serve_pid).children():
        for job in worker.children():
            times = job.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds each client waits between polls")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        server = private_server(tmp)
        try:
            with server.client(TOKEN) as client:
                job = client.post("/v1/jobs", json={"kind": "search", "spec": SEARCH}).raise_for_status().json()
                print(f"search job {job['id']} submitted; waiting for the supernet to train ...", flush=True)
                while not (state := client.get(f"/v1/jobs/{job['id']}").json())["message"].startswith("search"):
                    assert state["status"] in ("queued", "running"), state
                    time.sleep(0.5)
                before, search_cpu = state["message"], _cpu_seconds(server.process.pid)
                latencies, errors = asyncio.run(
                    load(server.url, f"/v1/jobs/{job['id']}", args.clients, args.seconds, args.interval)
                )
                search_cpu = _cpu_seconds(server.process.pid) - search_cpu
                after = client.get(f"/v1/jobs/{job['id']}").json()
                client.post(f"/v1/jobs/{job['id']}/cancel")
        finally:
            server.stop()
        ms = np.array(latencies) * 1000
        print(
            f"{args.clients} clients, {args.seconds:g} s, {args.interval:g} s between polls, while the search ran "
            f"({before} -> {after['status']}, {after['message']}; it used {search_cpu:.0f} CPU-seconds of "
            f"{args.seconds * (os.cpu_count() or 1):.0f}):\n"
            f"  {len(ms)} requests ({len(ms) / args.seconds:.0f}/s), {len(errors)} errors"
            f"{' (' + ', '.join(sorted(set(errors))) + ')' if errors else ''}\n"
            f"  response time ms: median {statistics.median(ms):.1f}, p90 {np.percentile(ms, 90):.1f}, "
            f"p99 {np.percentile(ms, 99):.1f}, max {ms.max():.1f}"
        )
        ok = not errors and np.percentile(ms, 99) < 100
        print(f"target: no errors and p99 < 100 ms: {verdict(ok)}")


if __name__ == "__main__":
    main()
