"""The `ehdnas` command: thin faces over the library functions the server also calls, one module per group."""

from __future__ import annotations

import sys

import typer

from ehdnas.cli import remote  # noqa: F401  (registers tracker, device, devices: no torch, so a bare device runs them)
from ehdnas.cli.app import app, err
from ehdnas.core.errors import UserError

try:
    from ehdnas.cli import jobs, measure, search, serve  # noqa: F401  (register their commands)
except ModuleNotFoundError as missing:  # a device's install: its runtimes, not torch and the rest of the core
    _MISSING: ModuleNotFoundError | None = missing
else:
    _MISSING = None

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: a user error is one line on stderr and exit status 2, whether the library finds it or
    the flags' parser does (a missing flag, a number that is no number: click's message, not its usage box)."""
    if len(sys.argv) < 2:  # no command: the help, as Typer shows it
        app()
    if _MISSING is not None and sys.argv[1] not in (*remote.COMMANDS, "--help"):
        commands = ", ".join(remote.COMMANDS)
        _say(f"this install runs only {commands} ({_MISSING.name} is not installed): pip install ehdnas")
        sys.exit(2)
    try:
        code = app(standalone_mode=False)
    except UserError as error:
        _say(str(error))
        sys.exit(2)
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as error:  # click's usage errors
        where = f" (see `{error.ctx.command_path} --help`)" if getattr(error, "ctx", None) else ""
        _say(" ".join(error.format_message().split()) + where)
        sys.exit(getattr(error, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def _say(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
