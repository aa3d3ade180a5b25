"""Careless and hostile input to both faces: does anything end in a traceback, a 5xx, a leaked file or a damaged store?

Runs a list of bad `ehdnas` invocations (paths that cannot be written or are
not what they seem, numbers out of reason, wrong-shaped architectures, checks
that must come first) as real processes, and a list of bad job specs against a
real `ehdnas serve`. Target (issue 21): every CLI case exits 2 with one `error:`
line and no traceback, every HTTP case is a 4xx, no response quotes a server
file, and the store's integrity check is clean afterwards.

    .venv/bin/python -m benchmarks.bad_inputs
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import SERVER_TOKEN, private_server, verdict

SECRET = "hunter2-do-not-echo"
DARTS = ["--space", "darts", "--space-option", "layers=3", "--space-option", "channels=4"]
BENCH = ["benchmark", "-t", "systolic-edge32", *DARTS]
SEARCH = ["search", "-t", "ort-cpu", "--dry-run", "--auto-predictor", "--space-option", "layers=3"]
CLI_CASES: list[tuple[list[str], dict[str, str]]] = [
    *(([*BENCH, *flags], {}) for flags in [
        ["--samples", "1000000000"], ["--samples", "0"], ["--samples", "x"], ["--seed", "-1"], ["--seed", "99" * 10],
        ["--min-time", "nan"], ["--max-spread", "inf"], ["--repeats", "0"], ["--repeats", "99999999"], ["--nope"],
        ["--space-option", "channels=100000"], ["--space-option", "input_size=-3"],
        ["--space-option", "layers=" + "9" * 50],
        ["--arch", '{"normal": 1, "reduce": 2}'], ["--arch", "[" * 50_000], ["--arch", "normal=conv(0)"],
        ["--arch", '{"normal": null}'], ["--db", "sqlite:///{tmp}/text.txt"], ["--db", "sqlite:///{tmp}/text.txt/x.db"],
        ["--db", "nosuch://x"], ["--db", "sqlite:///{tmp}/folder"], ["--accelerator", "{tmp}/text.txt"],
        ["--accelerator", "{tmp}/nan.toml"], ["--accelerator", "{tmp}/folder"], ["-o", "accelerator={tmp}/secret.toml"],
    ]),  # fmt: skip
    *(([*SEARCH, *flags], {}) for flags in [
        ["--lambda", "nan"], ["--lambda", "0,inf"], ["--loss-form", "hinge"], ["--target-ms", "1"], ["--arch-lr", "-1"],
        ["--gumbel-tau", "-1"], ["--epochs", "100000"], ["--epochs", "1e3"], ["--predictor", "{tmp}/text.txt"],
        ["--data", "folder:{tmp}/empty"], ["--data", "cifar10:{tmp}/empty"], ["--data", "folder:{tmp}/text.txt"],
        ["-o", "threads=100000"], ["-o", "threads=nan"], ["--lambda", ",".join(["1"] * 20)], ["--auto-samples", "1"],
    ]),  # fmt: skip
    (["search", "-t", "systolic-edge32", "--method", "flownas", "--latency-budget", "nan", "--dry-run"], {}),
    (["search", "-t", "systolic-edge32", "--method", "flownas", "--latency-budget", "2", "--latency-from", "measured",
      "--data", "chairs:{tmp}/empty", "--dry-run"], {}),  # fmt: skip
    (["search", "-t", "ort-cpu", "--out", "{tmp}/text.txt", "--auto-predictor"], {}),
    (["search", "-t", "ort-cpu", "--out", "{tmp}/garbage", "--auto-predictor"], {}),
    (["train-predictor", *DARTS, "-t", "systolic-edge32", "--out", "{tmp}/folder"], {}),
    (["train-predictor", *DARTS, "-t", "systolic-edge32", "--kinds", "forest"], {}),
    (["collect", *DARTS, "-t", "systolic-edge32", "--samples", "5", "--strategy", "best"], {}),
    (["collect", *DARTS, "-t", "systolic-edge32", "--samples", "5"], {"EHDNAS_CACHE": "{tmp}/text.txt"}),
    (["collect", *DARTS, "-t", "systolic-edge32", "--samples", "5"], {"EHDNAS_LIMITS__SAMPLES": "abc"}),
    (["benchmark", "-t", "tflite-cpu", "-o", "precision=int8", "-o", "calibration=folder:{tmp}/empty", *DARTS], {}),
    (["benchmark", "-t", "ort-cpu", "-m", "{tmp}/text.txt"], {}),
    (["serve", "--port", "70000"], {}), (["serve", "--port", "-1"], {}), (["serve", "--limit", "epochs=0"], {}),
    (["serve", "--jobs-dir", "{tmp}/text.txt"], {}), (["serve", "--db", "sqlite:///{tmp}/text.txt"], {}),
    (["nocommand"], {}), (SEARCH, {"EHDNAS_LIMITS__EPOCHS": "-5"}),
]  # fmt: skip


def prepare(tmp: Path) -> None:
    """The files the cases name: a text file, a folder, empty data folders, TOML files, a damaged result folder."""
    (tmp / "text.txt").write_text("not what it seems\n")
    for folder in ("folder", "empty", "garbage"):
        (tmp / folder).mkdir()
    (tmp / "nan.toml").write_text("clock_mhz = nan\n")
    (tmp / "secret.toml").write_text(f'rows = 16\npassword = "{SECRET}"\n')
    (tmp / "garbage" / "result.json").write_text("{cut short")


def run_cli(tmp: Path, args: list[str], env: dict[str, str]) -> dict:
    command = [str(Path(sys.executable).parent / "ehdnas"), *(a.replace("{tmp}", str(tmp)) for a in args)]
    environ = {**os.environ, "EHDNAS_DB": f"sqlite:///{tmp}/store.db", "EHDNAS_CACHE": f"{tmp}/cache",
               "XDG_DATA_HOME": f"{tmp}/data", **{k: v.replace("{tmp}", str(tmp)) for k, v in env.items()}}  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300)
    lines = proc.stderr.strip().splitlines()
    ok = proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and SECRET not in proc.stderr
    return {"args": " ".join(command[1:]), "ok": ok, "traceback": "Traceback" in proc.stderr,
            "line": lines[-1] if lines else "", "code": proc.returncode}  # fmt: skip


HTTP_CASES: list[dict] = [
    {"kind": "benchmark", "spec": {"target": "systolic-edge32", "options": {"accelerator": "{tmp}/secret.toml"}}},
    {"kind": "benchmark", "spec": {"target": "systolic-edge32", "options": {"accelerator": "/etc/passwd"}}},
    {"kind": "search", "spec": {"target": "ort-cpu", "data": "folder:/etc", "auto_predictor": True}},
    {"kind": "collect", "spec": {"target": "tflite-cpu", "samples": 5, "options": {"calibration": "folder:/root"}}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 10**9}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 5, "seed": -1}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 5, "seed": 2**40}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 5, "options": {"threads": 10**6}}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 5, "space_options": {"channels": 10**6}}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 5, "options": []}},
    {"kind": "collect", "spec": {"target": "ort-cpu", "samples": 5, "space_options": "x"}},
    {"kind": "benchmark", "spec": {"target": "ort-cpu", "archs": [1, 2]}},
    {"kind": "benchmark", "spec": {"target": "ort-cpu", "archs": ['{"normal": ' + "[" * 900 + "]" * 900 + "}"]}},
    {"kind": "benchmark", "spec": {"target": "ort-cpu", "archs": ['{"normal": null, "reduce": null}']}},
    {"kind": "search", "spec": {"target": "ort-cpu", "loss_form": "hinge", "auto_predictor": True}},
    {"kind": "search", "spec": {"target": "ort-cpu", "arch_lr": -1, "auto_predictor": True}},
    {"kind": "search", "spec": {"target": "ort-cpu", "epochs": 10**6, "auto_predictor": True}},
    {"kind": "search", "spec": {"target": "ort-cpu", "predictor": "../api-token"}},
    {"kind": "search", "spec": {"target": "edgetpu", "auto_predictor": True}},
    {"kind": "train_predictor", "spec": {"target": "ort-cpu", "kinds": ["forest"]}},
    {"kind": "nope", "spec": {}},
]
RAW_BODIES = [
    '{"kind": "collect", "spec": {"target": "ort-cpu", "samples": NaN}}',
    '{"kind": "search", "spec": {"target": "ort-cpu", "lambdas": [0, Infinity], "auto_predictor": true}}',
    "[NaN]", "{", '{"kind": "benchmark", "spec": {"target": "ort-cpu", "archs": ["' + "x" * 100_000 + '"]}}',
]  # fmt: skip


def run_http(tmp: Path) -> list[dict]:
    (tmp / "server").mkdir()
    server = private_server(str(tmp / "server"))
    rows = []
    try:
        with server.client(SERVER_TOKEN) as client:
            for case in HTTP_CASES:
                body = json.loads(json.dumps(case).replace("{tmp}", str(tmp)))
                rows.append(_answer(client.post("/v1/jobs", json=body), json.dumps(body)[:90]))
            for raw in RAW_BODIES:
                response = client.post("/v1/jobs", content=raw, headers={"content-type": "application/json"})
                rows.append(_answer(response, raw[:90]))
            rows.append(_answer(client.get(f"/v1/jobs/1/artifacts/{'a' * 300}"), "artifact name of 300 characters"))
            rows.append(_answer(client.get("/v1/jobs/1/artifacts/..%2f..%2fstore.db"), "artifact ../../store.db"))
            assert client.get("/v1/jobs").json()["total"] == 0, "a bad spec was queued"
    finally:
        server.stop()
    return rows


def _answer(response, what: str) -> dict:  # noqa: ANN001
    ok = 400 <= response.status_code < 500 and SECRET not in response.text and "root:x:" not in response.text
    return {"args": what, "ok": ok, "code": response.status_code, "line": response.text[:120]}


def integrity(path: Path) -> str:
    if not path.exists():
        return "ok (never created)"
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def main() -> None:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ehdnas-bad-") as folder:
        tmp = Path(folder)
        prepare(tmp)
        with ThreadPoolExecutor(2) as pool:  # one process per core
            cli = list(pool.map(lambda case: run_cli(tmp, *case), CLI_CASES))
        http = run_http(tmp)
        stores = {name: integrity(tmp / name) for name in ("store.db", "server/store.db")}
        untouched = (tmp / "text.txt").read_text() == "not what it seems\n"
        untouched &= (tmp / "garbage" / "result.json").read_text() == "{cut short"
    for face, rows in (("CLI", cli), ("HTTP", http)):
        print(f"\n## {face}: {sum(r['ok'] for r in rows)}/{len(rows)} refused as they should be")
        for row in rows:
            print(f"{'ok ' if row['ok'] else 'BAD'} [{row['code']}] {row['args'][:100]}\n      {row['line'][:160]}")
    tracebacks = sum(r.get("traceback", False) for r in cli)
    server_errors = sum(r["code"] >= 500 for r in http)
    print(f"\nstores: {stores}; the files the cases named unchanged: {untouched}; {time.perf_counter() - start:.0f} s")
    print(f"CLI, exit 2 with one line ({tracebacks} tracebacks): {verdict(all(r['ok'] for r in cli))}")
    print(f"HTTP, a 4xx quoting no file ({server_errors} 5xx): {verdict(all(r['ok'] for r in http))}")
    print(f"stores intact, files unchanged: {verdict(untouched and all(s.startswith('ok') for s in stores.values()))}")


if __name__ == "__main__":
    main()
