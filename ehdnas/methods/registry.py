"""The search methods, in one registry, and the small protocol each one keeps.

A method names the settings dataclass that holds its options (`setting(...)`
fields: the CLI's flags and the server's spec fields come from it), the spaces
it searches, the step or loop that runs, and whether it needs a latency
predictor. Adding a method is one module with a class like these, decorated
with `@register_method`, and its import in `_builtin()` below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from ehdnas.core.events import Events
from ehdnas.core.registry import Registry
from ehdnas.core.settings import options
from ehdnas.spaces import SearchSpace


class Method(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `ehdnas methods`
    settings: ClassVar[type]  # a frozen dataclass with target, target_options, space_options and check()
    spaces: ClassVar[tuple[str, ...]]  # the spaces it searches, the default first
    # Whether it searches for a target that cannot measure (`external:NAME`), by its predictor alone; a method
    # that does not say is taken to measure.
    searches_unmeasured: ClassVar[bool]

    def space(self, name: str, space_options: dict[str, Any]) -> SearchSpace:
        """The space to search (a method may set options of its own, e.g. DCP-NAS's binary variant)."""
        ...

    def uses_predictor(self, settings: Any) -> bool:
        """Whether this search needs a latency predictor for its target and space."""
        ...

    def stages(self, settings: Any) -> tuple[dict[str, int], int]:
        """Units (epochs, generations) of each stage in the order they run, and the number of runs (a sweep)."""
        ...

    def run(self, settings: Any, predictor: Any, store: Any, out: Path, on_event: Events) -> dict[str, Any]:
        """Search; write the result folder `out` (resuming what it holds) and return result.json's content."""
        ...


METHODS: Registry[type[Method]] = Registry("search method")
DEFAULT_METHOD = "eh-dnas"  # what `search` runs when no method is named
M = TypeVar("M", bound=type)


def register_method(cls: M) -> M:
    """Class decorator: make `cls` (a Method) known under `cls.name`."""
    METHODS.register(cls.name)(cls)
    return cls


def _builtin() -> None:
    import ehdnas.methods.darts
    import ehdnas.methods.dcp_nas
    import ehdnas.methods.flownas
    import ehdnas.methods.tabular  # noqa: F401


def get_method(name: str) -> Method:
    _builtin()
    return METHODS.get(name)()


def method_names() -> list[str]:
    """Every method, sorted: the order does not depend on which module was imported first."""
    _builtin()
    return METHODS.names()


def default_method(space: str) -> str | None:
    """The method a search of `space` runs when none is named: DEFAULT_METHOD if it searches `space`, else the
    first whose default space it is."""
    if space in get_method(DEFAULT_METHOD).spaces:
        return DEFAULT_METHOD
    return next((name for name in method_names() if get_method(name).spaces[0] == space), None)


def describe(name: str) -> dict[str, Any]:
    """A method as `ehdnas methods --json` shows it: spaces and options with their defaults and bounds."""
    method = get_method(name)
    return {
        "name": name,
        "summary": method.summary,
        "spaces": list(method.spaces),
        "options": {o.name: {"default": o.default, "help": o.help, **o.bounds} for o in options(method.settings)},
    }


def owners() -> dict[str, list[str]]:
    """Each option name to the methods that take it."""
    found: dict[str, list[str]] = {}
    for name in method_names():
        for option in options(get_method(name).settings):
            found.setdefault(option.name, []).append(name)
    return found
