#!/usr/bin/env python3
"""Build the image and check that it serves, on this machine's container engine: what `make image-check` runs.

Each step says how long it took: the base image (local/debian:bookworm is made with debootstrap when it is absent,
its root file system cached), the compose file validated, the build, a container started on the host's network, its
health check passing, then a benchmark job submitted over HTTP, waited for and read back. The container is removed
at the end, whatever happened. Standard library only, so that it runs before anything is installed.

    docker/check.py [--dockerd DIR] [--build-only] [--engine podman] [--base IMAGE] [--extras server,postgres]

`--dockerd DIR` first starts a private dockerd (its socket, images and state under DIR, which is kept for the next
run) where none runs, and stops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCAL_BASE = "local/debian:bookworm"
DEBOOTSTRAP = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm"]
# The job: three networks of a tiny DARTS space measured on ONNX Runtime, with a short timing protocol.
JOB = {
    "kind": "benchmark",
    "spec": {
        "target": "ort-cpu",
        "samples": 3,
        "space_options": {"layers": 3, "channels": 4, "input_size": 8},
        "repeats": 3,
        "min_time": 0,
        "warmup": 1,
    },
}


class CheckFailed(Exception):
    """A step that did not do what it should; its message is the one line the check ends with."""


def say(line: str) -> None:
    print(f"check: {line}", flush=True)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Time the step and say so: `NAME: 12.3 s`."""
    start = time.monotonic()
    yield
    say(f"{name}: {time.monotonic() - start:.1f} s")


def run(*command: str | Path, capture: bool = False, env: dict[str, str] | None = None) -> str:
    """Run a command (its output shown, or returned with `capture`); a failure is a `CheckFailed` naming it."""
    done = subprocess.run([str(part) for part in command], text=True, capture_output=capture, env=env)
    if done.returncode != 0:
        said = (done.stderr or done.stdout or "").strip().splitlines() if capture else []
        detail = f": {said[-1]}" if said else ""
        raise CheckFailed(f"`{' '.join(map(str, command[:3]))} ...` exited {done.returncode}{detail}")
    return done.stdout.strip() if capture else ""


def succeeds(*command: str) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@contextlib.contextmanager
def private_dockerd(folder: Path) -> Iterator[None]:
    """A dockerd of our own, without iptables or a bridge (builds and containers use the host's network)."""
    if shutil.which("dockerd") is None:
        raise CheckFailed("--dockerd needs dockerd: `apt-get install docker.io` (as root)")
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    host = f"unix://{folder / 'docker.sock'}"
    command = ["dockerd", f"--host={host}", f"--data-root={folder / 'data'}", f"--exec-root={folder / 'exec'}",
               f"--pidfile={folder / 'dockerd.pid'}", "--iptables=false", "--bridge=none"]  # fmt: skip
    log = folder / "dockerd.log"
    with log.open("ab") as sink:
        daemon = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    os.environ["DOCKER_HOST"] = host
    try:
        with step(f"dockerd started ({host})"):
            deadline = time.monotonic() + 60
            while not succeeds("docker", "info"):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    said = log.read_text(errors="replace").strip().splitlines()
                    raise CheckFailed(f"dockerd did not start (its log: {log}): {said[-1] if said else 'nothing'}")
                time.sleep(0.5)
        yield
    finally:
        daemon.terminate()
        daemon.wait(60)


def base_image(engine: str, base: str) -> None:
    """The base image, if it is absent and is the local one: debootstrap's root file system (cached), imported."""
    if succeeds(engine, "image", "inspect", base):
        say(f"base image {base}: present")
        return
    if base != LOCAL_BASE:
        say(f"base image {base}: absent, the build pulls it")
        return
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ehdnas" / "debian-bookworm.tar"
    with step(f"base image {base} made"):
        if not cache.is_file():
            if shutil.which("debootstrap") is None:
                raise CheckFailed(f"no {base} and no debootstrap to make it: `apt-get install debootstrap` (as root)")
            cache.parent.mkdir(parents=True, exist_ok=True)
            mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
            with tempfile.TemporaryDirectory(dir=cache.parent) as work:
                rootfs, tar = Path(work) / "rootfs", Path(work) / "rootfs.tar"
                say(f"base image {base}: absent, making it with debootstrap from {mirror} (minutes)")
                with step(f"debootstrap into {rootfs}"):
                    run(*DEBOOTSTRAP, rootfs, mirror, capture=True)
                run("tar", "-C", rootfs, "-cf", tar, ".")
                tar.replace(cache)
        run(engine, "import", cache, base, capture=True)


