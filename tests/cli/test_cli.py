"""The `ehdnas` command as users run it: a real process, a real SQLite file, real ONNX Runtime."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EHDNAS, FAST, LIGHT_MODELS, run_cli, run_main, tiny_conv_model

SMALL_DARTS = ["--space", "darts", "--space-option", "layers=3", "--space-option", "channels=4"]


def rows(db_url: str) -> int:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT count(*) FROM measurements").fetchone()[0]


def test_targets_and_spaces_json() -> None:
    targets = {row["name"]: row for row in json.loads(run_cli("targets", "--json").stdout)}
    assert {"name": "ort-cpu", "available": True, "reason": ""}.items() <= targets["ort-cpu"].items()
    spaces = json.loads(run_cli("spaces", "--json").stdout)
    assert spaces[0]["name"] == "darts" and spaces[0]["decisions"] == 28 and len(spaces[0]["choices"]) == 28
    assert "sep_conv_3x3" in spaces[0]["choices"]["normal.0->2"]
    flownas = next(row for row in spaces if row["name"] == "flownas")
    assert flownas["choices"]["stage1.kernel"] == ["3", "5"] and flownas["choices"]["stage3.width"] == ["88", "96"]


def test_benchmark_onnx_files_json_document(tiny_model: Path) -> None:
    squeezenet = LIGHT_MODELS / "light_squeezenet.onnx"
    doc = json.loads(
        run_cli("benchmark", "-t", "ort-cpu", "-m", str(tiny_model), "-m", str(squeezenet), "--json", *FAST).stdout
    )
    assert doc["target"] == "ort-cpu" and doc["target_config"]["threads"] == 1
    assert doc["host"]["libraries"]["onnxruntime"] and doc["protocol"]["min_repeats"] == 3
    assert [r["model"] for r in doc["results"]] == ["tiny.onnx", "light_squeezenet.onnx"]
    for result in doc["results"]:
        stats = result["latency_ms"]
        assert set(stats) >= {"median", "mean", "std", "p10", "p90", "n"} and stats["n"] >= 3
        assert stats["p10"] <= stats["median"] <= stats["p90"] and result["cached"] is False
        assert 0 <= result["spread"] <= 10 and result["flagged"] is False  # FAST bounds the spread at 10
    assert doc["results"][1]["inputs"][0]["shape"] == [1, 3, 224, 224]


def test_benchmark_table_is_readable(tiny_model: Path) -> None:
    out = run_cli("benchmark", "-t", "ort-cpu", "-m", str(tiny_model), *FAST).stdout
    assert "latency on ort-cpu (ms)" in out and "tiny.onnx" in out and "1x3x8x8" in out


def test_benchmark_space_reuses_the_store_unless_fresh(db_url: str) -> None:
    args = ["benchmark", "-t", "ort-cpu", *SMALL_DARTS, "--samples", "2", "--seed", "5", "--json", *FAST]
    first = json.loads(run_cli(*args, db=db_url).stdout)["results"]
    assert [r["cached"] for r in first] == [False, False] and rows(db_url) == 2
    again = json.loads(run_cli(*args, db=db_url).stdout)["results"]
    assert [r["cached"] for r in again] == [True, True]
    assert [r["latency_ms"] for r in again] == [r["latency_ms"] for r in first]
    fresh = json.loads(run_cli(*args, "--fresh", db=db_url).stdout)["results"]
    assert [r["cached"] for r in fresh] == [False, False] and rows(db_url) == 2
    arch = first[0]["arch"]
    given = json.loads(run_cli("benchmark", "-t", "ort-cpu", *SMALL_DARTS, "--arch", arch, "--json", db=db_url).stdout)
    assert given["results"][0]["arch"] == arch and given["results"][0]["cached"] is True


def test_collect_is_idempotent(db_url: str) -> None:
    # Any cv is quiet enough here: three repeats of a tiny network can spread over 10%, the default bound, and a
    # measurement noisier than the bound is taken again by the next collect (by design, not what this checks).
    args = ["collect", *SMALL_DARTS, "-t", "ort-cpu", "--samples", "3", "--json", *FAST, "--max-spread", "10"]
    assert json.loads(run_cli(*args, db=db_url).stdout) | {"db": None} == {
        "space": "darts", "target": "ort-cpu", "strategy": "uniform", "samples": 3, "already_stored": 0,
        "measured": 3, "remeasured_noisy": 0, "db": None,
    }  # fmt: skip
    again = json.loads(run_cli(*args, db=db_url).stdout)
    assert (again["already_stored"], again["measured"]) == (3, 0) and rows(db_url) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "{tmp}/absent.onnx"], "absent.onnx: no such file"),
        (["-m", "{tmp}/garbage.onnx"], "not a valid ONNX model"),
        (["-m", "{tmp}/dynamic.onnx"], "has a dynamic shape ['N', 3, 8, 8]; give a static one with --input-shape"),
        (["-m", "{tmp}/dynamic.onnx", "--input-shape", "1,3,x"], "comma-separated integers"),
        (["-m", "{tmp}/dynamic.onnx", "--space", "darts"], "give either --model FILE.onnx or --space NAME"),
        ([], "give either --model FILE.onnx or --space NAME"),
        (["--space", "nasbench"], "unknown search space 'nasbench'; known: darts"),
        (["--space", "darts", "--arch", "normal=conv(0)"], "darts genotype: missing the reduce cell"),
        (["--space", "darts", "--arch", '{"normal": 1, "reduce": 2}'], "normal: expected a list of [op, input] pairs"),
        (["--space", "flownas", "--arch", '{"stages": [null]}'], "stage 1: expected an object with the keys"),
        (["--space", "darts", "--arch", '{"normal": ' + "[" * 50_000], "invalid JSON (maximum recursion depth"),
        (["--space", "darts", "--samples", "0"], "--samples: must be at least 1"),
        (["--space", "darts", "-o", "threads=-1"], "'threads' must be at least 1"),
        (["--space", "darts", "--repeats", "0"], "timing protocol"),
        (["--space", "darts", "--db", "nosuchdb://x"], "database 'nosuchdb://x'"),
        (["--space", "darts", "--min-time", "nan"], "--min-time: nan is not a finite number"),
        (["--space", "darts", "--samples", "x"], "Invalid value for '--samples': Input should be a valid integer"),
        (["--space", "darts", "--nope"], "No such option: --nope"),
        (["--space", "darts", "--max-spread", "inf"], "--max-spread: inf is not a finite number"),
        (["--space", "darts", "--seed", "-1"], "--seed: -1 is not a seed: 0 to 4294967295"),
        (["--space", "darts", "--samples", "1000000000"], "--samples: 1,000,000,000 is over the limit of 20,000"),
        (["--space", "darts", "--repeats", "99999"], "raise it with EHDNAS_LIMITS__REPEATS=N"),
        (["--space", "darts", "-o", "threads=100000"], "-o threads: 100,000 is over the limit of 256"),
        (["--space", "darts", "-o", "threads=nan"], "'threads': 'nan' is not a valid int"),
        (["--space", "darts", "--space-option", "channels=100000"], "--space-option channels: 100,000 is over"),
        (["--space", "darts", "--space-option", "layers=" + "9" * 5000], "'layers': '999999999999...9999999"),
        (
            ["-m", "{tmp}/dynamic.onnx", "--input-shape", "1,3,100000,100000"],
            "--input-shape: 30,000,000,000 is over the limit",
        ),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    """In this process (the console entry point, its output captured): 30 processes would take two minutes; the
    tests around it, and tests/cli/test_paths.py, run real ones."""
    (tmp_path / "garbage.onnx").write_text("not a model")
    tiny_conv_model(tmp_path / "dynamic.onnx", batch="N")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run_main("benchmark", "-t", "ort-cpu", *args, db=f"sqlite:///{tmp_path / 's.db'}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def test_unknown_target_is_one_line() -> None:
    proc = run_cli("benchmark", "-t", "tpu-v9", "--space", "darts", check=False)
    known = "edgetpu, external, ort-cpu, systolic-edge32, systolic-eyeriss, systolic-tpu128, tflite-cpu, tvm-llvm"
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: unknown target 'tpu-v9'; known: {known}"


def test_train_predictor_with_too_few_measurements_says_what_to_run(db_url: str, tmp_path: Path) -> None:
    run_cli("collect", *SMALL_DARTS, "-t", "ort-cpu", "--samples", "3", *FAST, db=db_url)
    proc = run_cli(
        "train-predictor", *SMALL_DARTS, "-t", "ort-cpu", "--out", str(tmp_path / "p.pt"), db=db_url, check=False
    )
    assert proc.returncode == 2 and not (tmp_path / "p.pt").exists()
    assert "only 3 measurements of darts on ort-cpu" in proc.stderr and "47 more are needed" in proc.stderr
    assert "ehdnas collect --space darts --target ort-cpu --samples 200 --space-option layers=3" in proc.stderr


def test_search_without_a_predictor_says_what_to_run(db_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*EHDNAS, "search", "-t", "ort-cpu", "--out", str(tmp_path / "run"), *SMALL_DARTS[2:]],
        capture_output=True, text=True, env={**os.environ, "EHDNAS_DB": db_url, "XDG_DATA_HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "no latency predictor for darts on ort-cpu" in proc.stderr
    assert "`ehdnas collect --space darts --target ort-cpu --samples 200 --space-option layers=3" in proc.stderr
    assert "or add --auto-predictor" in proc.stderr and not (tmp_path / "run").exists()


def test_train_predictor_in_a_log_says_which_kind_trains_at_which_epoch_a_few_lines_at_most(
    db_url: str, tmp_path: Path
) -> None:
    from backends import get_target
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space
    from tests.pipeline.test_predictors import TINY, store_latencies

    space = get_space("darts", TINY)
    store_latencies(Store(db_url), get_target("systolic-edge32"), space, space.sample_many(60, 0))
    options = [a for k, v in TINY.items() for a in ("--space-option", f"{k}={v}")]
    proc = run_cli("train-predictor", "--space", "darts", *options, "-t", "systolic-edge32", "--kinds", "mlp,lut",
                   "--out", str(tmp_path / "p.pt"), db=db_url)  # fmt: skip
    status = [line for line in proc.stderr.splitlines() if line.startswith("... ")]
    assert status[0] == "... training mlp (epoch 1/400)"  # the stage's first tick, at once
    assert len(status) <= 3, proc.stderr  # then one every 10 s at most, not one per epoch
    assert "saved the" in proc.stdout and (tmp_path / "p.pt").is_file()


def test_the_demo_in_the_makefile_resolves_to_a_sweep_on_the_cluttered_digits_with_a_predictor_made_first() -> None:
    import re
    import shlex

    from tests.conftest import ROOT

    makefile = (ROOT / "Makefile").read_text()
    space = re.search(r"^DEMO_SPACE := (.*)$", makefile, re.M)[1]
    line = re.search(r"\$\(BIN\)/ehdnas (sweep .*?) --out", makefile.replace("\\\n", " "), re.S)[1]
    args = shlex.split(line.replace("$(DEMO_SPACE)", space))
    document = json.loads(run_cli(*args, "--dry-run", "--json").stdout)
    settings = document["settings"]
    assert settings["data"] == "cluttered" and settings["lambdas"] == [0.0, 1.0] and settings["follow"]
    assert document["predictor"]["auto_predictor"] and document["target"] == "ort-cpu"
