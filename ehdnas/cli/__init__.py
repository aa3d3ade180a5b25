"""The `ehdnas` command: thin faces over the library functions the server also calls, one module per group."""

from __future__ import annotations

import sys

from ehdnas.cli import measure, search, serve  # noqa: F401  (register their commands)
from ehdnas.cli.common import app, err
from ehdnas.core.errors import UserError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: a user error is one line on stderr and exit status 2."""
    try:
        app()
    except UserError as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
