"""Ticks and their throttle: a loop may tick after every step, what it reaches sees a few a minute."""

from __future__ import annotations

from typing import Any

from ehdnas.core.events import is_tick, throttled, tick


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tick_is_an_event_with_its_stage_units_and_line() -> None:
    record = tick("search", 2, 5, "search epoch 3/5, step 12/31")
    assert record == {"tick": True, "stage": "search", "done": 2.0, "total": 5,
                      "message": "search epoch 3/5, step 12/31"}  # fmt: skip
    assert isinstance(record["done"], float) and is_tick(record)
    assert not is_tick({"stage": "search", "epoch": 3, "epochs": 5})


def test_the_throttle_passes_a_tick_every_few_seconds_and_every_other_event_at_once() -> None:
    clock, passed = Clock(), []
    forward = throttled(passed.append, every_s=2.0, clock=clock)

    def at(now: float, record: dict[str, Any]) -> None:
        clock.now = now
        forward(record)

    at(100.0, tick("search", 0.1, 5, "a"))  # the first tick passes
    at(100.5, tick("search", 0.2, 5, "b"))
    at(101.0, {"stage": "search", "epoch": 1, "epochs": 5})  # not a tick: always
    at(101.9, tick("search", 0.4, 5, "c"))
    at(102.0, tick("search", 0.5, 5, "d"))  # 2 s after the last one passed
    at(102.1, tick("retrain", 0.0, 1, "e"))  # another stage: at once
    at(102.2, tick("retrain", 0.1, 1, "f"))
    at(104.1, tick("retrain", 0.3, 1, "g"))
    at(104.5, tick("retrain", 0.4, 1, "h", lasting=True))  # what follows will not tick: at once
    at(104.6, tick("retrain", 0.5, 1, "i"))
    assert [r.get("message", r.get("epoch")) for r in passed] == ["a", 1, "d", "e", "g", "h"]
