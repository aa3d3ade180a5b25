"""Hypothesis strategies for wrong input, shared by the property tests and the schemathesis run's hooks
(tests/e2e/schemathesis_hooks.py): any JSON value, and a value with one place in it swapped for another."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

# Any JSON value Python's reader returns, NaN and the infinities included.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
# Lists in lists, up to half as deep as Python's JSON reader and writer go before their stack does.
NESTED = st.integers(1, 500).map(lambda depth: functools.reduce(lambda inner, _: [inner], range(depth), []))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value, the whole included."""
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def swapped(draw: st.DrawFn, value: Any, new: st.SearchStrategy[Any] = JSON) -> Any:
    """`value` with one place in it (the whole included) holding a value drawn from `new`: valid input with one
    mistake gets past a parser's first checks, where a value of any shape would not."""
    return _replaced(value, draw(st.sampled_from(list(_paths(value)))), draw(new))