def torch_wheel(folders: str) -> None:
    """Copy torch's CPU wheel (the version constraints.txt pins) from one of `folders` into the build context."""
    version = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert version, "constraints.txt pins torch"
    context = ROOT / "docker" / "wheels"
    for folder in map(Path, folders.split()):
        for wheel in sorted(folder.glob(f"torch-{version[1]}+cpu-*.whl")):
            if not (context / wheel.name).is_file():
                shutil.copy(wheel, context / wheel.name)
            say(f"torch wheel: {wheel.name} from {folder}")
            return
    say("torch wheel: none found, the build takes the CPU index")


def ca_bundle(bundle: str) -> None:
    """The CA bundle pip trusts in the build (docker/certs/ca.pem): `bundle`, or none (the base image's CAs)."""
    context = ROOT / "docker" / "certs" / "ca.pem"
    if bundle:
        shutil.copy(bundle, context)
        say(f"CA bundle for pip in the build: {bundle}")
    else:
        context.unlink(missing_ok=True)


def validate_compose(engine: str) -> None:
    """`docker compose config` on docker/compose.yaml, where the compose plugin is installed."""
    if not succeeds(engine, "compose", "version"):
        say(f"compose file: not validated (no `{engine} compose` here)")
        return
    version = run(engine, "compose", "version", "--short", capture=True)
    run(engine, "compose", "-f", ROOT / "docker" / "compose.yaml", "config", "--quiet", capture=True)
    say(f"compose file: valid (Compose {version})")


def build(engine: str, image: str, base: str, extras: str | None) -> None:
    args = ["--build-arg", f"BASE_IMAGE={base}"] + (["--build-arg", f"EXTRAS={extras}"] if extras else [])
    if engine == "podman":
        args += ["--format", "docker"]  # podman's default, the OCI format, has no HEALTHCHECK
    with step(f"image {image} built"):
        run(engine, "build", "--network", "host", "-f", ROOT / "docker" / "Dockerfile", *args, "-t", image, ROOT)
    size = int(run(engine, "image", "inspect", "--format", "{{.Size}}", image, capture=True))
    say(f"image {image}: {size / 1e9:.2f} GB")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Api:
    """The server's HTTP API, with the token."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def call(self, method: str, path: str, body: dict | None = None, token: bool = True) -> tuple[int, Any]:
        """The answer's status and its JSON (its text, for an error status)."""
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {self.token}"} if token else {})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except urllib.error.URLError as err:
            raise CheckFailed(f"{method} {path}: {err.reason}") from None


