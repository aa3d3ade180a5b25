"""A property-based run of schemathesis against the job server's own OpenAPI schema: any server error (5xx)?

Starts a real `ehdnas serve` (one worker) on a fresh store, runs one small
benchmark job so that a job with artifacts exists, then lets schemathesis
generate requests for every operation of `/openapi.json` (examples, coverage,
fuzzing and stateful phases: it follows links such as submit -> get -> cancel)
with the `not_a_server_error` check. Target (issue 7): no 5xx.

    .venv/bin/python -m benchmarks.server_fuzz [--max-examples 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import SERVER_TOKEN as TOKEN
from benchmarks.common import private_server, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200, help="examples per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ehdnas-bench-") as tmp:
        server = private_server(tmp)
        try:
            with server.client(TOKEN) as client:
                spec = {"target": "ort-cpu", "space_options": {"layers": 3, "channels": 4, "input_size": 8}}
                job = client.post("/v1/jobs", json={"kind": "benchmark", "spec": spec}).raise_for_status().json()
                while client.get(f"/v1/jobs/{job['id']}").json()["status"] in ("queued", "running"):
                    time.sleep(0.2)
            command = [
                str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/openapi.json",
                "-H", f"Authorization: Bearer {TOKEN}", "--checks", "not_a_server_error",
                "--max-examples", str(args.max_examples), "--seed", str(args.seed), "--no-color",
            ]  # fmt: skip
            started = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
            seconds = time.perf_counter() - started
            with server.client(TOKEN) as client:
                queued = client.get("/v1/jobs", params={"limit": 1}).json()["total"]
        finally:
            server.stop()
        tracebacks = (Path(tmp) / "serve.log").read_text().count("Traceback")
    summary = re.findall(r"^\s*(\d+ generated.*)$", proc.stdout, re.MULTILINE)
    print(proc.stdout[proc.stdout.find("SUMMARY") - 40 :] if proc.returncode else "")
    print(
        f"schemathesis: {summary[-1] if summary else 'no summary'} in {seconds:.0f} s; "
        f"{queued} jobs submitted along the way; {tracebacks} tracebacks in the server log"
    )
    print(f"target: no server error (5xx): {verdict(proc.returncode == 0 and tracebacks == 0)}")


if __name__ == "__main__":
    main()
