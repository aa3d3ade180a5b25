"""What every `ehdnas` command shares: the app, the consoles, the common options, progress, the runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from backends.protocol import TimingProtocol
from ehdnas.cli.app import JsonOpt, app, console, err  # noqa: F401  (the commands' modules take them from here)
from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, throttled

# Options shared by the commands that measure.
TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Target name (see `ehdnas targets`).")]
TargetOptions = Annotated[
    list[str] | None, typer.Option("--option", "-o", help="Target setting KEY=VALUE, e.g. threads=2.")
]
AcceleratorOpt = Annotated[
    Path | None,
    typer.Option("--accelerator", help="A TOML accelerator description for a systolic-* target (see README)."),
]
SpaceOptions = Annotated[
    list[str] | None, typer.Option("--space-option", help="Space setting KEY=VALUE, e.g. layers=5.")
]
RepeatsOpt = Annotated[int, typer.Option("--repeats", help="Minimum timed runs per model.")]
MinTimeOpt = Annotated[float, typer.Option("--min-time", help="Minimum total timed seconds per model.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Untimed warm-up runs per model.")]
MaxSpreadOpt = Annotated[
    float,
    typer.Option(
        "--max-spread",
        help="Time more rounds (twice at most) while the kept rounds' medians lie further apart than this fraction "
        "(slowest/fastest - 1), then flag.",
    ),
]
ClockOpt = Annotated[
    str,
    typer.Option(
        "--clock",
        help="wall: each run's elapsed time; cpu: the timed thread's CPU time, which other processes do not stretch "
        "(for a shared host; 1-thread CPU targets).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the measurement store (default: env EHDNAS_DB, else a file in the user data dir).",
    ),
]


T = TypeVar("T")
DEFAULT_PROTOCOL = TimingProtocol()


@contextmanager
def _progress(total: int, what: str) -> Iterator[Any]:
    """A progress callback: a live bar on a terminal, one line per item otherwise (logs, CI)."""
    if not err.is_terminal:

        def line(done: int, total_: int, label: str) -> None:
            err.print(f"[{done}/{total_}] {what} {label}", markup=False, highlight=False, soft_wrap=True)

        yield line
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done, total_, label: bar.update(task, completed=done)


TICK_LINE_EVERY_S = 10.0  # off a terminal: a log gets a status line this often at most


def tick_lines() -> Events:
    """Ticks as plain lines on stderr, at most one every TICK_LINE_EVERY_S (and one as a stage starts): for a
    log, or beside a progress bar (a line printed while a bar is live goes above it)."""

    def line(record: dict[str, Any]) -> None:
        err.print(f"... {record['message']}", markup=False, highlight=False, soft_wrap=True)

    return throttled(line, TICK_LINE_EVERY_S)


@contextmanager
def _status() -> Iterator[Events]:
    """Where a long command's ticks go (`ehdnas.core.events.tick`): on a terminal, one live line (the stage's
    message, bar, elapsed and remaining time) redrawn in place, restarted with each stage; otherwise a plain
    line at most every TICK_LINE_EVERY_S (and one as a stage starts), so a log stays readable."""
    if not err.is_terminal:
        yield tick_lines()
        return
    columns = (
        TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=err, transient=True) as bar:
        task, stage = bar.add_task("", total=None, visible=False), None

        def show(record: dict[str, Any]) -> None:
            nonlocal stage
            if record["stage"] != stage:  # the elapsed and remaining times are the stage's
                bar.reset(task, total=record["total"], description=record["message"], visible=True)
                stage = record["stage"]
            bar.update(task, description=record["message"], completed=record["done"], total=record["total"])

        yield show


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _target_options(target: str, options: list[str] | None, accelerator: Path | None) -> list[str]:
    """The target's settings; `--accelerator FILE` is the systolic targets' `accelerator` setting."""
    if accelerator is not None and not target.startswith("systolic-"):
        raise UserError(f"--accelerator goes with a systolic-* target, not {target!r}")
    return [*(options or []), *([f"accelerator={accelerator}"] if accelerator else [])]


# The flag of a problem's field, where it is not --field-name; the fields whose messages name their value's place
# already ("target 'x' option 'threads' ...") are said as they are.
_FLAGS = {"options": "-o", "space_options": "--space-option", "archs": "--arch", "input_shape": "--input-shape"}
_SAID = {("target",), ("space",), ("options",), ("space_options",), ("accelerator",), ("protocol",),
         ("options", "accelerator")}  # fmt: skip


def _with_flag(problem: Any) -> str:
    """A problem of `ehdnas.methods.requests`, named by the flag that set it."""
    from ehdnas.methods.resolve import face_options

    name, rest = problem.field[0], problem.field[1:]
    if problem.field in _SAID:
        return problem.message
    flag = _FLAGS.get(name) or {o.name: o.flag for o, _ in face_options()}.get(name) or f"--{name.replace('_', '-')}"
    if rest and isinstance(rest[0], str) and rest[0]:
        flag += f" {rest[0]}"
    return f"{flag}: {problem.message}"


def _checked(check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`check(*args, limits, **kwargs)`, one of the library's up-front checks (`ehdnas.methods.requests`), with the
    limits of `EHDNAS_LIMITS__*`; its first problem as one line naming the flag."""
    from ehdnas.core.limits import Limits
    from ehdnas.methods.resolve import SettingErrors

    try:
        return check(*args, Limits.from_env(), **kwargs)
    except SettingErrors as errors:
        raise UserError(_with_flag(errors.problems[0])) from None


def _check_paths(
    db: str | None, store: bool = True, folder: Path | None = None, file: Path | None = None, cache: bool = True
) -> None:
    """Refuse an unusable store, `--out` folder or file, or cache in one line, before any work; nothing is made."""
    from ehdnas.core.paths import cache_root, default_db_url
    from ehdnas.core.writable import writable_dir, writable_file
    from ehdnas.pipeline.store import check_store_url

    if store:
        check_store_url(db or default_db_url())
    if folder is not None:
        writable_dir(folder, "--out")
    if file is not None:
        writable_file(file, "--out")
    if cache:
        cache_root()


def _flags(option: list[str] | None, space_option: list[str] | None) -> str:
    """The settings flags to repeat in a command we suggest."""
    return "".join(f" --space-option {o}" for o in space_option or []) + "".join(f" -o {o}" for o in option or [])


def _escaped(text: str) -> str:
    """Help text shown as written: square brackets are rich markup otherwise."""
    return text.replace("[", "\\[")
