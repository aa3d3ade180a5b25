"""The checks on folders and files the user names, on real paths; they pass as root too (CI runs as root).

Unwritable places that stay unwritable for root: a path below a regular file, and /sys (sysfs makes no files).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ehdnas.core.errors import UserError
from ehdnas.core.paths import CACHE_ENV, cache_dir
from ehdnas.core.writable import FILE, FOLDER, writable_dir, writable_file

SYSFS = pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")


def test_a_writable_folder_or_one_that_can_be_made_is_accepted_and_nothing_is_made(tmp_path: Path) -> None:
    assert writable_dir(tmp_path, "--out") == tmp_path
    assert writable_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert writable_file(tmp_path / "new" / "p.pt", "--out") == tmp_path / "new" / "p.pt"
    assert os.listdir(tmp_path) == []


def test_an_existing_file_may_be_written_over_and_is_left_as_it_was(a_file: Path) -> None:
    assert writable_file(a_file, "--out") == a_file
    assert a_file.read_text() == "kept\n"


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("{file}", "a file, not a folder"),
        ("{file}/run", "cannot be created: {file} is a file"),
        pytest.param("/sys/ehdnas-run", "cannot be created in /sys (Permission denied)", marks=SYSFS),
    ],
)
def test_a_folder_that_cannot_be_written_is_one_line_naming_it_and_what_is_accepted(
    a_file: Path, where: str, problem: str
) -> None:
    path = Path(where.format(file=a_file))
    with pytest.raises(UserError) as refused:
        writable_dir(path, "--out")
    assert str(refused.value) == f"--out {path}: {problem.format(file=a_file)}; {FOLDER}"
    assert a_file.read_text() == "kept\n" and os.listdir(a_file.parent) == ["a-file"]


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("{folder}", "a folder, not a file"),
        ("{file}/p.pt", "cannot be created: {file} is a file"),
        ("/dev/null", "not a regular file"),
        pytest.param("/sys/p.pt", "cannot be created in /sys (Permission denied)", marks=SYSFS),
    ],
)
def test_a_file_path_that_cannot_be_written_is_one_line_naming_it_and_what_is_accepted(
    a_file: Path, where: str, problem: str
) -> None:
    path = Path(where.format(file=a_file, folder=a_file.parent))
    with pytest.raises(UserError) as refused:
        writable_file(path, "--out")
    assert str(refused.value) == f"--out {path}: {problem.format(file=a_file)}; {FILE}"
    assert a_file.read_text() == "kept\n" and os.listdir(a_file.parent) == ["a-file"]


def test_a_cache_that_is_a_file_is_a_user_error_naming_the_variable(a_file: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(CACHE_ENV, str(a_file))
    with pytest.raises(UserError, match=f"^EHDNAS_CACHE {a_file}: a file, not a folder; give a folder"):
        cache_dir("tflite", "models")
    assert a_file.read_text() == "kept\n"
    monkeypatch.setenv(CACHE_ENV, str(a_file.parent / "cache"))
    assert cache_dir("tflite", "models").is_dir()
