"""Paths the user gives that cannot be written or are not what they seem: one line, exit 2, nothing written.

Each is refused as the command starts, before any measuring or training. The unwritable places work as
root too: a path below a regular file, a file where a folder belongs (the checks themselves: tests/core).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

SYSTOLIC_DARTS = ["--space", "darts", "-t", "systolic-edge32", "--space-option", "layers=3"]


def refusal(proc: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed (exit status 2, no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_collect_into_a_file_that_is_not_a_database_is_one_line_and_leaves_the_file_as_it_was(a_file: Path) -> None:
    url = f"sqlite:///{a_file}"
    line = refusal(run_cli("collect", *SYSTOLIC_DARTS, "--samples", "1", "--db", url, check=False))
    assert line.startswith(f"error: database {url!r}: {a_file} is not a SQLite database; give a SQLite database")
    assert a_file.read_text() == "kept\n" and os.listdir(a_file.parent) == ["a-file"]


def test_search_out_onto_a_file_is_one_line(a_file: Path, db_url: str) -> None:
    line = refusal(run_cli("search", "-t", "systolic-edge32", "--out", str(a_file), db=db_url, check=False))
    assert line.startswith(f"error: --out {a_file}: a file, not a folder; give a folder that exists or can be")
    assert a_file.read_text() == "kept\n" and os.listdir(a_file.parent) == ["a-file"]


def test_train_predictor_refuses_an_out_it_cannot_write_before_training(a_file: Path, db_url: str) -> None:
    from backends import get_target
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space
    from tests.pipeline.test_predictors import TINY, store_latencies

    space = get_space("darts", TINY)
    store_latencies(Store(db_url), get_target("systolic-edge32"), space, space.sample_many(60, 0))  # enough to train
    options = [a for k, v in TINY.items() for a in ("--space-option", f"{k}={v}")]
    out = a_file / "p.pt"
    proc = run_cli("train-predictor", "--space", "darts", *options, "-t", "systolic-edge32", "--out", str(out),
                   db=db_url, check=False)  # fmt: skip
    assert refusal(proc).startswith(f"error: --out {out}: cannot be created: {a_file} is a file; give a file path")
    assert a_file.read_text() == "kept\n"


def test_a_cache_that_is_a_file_stops_a_measuring_command_in_one_line_naming_the_variable(
    a_file: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHDNAS_CACHE", str(a_file))
    line = refusal(run_cli("benchmark", *SYSTOLIC_DARTS, db=db_url, check=False))
    assert line.startswith(f"error: EHDNAS_CACHE {a_file}: a file, not a folder; give a folder")
    assert os.listdir(a_file.parent) == ["a-file"]  # nor was the store made


@pytest.mark.parametrize("saved", ["result.json", "lambda-1/checkpoint.pt", "teacher.pt"])
def test_a_result_folder_holding_a_file_no_search_wrote_is_refused_before_any_work(
    tmp_path: Path, db_url: str, saved: str
) -> None:
    out = tmp_path / "run"
    (out / saved).parent.mkdir(parents=True)
    (out / saved).write_text("{cut short")
    line = refusal(run_cli("search", "-t", "systolic-edge32", "--out", str(out), "--auto-predictor", db=db_url,
                           check=False))  # fmt: skip
    assert line.startswith(f"error: {out / saved}: not a file this search wrote (") and "remove it" in line
    assert (out / saved).read_text() == "{cut short"
    assert not Path(db_url.removeprefix("sqlite:///")).exists()  # nothing measured for the predictor
