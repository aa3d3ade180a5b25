"""From what a user set (CLI flags or a search job's spec) to a method's checked settings: one function, two faces.

Both faces hand `resolve` the same things: the target and space with their
options, the method name and the option values the user set. Unset options take
the method's defaults; an option of another method is refused by name, never
ignored. `Resolved.document()` is what `search --dry-run --json` prints and
what `POST /v1/jobs` with `dry_run` returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from ehdnas.core.errors import UserError
from ehdnas.core.options import convert
from ehdnas.core.settings import Option, SettingError, check_fields, options, setting
from ehdnas.methods.registry import DEFAULT_METHOD, Method, default_method, get_method, method_names, owners
from ehdnas.pipeline.key import MeasurementKey
from perf_models.train import MIN_MEASUREMENTS


def deprecated_space_choice(space: str, method: str) -> str:
    """The note for a space that names the method (FlowNAS was chosen by `--space flownas` before methods)."""
    return (
        f"space {space!r} without a method is deprecated and will stop choosing the method in the next release: "
        f'name the method (--method {method}; "method": "{method}")'
    )


@dataclass(frozen=True)
class PredictorChoice:
    """Where a search that needs a latency predictor gets it."""

    predictor: str | None = setting(None, help="Predictor file [the one train-predictor saved for this key].")
    auto_predictor: bool = setting(False, help="Without a predictor: collect measurements and train one first.")
    auto_samples: int = setting(200, ge=MIN_MEASUREMENTS, help="Measurements auto_predictor collects.")


PREDICTOR_OPTIONS = tuple(o.name for o in options(PredictorChoice))


class SettingErrors(UserError):
    """Every problem found in one request, each with its field; reads as the first."""

    def __init__(self, problems: list[SettingError]) -> None:
        self.problems = problems
        super().__init__(str(problems[0]))


@dataclass(frozen=True)
class Resolved:
    method: Method
    runner: Any
    space: Any
    settings: Any
    predictor: PredictorChoice | None  # None: this search needs no predictor
    notes: tuple[str, ...] = field(default=())

    def options(self) -> dict[str, Any]:
        """Every option of this search by its public name, as resolved (a job stores these, not the defaults)."""
        found = {o.name: getattr(self.settings, o.field) for o in options(self.method.settings)}
        if self.predictor is not None:
            found |= {o.name: getattr(self.predictor, o.field) for o in options(PredictorChoice)}
        return found | {"method": self.method.name, "space": self.space.name}

    def document(self) -> dict[str, Any]:
        """The fully resolved request, as both faces show it."""
        return {
            "method": self.method.name,
            "space": self.space.name,
            "target": self.runner.name,
            "settings": self.settings.to_dict(),
            "predictor": None if self.predictor is None else dataclasses.asdict(self.predictor),
            "notes": list(self.notes),
        }


def _typed(name: str, value: Any, kind: Any) -> Any:
    """`value` as the declared `kind`; a list's items and a dict's text values converted too."""
    origin = get_origin(kind)
    if origin is list and isinstance(value, list | tuple):
        (item,) = get_args(kind)
        return [_typed(name, v, item) for v in value]
    if origin is dict and isinstance(value, dict):
        return dict(value)
    if value is None and type(None) in get_args(kind):
        return None
    try:
        return convert(value, kind, name)
    except UserError as err:
        raise SettingError(name, str(err).removeprefix(f"{name}: ")) from None


def _fields(cls: type, values: dict[str, Any], problems: list[SettingError]) -> dict[str, Any]:
    """Option values by public name (all options of settings class `cls`) as its typed fields; each value that
    does not convert is a problem."""
    by_name = {o.name: o for o in options(cls)}
    typed = {}
    for name, value in values.items():
        try:
            typed[by_name[name].field] = _typed(name, value, by_name[name].kind)
        except SettingError as err:
            problems.append(err)
    return typed


def _foreign(name: str, method: Method, space: str) -> str:
    """Why option `name` does not go with this search."""
    if name not in owners():
        known = sorted({o.name for o in options(method.settings)} | set(PREDICTOR_OPTIONS))
        return f"unknown option of {method.name}; known: {', '.join(known)}"
    taking = [get_method(m) for m in owners()[name]]
    spaces = sorted({s for m in taking for s in m.spaces})
    if space not in spaces:
        return f"applies to {' or '.join(spaces)} searches only, not to {space}"
    return f"applies to {' or '.join(m.name for m in taking)} searches only, not to {method.name}"


def resolve(
    target: str,
    target_options: dict[str, Any] | list[str],
    space: str | None,
    space_options: dict[str, Any] | list[str],
    method: str | None,
    values: dict[str, Any],
) -> Resolved:
    """The checked settings of the search these inputs ask for; SettingErrors naming every field at fault."""
    from backends import get_target
    from ehdnas.spaces.base import SPACES

    problems: list[SettingError] = []
    notes: list[str] = []
    if space is not None and space not in SPACES.names():
        raise SettingErrors([SettingError("space", f"unknown space {space!r}; known: {', '.join(SPACES.names())}")])
    if method is None:
        method = (default_method(space) if space is not None else None) or DEFAULT_METHOD
        if method != DEFAULT_METHOD:  # the space chose the method, as --space flownas did before methods
            notes.append(deprecated_space_choice(space, method))
    if method not in method_names():
        raise SettingErrors([SettingError("method", f"unknown search method {method!r}; known: "
                                          f"{', '.join(method_names())}")])  # fmt: skip
    chosen = get_method(method)
    space = space or chosen.spaces[0]
    if space not in chosen.spaces:
        why = f"applies to {' or '.join(chosen.spaces)} searches only, not to {space}"
        problems.append(SettingError("method", why))
        fallback = default_method(space)
        if fallback is None:
            raise SettingErrors(problems)
        chosen = get_method(fallback)
    try:
        runner = get_target(target, target_options)
    except UserError as err:
        raise SettingErrors([*problems, SettingError("options", str(err), getattr(err, "unquoted", None))]) from None
    if not runner.measures and not getattr(chosen, "searches_unmeasured", False):  # undeclared: it measures
        why = f"{chosen.name} measures on its target, and {runner.name} cannot measure (its latencies are imported)"
        problems.append(SettingError("target", why))
    try:
        the_space = chosen.space(space, space_options if isinstance(space_options, dict) else _pairs(space_options))
    except UserError as err:
        raise SettingErrors([*problems, SettingError("space_options", str(err))]) from None
    own = {o.name for o in options(chosen.settings)}
    asked_predictor = {name: value for name, value in values.items() if name in PREDICTOR_OPTIONS}
    problems += [SettingError(n, _foreign(n, chosen, space)) for n in values if n not in own | set(asked_predictor)]
    given = _fields(chosen.settings, {n: v for n, v in values.items() if n in own}, problems)
    base = {"target": runner.name, "target_options": runner.config_dict(), "space_options": the_space.config_dict()}
    if "space" in {f.name for f in dataclasses.fields(chosen.settings)}:  # a method of several spaces: which one
        base["space"] = the_space.name
    settings = chosen.settings(**base, **given)
    try:
        settings.check()
    except SettingError as err:
        problems.append(err)
    except UserError as err:
        problems.append(SettingError("settings", str(err)))
    if not runner.measures and chosen.stages(settings)[1] > 1:
        why = f"a sweep compares measured latencies, and {runner.name} cannot measure: one lambda at a time"
        problems.append(SettingError("lambdas", why))
    predictor = _predictor_choice(chosen, settings, asked_predictor, problems)
    if problems:
        raise SettingErrors(problems)
    return Resolved(chosen, runner, the_space, settings, predictor, tuple(notes))


def _pairs(items: list[str]) -> dict[str, str]:
    from ehdnas.core.options import parse_pairs

    return parse_pairs(items, "space")


def _predictor_choice(
    method: Method, settings: Any, asked: dict[str, Any], problems: list[SettingError]
) -> PredictorChoice | None:
    if not method.uses_predictor(settings):
        why = "applies with latency_from 'predictor' only; this search measures latency on the target"
        problems += [SettingError(name, why) for name, value in asked.items() if value != _default(name)]
        return None
    choice = PredictorChoice(**_fields(PredictorChoice, asked, problems))
    try:
        check_fields(choice)
    except SettingError as err:
        problems.append(err)
    return choice


def _default(name: str) -> Any:
    return next(o.default for o in options(PredictorChoice) if o.name == name)


def face_options() -> list[tuple[Option, str]]:
    """Each option a search takes, once (every method's, then the predictor's), with each method's default: what
    the CLI's flags and the server's spec fields are made from."""
    found: dict[str, Option] = {}
    defaults: dict[str, list[str]] = {}
    for name in method_names():
        for option in options(get_method(name).settings):
            found.setdefault(option.name, option)
            defaults.setdefault(option.name, []).append(f"{name}: {option.describe_default()}")
    for option in options(PredictorChoice):
        found[option.name], defaults[option.name] = option, [option.describe_default()]
    return [(option, "; ".join(defaults[name])) for name, option in found.items()]


def missing_predictor(resolved: Resolved) -> SettingError | None:
    """The problem of a search that needs a predictor, names none, finds none where it looks, and may not make one."""
    choice = resolved.predictor
    if choice is None or choice.auto_predictor or choice.predictor is not None:
        return None
    if MeasurementKey.of(resolved.runner, resolved.space).predictor_path().is_file():
        return None
    can_measure = "latency_from" in {o.name for o in options(resolved.method.settings)}
    measured = " (or latency_from 'measured')" if can_measure else ""
    return SettingError(
        "auto_predictor",
        f"no latency predictor for {resolved.space.name} on {resolved.runner.name} with these settings: train one "
        f"first (collect, then train-predictor, with the same target and space settings), or set auto_predictor"
        f"{measured}",
    )