def healthy(engine: str, name: str, timeout: float) -> None:
    """Wait for the image's own health check to pass (docker runs it; podman, asked, runs it once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(run(engine, "inspect", "--format", "{{json .State}}", name, capture=True))
        if state["Status"] != "running":
            raise CheckFailed(f"the container stopped ({state['Status']}, exit code {state.get('ExitCode')})")
        if engine == "podman" and succeeds("podman", "healthcheck", "run", name):
            return
        if (state.get("Health") or {}).get("Status") == "healthy":
            return
        time.sleep(0.5)
    raise CheckFailed(f"the container was not healthy within {timeout:g} s")


def serve_a_job(engine: str, image: str, port: int) -> None:
    """Start the image, wait for it to be healthy, submit a benchmark job, wait for it and read it back."""
    name = f"ehdnas-check-{os.getpid()}"
    token = secrets.token_urlsafe(24)
    # The token goes in by name (`--env NAME`), from this process's environment: it is in no command line.
    env = {**os.environ, "EHDNAS_API_TOKEN": token, "EHDNAS_PORT": str(port), "EHDNAS_HOST": "127.0.0.1"}
    settings = [arg for var in ("EHDNAS_API_TOKEN", "EHDNAS_PORT", "EHDNAS_HOST") for arg in ("--env", var)]
    start = time.monotonic()
    run(engine, "run", "--detach", "--name", name, "--network", "host", "--health-interval", "1s", *settings, image,
        capture=True, env=env)  # fmt: skip
    try:
        healthy(engine, name, timeout=180)
        say(f"container healthy: {time.monotonic() - start:.1f} s after start")
        user = run(engine, "exec", name, "id", "-un", capture=True)
        if user == "root":
            raise CheckFailed("the server runs as root")
        say(f"runs as: {user}")
        benchmark_job(Api(f"http://127.0.0.1:{port}", token))
    except CheckFailed:
        logs = subprocess.run([engine, "logs", "--tail", "20", name], capture_output=True, text=True)
        print(logs.stdout + logs.stderr, file=sys.stderr)
        raise
    finally:
        subprocess.run([engine, "rm", "--force", name], capture_output=True)


def benchmark_job(api: Api) -> None:
    """A request without the token is refused; the job is submitted, waited for, and its result.json read back."""
    status, _ = api.call("GET", "/v1/jobs", token=False)
    if status != 401:
        raise CheckFailed(f"GET /v1/jobs without the token answered {status}, not 401")
    status, job = api.call("POST", "/v1/jobs", JOB)
    if status != 201:
        raise CheckFailed(f"POST /v1/jobs answered {status}: {job}")
    submitted = time.monotonic()
    while job["status"] in ("queued", "running"):
        if time.monotonic() - submitted > 300:
            raise CheckFailed(f"job {job['id']} still {job['status']} after 300 s: {job['message']}")
        time.sleep(0.5)
        _, job = api.call("GET", f"/v1/jobs/{job['id']}")
    if job["status"] != "succeeded":
        raise CheckFailed(f"job {job['id']} {job['status']}: {job['error']}")
    say(f"job {job['id']} succeeded: {time.monotonic() - submitted:.1f} s after submission")
    status, stored = api.call("GET", f"/v1/jobs/{job['id']}/artifacts/result.json")
    results = job["result"]["results"]
    if status != 200 or stored != job["result"] or len(results) != JOB["spec"]["samples"]:
        raise CheckFailed(f"job {job['id']}'s result.json ({status}) is not the result the job shows")
    medians = ", ".join(f"{r['latency_ms']['median']:.3f}" for r in results)
    say(f"read back: {job['result']['target']}, {len(results)} networks, median latency {medians} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default=os.environ.get("ENGINE", "docker"), choices=["docker", "podman"],
                        help="the container engine's command [$ENGINE, else docker]")  # fmt: skip
    parser.add_argument("--image", default="ehdnas:check", help="the tag to build [ehdnas:check]")
    parser.add_argument("--base", default=LOCAL_BASE, help=f"the base image [{LOCAL_BASE}, made when absent]")
    parser.add_argument("--extras", help="the project's extras in the image [the Dockerfile's: server]")
    parser.add_argument("--torch-wheels", default=os.environ.get("PIP_FIND_LINKS", ""),
                        help="folders holding torch's CPU wheel [$PIP_FIND_LINKS; none: the CPU index]")  # fmt: skip
    parser.add_argument("--ca-bundle", default=os.environ.get("PIP_CERT", ""),
                        help="the CA bundle pip trusts in the build [$PIP_CERT; none: the base image's]")  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="the server's port on the host [a free one]")
    parser.add_argument("--dockerd", type=Path, metavar="DIR", help="start a private dockerd in DIR first")
    parser.add_argument("--build-only", action="store_true", help="build the image, start nothing")
    args = parser.parse_args()
    if args.dockerd and args.engine != "docker":
        parser.error("--dockerd starts a Docker engine: not with --engine podman")
    try:
        with private_dockerd(args.dockerd) if args.dockerd else contextlib.nullcontext():
            if not succeeds(args.engine, "info"):
                raise CheckFailed(f"no {args.engine} engine answers (`{args.engine} info`): see docs/docker.md")
            base_image(args.engine, args.base)
            validate_compose(args.engine)
            torch_wheel(args.torch_wheels)
            ca_bundle(args.ca_bundle)
            build(args.engine, args.image, args.base, args.extras)
            if not args.build_only:
                serve_a_job(args.engine, args.image, args.port or free_port())
    except CheckFailed as err:
        say(f"failed: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
