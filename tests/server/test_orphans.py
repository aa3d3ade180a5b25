"""A SIGKILLed server, or job process, takes every process below it along: a real `ehdnas serve`, nothing mocked."""

from __future__ import annotations

import psutil
import pytest

from tests.conftest import TOKEN
from tests.pipeline.test_orphans import needs_a_pool, spawned_children, survivors
from tests.server.test_server import FAST, TINY, _job_process, submit, wait_for


@pytest.mark.slow
@needs_a_pool
@pytest.mark.parametrize("victim", ["job", "serve"])
def test_a_killed_job_process_or_server_leaves_no_process_behind(launch, victim: str) -> None:
    server = launch()
    client = server.client(TOKEN)
    job_id = submit(client, "collect", target="systolic-edge32", space_options=TINY, samples=200, **FAST)["id"]
    wait_for(client, job_id, lambda job: job["progress"] > 0)  # the job's pool has measured a network
    job = _job_process(server)
    assert len(spawned_children(job)) >= 2  # the pool
    parent = job if victim == "job" else psutil.Process(server.process.pid)  # serve -> worker -> job -> pool
    tree = parent.children(recursive=True)
    parent.kill()
    if victim == "serve":
        server.process.wait(10)
    assert not survivors(tree, timeout=5)
