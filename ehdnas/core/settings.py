"""Settings fields that carry their own default, bounds and help: the one place a method's options are declared.

A method's settings are a frozen dataclass whose user-facing fields are made by
`setting(...)`. The CLI's flags and the server's spec fields are derived from
those fields, and `check_fields` enforces their bounds with one message for
both faces, so neither can drift from what the library runs.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any, get_type_hints

from ehdnas.core.errors import UserError


class SettingError(UserError):
    """A user error in one setting: `field` is its location (a name, then an index for a list item). `unquoted`,
    where the message quotes a file the server read, says the same without the file's content."""

    def __init__(self, field: str | tuple[str | int, ...], message: str, unquoted: str | None = None) -> None:
        self.field = (field,) if isinstance(field, str) else tuple(field)
        self.message = message
        self.unquoted = unquoted or message
        super().__init__(f"{self.field[0]}: {message}")


def setting(
    default: Any,
    *,
    help: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: Sequence[str] | None = None,
    item_ge: float | None = None,
    public: str | None = None,
    flag: str | None = None,
) -> Any:
    """A user-facing field. `public` renames it on both faces (default: the field's own name); `flag` overrides
    the CLI's `--public-name`; `item_ge` bounds each item of a list."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "choices": tuple(choices) if choices else None,
            "item_ge": item_ge, "public": public, "flag": flag}  # fmt: skip
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Option:
    """One user-facing field of a settings class, as the faces see it."""

    name: str  # public name: the server's spec field; the CLI's flag is --name with dashes
    field: str  # the dataclass field it sets
    kind: Any  # its declared type
    default: Any
    help: str
    bounds: dict[str, Any]
    flag: str

    def describe_default(self) -> str:
        if self.default is None or self.default == [] or self.default == {}:
            return "none"
        if isinstance(self.default, list):
            return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.default)
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def options(cls: type) -> list[Option]:
    """The user-facing fields of settings class `cls`, in declaration order."""
    hints = get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        public = f.metadata["public"] or f.name
        bounds = {k: f.metadata[k] for k in ("ge", "gt", "le", "choices", "item_ge") if f.metadata[k] is not None}
        flag = f.metadata["flag"] or "--" + public.replace("_", "-")
        found.append(Option(public, f.name, hints[f.name], default, f.metadata["help"], bounds, flag))
    return found


def _bound_problem(value: Any, bounds: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if "choices" in bounds and value not in bounds["choices"]:
        return f"{value!r} is not one of {', '.join(bounds['choices'])}"
    if "ge" in bounds and value < bounds["ge"]:
        return f"must be at least {bounds['ge']:g}"
    if "gt" in bounds and not value > bounds["gt"]:
        return f"must be greater than {bounds['gt']:g}"
    if "le" in bounds and value > bounds["le"]:
        return f"must be at most {bounds['le']:g}"
    return None


def check_fields(settings: Any) -> None:
    """Raise SettingError for the first user-facing field of `settings` outside its bounds."""
    for option in options(type(settings)):
        value = getattr(settings, option.field)
        problem = _bound_problem(value, option.bounds)
        if problem:
            raise SettingError(option.name, problem)
        if "item_ge" in option.bounds:
            for i, item in enumerate(value):
                if item < option.bounds["item_ge"]:
                    raise SettingError((option.name, i), f"must be at least {option.bounds['item_ge']:g}")
