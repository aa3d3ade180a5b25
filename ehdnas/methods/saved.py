"""What a search saved in its result folder, read back to resume it.

A file there that the search did not write (cut short by a full disk, another
program's, edited by hand) is one line naming it, said when the command starts
(`check_saved`), before any measuring or training, never a traceback an hour in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError

RESULT = "result.json"  # a finished search (or each run of a sweep)
STATES = ("checkpoint.pt", "teacher.pt", "supernet.pt")  # EH-DNAS and DCP-NAS resume at an epoch; FlowNAS at a stage


def _unreadable(path: Path, err: Exception) -> UserError:
    return UserError(f"{path}: not a file this search wrote ({type(err).__name__}); choose another --out or remove it")


def saved_result(path: Path) -> dict[str, Any] | None:
    """The result a finished search wrote at `path`, or None if there is none."""
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _unreadable(path, err) from None
    if not isinstance(result, dict):
        raise _unreadable(path, TypeError("not a JSON object"))
    return result


def saved_state(path: Path, device: Any = "cpu") -> dict[str, Any] | None:
    """The state a search saved at `path` (tensors only: nothing in it runs), or None if there is none."""
    import torch

    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors of every kind
        raise _unreadable(path, err) from None
    if not isinstance(state, dict):
        raise _unreadable(path, TypeError("not a saved state"))
    return state


def check_saved(out: Path) -> None:
    """Read every result and state a search would resume from in `out` (a sweep's runs too)."""
    if not out.is_dir():
        return
    for path in sorted(out.rglob(RESULT)):
        saved_result(path)
    for name in STATES:
        for path in sorted(out.rglob(name)):
            saved_state(path)
