"""How long work reports on itself: a progress callback and an event record, the same types everywhere.

An event is a record with a "stage". Most say that a unit of a stage finished (an epoch, a generation) and
are kept (a job's events, a line on the CLI). A *tick* says how far a running stage is, between those:
`{"tick": True, "stage": ..., "done": 2.4, "total": 5, "message": "search epoch 3/5, step 12/31"}`, `done`
in the stage's units (a float), `total` the units in the stage, `message` a short line for a person. Ticks
move a progress bar and a status line; nobody stores them. A loop may tick after every step and hand its
ticks to `throttled(on_event)`, which passes a few of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[int, int, str], None]  # units done, units in all, what was just done
Events = Callable[[dict[str, Any]], None]  # one record per finished stage or epoch, or a tick

TICK_EVERY_S = 2.0  # what `throttled` passes by default: a status that moves, a database that is left alone


def no_progress(done: int, total: int, label: str) -> None:
    """A Progress that reports nothing."""


def no_events(record: dict[str, Any]) -> None:
    """An Events that reports nothing."""


def tick(stage: str, done: float, total: float, message: str, lasting: bool = False) -> dict[str, Any]:
    """A tick of `stage`: `done` of its `total` units so far, and the line that says so.

    `lasting`: it announces work that will not tick (deriving, measuring), so `throttled` passes it at once
    and its line stands while that work runs, rather than the step before it.
    """
    record = {"tick": True, "stage": stage, "done": float(done), "total": total, "message": message}
    return {**record, "lasting": True} if lasting else record


def is_tick(record: dict[str, Any]) -> bool:
    return bool(record.get("tick"))


def throttled(on_event: Events, every_s: float = TICK_EVERY_S, clock: Callable[[], float] = time.monotonic) -> Events:
    """`on_event` with its ticks thinned to one per `every_s` seconds; every other record passes at once.

    So a loop can tick after every step (one line of code, never stale) while what the ticks reach (a job's
    row in a database, a log) sees a few a minute. A tick of another stage than the last one passed goes at
    once: a new stage shows as it starts, not after the old one's last message has stood for `every_s`; so does
    a `lasting` tick.
    """
    last_at, last_stage = -math.inf, None

    def forward(record: dict[str, Any]) -> None:
        nonlocal last_at, last_stage
        if is_tick(record):
            now = clock()
            if now - last_at < every_s and record["stage"] == last_stage and not record.get("lasting"):
                return
            last_at, last_stage = now, record["stage"]
        on_event(record)

    return forward
