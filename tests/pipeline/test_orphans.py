"""A SIGKILLed `ehdnas collect` takes its measuring pool along: real processes, nothing mocked."""

from __future__ import annotations

import os
import subprocess
import time

import psutil
import pytest

from tests.cli.test_cli import SMALL_DARTS
from tests.conftest import EHDNAS, FAST

SAMPLES = 200  # enough for a pool of workers, measuring for most of a minute on a simulated target
needs_a_pool = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="on one core, collect measures without a pool")


def spawned_children(parent: psutil.Process) -> list[psutil.Process]:
    """`parent`'s children started by multiprocessing's spawn (its resource tracker is not one)."""
    found = []
    for child in parent.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # ended meanwhile
            pass
    return found


def survivors(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of `processes` still running after `timeout` s; they are killed (a failed test leaves none behind)."""

    def running(process: psutil.Process) -> bool:
        try:  # a zombie has ended: only its exit status is left, for whoever adopted it
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + timeout
    while (alive := [p for p in processes if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in alive:
        process.kill()
    return alive


@pytest.mark.slow
@needs_a_pool
def test_a_killed_collect_leaves_no_process_behind(db_url: str) -> None:
    args = [*EHDNAS, "collect", *SMALL_DARTS, "-t", "systolic-edge32", "--samples", str(SAMPLES), *FAST]
    cli = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "EHDNAS_DB": db_url}
    )
    assert cli.stderr is not None
    for line in cli.stderr:
        if line.startswith("[1/"):  # the pool has measured a network
            break
    parent = psutil.Process(cli.pid)
    assert len(spawned_children(parent)) >= 2  # the pool
    tree = parent.children(recursive=True)  # the pool's workers, and multiprocessing's resource tracker
    cli.kill()
    cli.wait(10)
    assert not survivors(tree, timeout=5)
