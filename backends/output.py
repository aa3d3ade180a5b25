"""Keeping native libraries' chatter out of the user's terminal.

TVM's tuner and LiteRT's converters print progress and logs from C++ as well as
Python; none of it is for the user, but it is worth keeping in a log file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def redirected_output(log: Path | str) -> Iterator[None]:
    """Send this process's stdout and stderr, Python's and native code's, to `log` for a while."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
