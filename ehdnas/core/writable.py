"""Checks that a folder or file the user named can be written, made before any work and leaving nothing behind.

A refusal is a one-line `UserError`: the option or variable, the path, what is wrong, what is accepted.
Writability is tried (a nameless temporary file, a file opened to append nothing), not read from the mode
bits, which root passes everywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ehdnas.core.errors import UserError

FOLDER = "give a folder that exists or can be created, and is writable"
FILE = "give a file path (not a folder) in a folder that exists or can be created, and is writable"


def writable_dir(path: Path, name: str) -> Path:
    """`path`, if it is a writable folder or one that can be created there (it is not created here)."""
    problem = folder_problem(path)
    if problem:
        raise UserError(f"{name} {path}: {problem}; {FOLDER}")
    return path


def writable_file(path: Path, name: str) -> Path:
    """`path`, if a file can be written there (nothing is made or changed)."""
    problem = file_problem(path)
    if problem:
        raise UserError(f"{name} {path}: {problem}; {FILE}")
    return path


def folder_problem(path: Path) -> str | None:
    """Why `path` cannot be a folder to write in, or be created, or None."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:  # the nearest part that is there
        existing = existing.parent
    here = existing == path.absolute()
    if not existing.is_dir():
        return "a file, not a folder" if here else f"cannot be created: {existing} is a file"
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        return f"not writable ({err.strerror})" if here else f"cannot be created in {existing} ({err.strerror})"
    return None


def file_problem(path: Path) -> str | None:
    """Why a file cannot be written at `path`, or None: a new one is made in the nearest folder that is there."""
    if path.is_dir():
        return "a folder, not a file"
    if not path.exists():
        return folder_problem(path)
    if not path.is_file():  # a device or a pipe: writing there is not saving a file
        return "not a regular file"
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as err:
        return f"not writable ({err.strerror})"
    return None
