"""`KEY=VALUE` options from the command line or an HTTP spec, checked against a config dataclass.

Targets and spaces each describe their settings as a frozen dataclass; this is
the one place that turns user strings into such a dataclass, so every target and
space gets the same error messages for free.
"""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
from collections.abc import Iterable, Mapping
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from ehdnas.core.errors import UserError

C = TypeVar("C")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert(value: Any, kind: type, where: str) -> Any:
    """`value` (often text) as a value of the declared type `kind`; a user error naming `where` if it is not."""
    if get_origin(kind) in (Union, UnionType):  # a value of any member; text converts to the first
        members = get_args(kind)
        if any(isinstance(value, get_origin(member) or member) for member in members):
            return value
        return convert(value, members[0], where)
    kind = get_origin(kind) or kind  # dict[str, Any] -> dict
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return _finite(value, where)
    if kind not in (int, float, str, bool):
        raise UserError(f"{where}: expected a {kind.__name__}, got {brief(value)}")
    text = str(value).strip()
    try:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        if kind is int and len(text) > MAX_DIGITS:  # Python refuses to read over 4,300 digits, with a long message
            raise ValueError
        return _finite(kind(text), where)
    except ValueError:
        raise UserError(f"{where}: {brief(value)} is not a valid {kind.__name__}") from None


MAX_DIGITS = 30  # an integer setting longer than this is a mistake, whatever its limit


def _finite(value: Any, where: str) -> Any:
    """NaN compares false with every bound, so it would pass them all; infinity is no setting either."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: {value!r} is not a finite number")
    return value


def brief(value: Any) -> str:
    """`repr(value)` in at most 60 characters: messages echo what the user gave, which may be long or nested
    (reprlib cuts long strings and deep or long containers first, so the repr is cheap to make)."""
    text = reprlib.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def make_config(cls: type[C], values: Mapping[str, Any], what: str) -> C:
    """Build dataclass `cls` from `values`, converting strings to the declared field types."""
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise UserError(f"unknown {what} option {unknown[0]!r}; known: {', '.join(sorted(fields))}")
    converted = {k: convert(v, hints[k], f"{what} option {k!r}") for k, v in values.items()}
    config = cls(**converted)
    check = getattr(config, "check", None)
    if check is not None:
        check()
    return config


def parse_pairs(items: Iterable[str], what: str) -> dict[str, str]:
    """Split `KEY=VALUE` strings; a malformed item is a user error."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{what} option {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value, used for keys and hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
