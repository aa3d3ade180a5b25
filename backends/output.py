"""Keeping native libraries' chatter out of the user's terminal.

TVM's tuner and LiteRT's converters print progress and logs from C++ as well as
Python; none of it is for the user, but it is worth keeping in a log file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

Aside = Callable[[], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def redirected_output(log: Path | str) -> Iterator[Aside]:
    """Send this process's stdout and stderr, Python's and native code's, to `log` for a while.

    Yields `aside`: `with aside():` puts the user's stdout and stderr back for a moment, for a progress line.
    """
    with open(log, "a") as out, _pointed(out.fileno()) as saved:
        yield functools.partial(_pointed, *saved)


@contextlib.contextmanager
def _pointed(stdout: int, stderr: int | None = None) -> Iterator[tuple[int, int]]:
    """Point file descriptors 1 and 2 at `stdout` and `stderr` (the same as stdout when None) for a while;
    yields duplicates of what they pointed at before."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(stdout, 1)
    os.dup2(stdout if stderr is None else stderr, 2)
    try:
        yield saved
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
