"""The image as an operator builds it: `docker/check.py` builds, runs and checks it on the container engine that runs
here. It never starts one (`docker/check.py --dockerd DIR` does, by hand: docs/docker.md); without one it is skipped."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def running_engine() -> str | None:
    """`docker` if a Docker engine answers (as DOCKER_HOST names it), else `podman` if podman works, else None."""
    for engine in filter(shutil.which, ("docker", "podman")):
        try:
            if subprocess.run([engine, "info"], capture_output=True, timeout=30).returncode == 0:
                return engine
        except subprocess.TimeoutExpired:
            pass
    return None


@pytest.mark.slow
def test_the_image_builds_serves_its_health_check_and_runs_a_benchmark_job() -> None:
    engine = running_engine()
    if engine is None:
        pytest.skip("no container engine is running here (`docker info` and `podman info` failed)")
    check = subprocess.run([sys.executable, str(ROOT / "docker" / "check.py"), "--engine", engine],
                           capture_output=True, text=True, timeout=3600)  # fmt: skip
    lines = check.stdout.splitlines()
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert "check: runs as: ehdnas" in lines
    assert any(line.startswith("check: read back: ort-cpu, 3 networks, median latency ") for line in lines), lines
