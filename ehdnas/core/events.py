"""How long work reports on itself: a progress callback and an event record, the same types everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Progress = Callable[[int, int, str], None]  # units done, units in all, what was just done
Events = Callable[[dict[str, Any]], None]  # one record per finished stage or epoch


def no_progress(done: int, total: int, label: str) -> None:
    """A Progress that reports nothing."""


def no_events(record: dict[str, Any]) -> None:
    """An Events that reports nothing."""
