"""The `ehdnas` Typer app and its two consoles, apart from `common` so the device commands import nothing heavy."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Hardware-aware neural architecture search: measure, model and search for a target.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)
if not console.is_terminal:  # piped or logged: don't squeeze tables into 80 columns
    console.width = 160

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]
