"""Every command's inputs checked at once, before any work: the one function each kind of work has, on both faces.

The CLI's `benchmark`, `collect`, `train-predictor` and `search` and the
server's jobs of the same kinds hand these functions what the user gave; each
returns what the work needs, or raises `SettingErrors` naming every field at
fault by its public name (the server's spec field; the CLI says the flag). So a
bad value is refused in the first second, in the same words on both faces: an
unknown or unavailable target, a target or space setting out of bounds or over
a limit (`ehdnas.core.limits`), an unparsable architecture, a timing protocol
that is not finite, a predictor trained for another target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError
from ehdnas.core.limits import SEED_MAX, SETTING_LIMITS, Limits, over_limit
from ehdnas.core.settings import SettingError
from ehdnas.methods.resolve import Resolved, SettingErrors, missing_predictor, resolve
from ehdnas.pipeline.key import MeasurementKey

Options = dict[str, Any] | list[str]
Field = str | tuple[str | int, ...]


@dataclass(frozen=True)
class Measuring:
    """A checked benchmark or collect: what measures, what, and how."""

    runner: Any
    space: Any
    archs: tuple[Any, ...]  # the architectures named one by one, parsed
    protocol: Any


class _Problems:
    """Problems found so far; `raise_any` raises them all as one SettingErrors."""

    def __init__(self) -> None:
        self.found: list[SettingError] = []

    def add(self, field: Field, message: str, unquoted: str | None = None) -> None:
        self.found.append(SettingError(field, message, unquoted))

    def limit(self, field: Field, value: Any, limits: Limits, name: str) -> None:
        if (problem := over_limit(value, limits, name)) is not None:
            self.add(field, problem)

    def raise_any(self) -> None:
        if self.found:
            raise SettingErrors(self.found)


def _runner(target: str, options: Options, limits: Limits, problems: _Problems) -> Any:
    """The target's runner if its name and settings are good and it runs here; else None, with the problem."""
    from backends import get_target
    from backends.base import target_class

    try:
        target_class(target)
    except UserError as err:
        problems.add("target", str(err))
        return None
    try:
        runner = get_target(target, options)
    except UserError as err:
        unquoted = getattr(err, "unquoted", None)  # a bad accelerator file: its problem without its values
        field = ("options", "accelerator") if unquoted else "accelerator" if "accelerator" in str(err) else "options"
        problems.add(field, str(err), unquoted)
        return None
    _usable(runner, limits, problems)
    if runner.remote is not None:  # at submission: the tracker answers and the key has a device
        from backends.remote.client import reachable

        if (problem := reachable(runner.remote)) is not None:
            problems.add(("options", "remote"), problem)
    return runner


def _usable(runner: Any, limits: Limits, problems: _Problems) -> None:
    """The target runs on this machine (in the words its runner would refuse it in), its settings within limits."""
    status = type(runner).availability()
    if not status.available:
        problems.add("target", f"target {runner.name!r} is not available here: {status.reason}")
    _setting_limits("options", runner.config_dict(), limits, problems)


def _setting_limits(where: str, config: dict[str, Any], limits: Limits, problems: _Problems) -> None:
    """Target and space settings over their limits (an accelerator's array sizes included)."""
    for name, value in config.items():
        if isinstance(value, dict):
            _setting_limits(where, value, limits, problems)
        elif name in SETTING_LIMITS:
            problems.limit((where, name), value, limits, SETTING_LIMITS[name])


def _space(space: str, options: Options, limits: Limits, problems: _Problems) -> Any:
    from ehdnas.spaces import get_space
    from ehdnas.spaces.base import SPACES

    try:
        SPACES.get(space)
    except UserError as err:
        problems.add("space", str(err))
        return None
    try:
        the_space = get_space(space, options)
    except UserError as err:
        problems.add("space_options", str(err))
        return None
    _setting_limits("space_options", the_space.config_dict(), limits, problems)
    return the_space


def _seed(seed: int, problems: _Problems) -> None:
    if not 0 <= seed <= SEED_MAX:
        problems.add("seed", f"{seed} is not a seed: 0 to {SEED_MAX}")


def check_protocol(values: dict[str, Any], limits: Limits, problems: _Problems | None = None) -> Any:
    """The timing protocol from `repeats`, `min_time`, `warmup`, `max_spread` and `clock`, checked and limited."""
    from ehdnas.pipeline.measure import timing_protocol

    own = problems or _Problems()
    own.limit("repeats", values["repeats"], limits, "repeats")
    own.limit("min_time", values["min_time"], limits, "min_time")
    infinite = [name for name, value in values.items() if isinstance(value, float) and not math.isfinite(value)]
    for name in infinite:  # named as the user set it, not by the protocol's field
        own.add(name, f"{values[name]!r} is not a finite number")
    protocol = None
    if not infinite:
        try:
            protocol = timing_protocol(
                values["repeats"], values["min_time"], values["warmup"], values["max_spread"], values["clock"]
            )
        except UserError as err:
            own.add("protocol", str(err))
    if problems is None:
        own.raise_any()
    return protocol


def check_measure(
    target: str, target_options: Options, space: str, space_options: Options, protocol: dict[str, Any],
    limits: Limits, *, archs: Sequence[str] = (), samples: int | None = None, seed: int = 0,
    strategy: str | None = None,
) -> Measuring:  # fmt: skip
    """A benchmark (archs and/or samples) or a collect (samples, strategy) of a space's architectures."""
    from ehdnas.pipeline.measure import STRATEGIES

    problems = _Problems()
    runner = _runner(target, target_options, limits, problems)
    the_space = _space(space, space_options, limits, problems)
    if samples is not None:
        if samples < 1:
            problems.add("samples", "must be at least 1")
        problems.limit("samples", samples, limits, "samples")
    if len(archs) > limits.archs:
        problems.add("archs", f"{len(archs)} architectures; at most {limits.archs} (limit 'archs')")
    _seed(seed, problems)
    if strategy is not None and strategy not in STRATEGIES:
        problems.add("strategy", f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    parsed = []
    if the_space is not None:
        for i, text in enumerate(archs[: limits.archs]):
            try:
                parsed.append(the_space.parse(text))
            except UserError as err:
                problems.add(("archs", i), str(err))
    timing = check_protocol(protocol, limits, problems)
    problems.raise_any()
    return Measuring(runner, the_space, tuple(parsed), timing)


def check_files(
    target: str, target_options: Options, protocol: dict[str, Any], input_shapes: dict[str, tuple[int, ...]],
    limits: Limits,
) -> tuple[Any, Any]:  # fmt: skip
    """A benchmark of ONNX files (the CLI's `--model`): the runner and the protocol; no input over the limit."""
    problems = _Problems()
    runner = _runner(target, target_options, limits, problems)
    for name, shape in input_shapes.items():
        problems.limit(("input_shape", name), math.prod(shape), limits, "input_elements")
    timing = check_protocol(protocol, limits, problems)
    problems.raise_any()
    return runner, timing


def check_train(
    target: str, target_options: Options, space: str, space_options: Options, kinds: Sequence[str], seed: int,
    limits: Limits,
) -> tuple[Any, Any]:  # fmt: skip
    """A train-predictor: the runner and the space whose measurements it trains on."""
    from perf_models.kinds import kind_names

    problems = _Problems()
    runner = _runner(target, target_options, limits, problems)
    the_space = _space(space, space_options, limits, problems)
    known = kind_names()
    if not kinds:
        problems.add("kinds", f"needs at least one predictor kind; known: {', '.join(known)}")
    for i, kind in enumerate(kinds):
        if kind not in known:
            problems.add(("kinds", i), f"unknown predictor kind {kind!r}; known: {', '.join(known)}")
    _seed(seed, problems)
    problems.raise_any()
    return runner, the_space


# A search's settings bounded by a limit: of the same name, but teacher epochs count as epochs.
_SEARCH_LIMITS = {"epochs": "epochs", "retrain_epochs": "retrain_epochs", "teacher_epochs": "epochs"}


def check_search(
    target: str, target_options: Options, space: str | None, space_options: Options, method: str | None,
    values: dict[str, Any], limits: Limits, predictors: Path | None = None,
) -> Resolved:  # fmt: skip
    """A search: its method's resolved settings, the target available, within the limits, its predictor there
    (a file the user names; on the server, a name in the `predictors` folder) and made for this target."""
    from backends.base import target_class
    from ehdnas.pipeline.predictors import predictor_problem

    try:
        target_class(target)
    except UserError as err:
        raise SettingErrors([SettingError("target", str(err))]) from None
    resolved = resolve(target, target_options, space, space_options, method, values)
    problems = _Problems()
    _usable(resolved.runner, limits, problems)
    _setting_limits("space_options", resolved.space.config_dict(), limits, problems)
    settings, choice = resolved.settings, resolved.predictor
    _seed(settings.seed, problems)
    for name, limit in _SEARCH_LIMITS.items():
        problems.limit(name, getattr(settings, name, None), limits, limit)
    if len(getattr(settings, "lambdas", ())) > limits.lambdas:
        problems.add("lambdas", f"{len(settings.lambdas)} searches; at most {limits.lambdas} (limit 'lambdas')")
    for count in getattr(settings, "pairs", ()):
        problems.limit("pairs", count, limits, "pairs")
    if hasattr(settings, "evolution_settings"):
        evolution = settings.evolution_settings()
        evaluations = evolution.population + (evolution.generations - 1) * (evolution.mutations + evolution.crossovers)
        if evaluations > limits.evaluations:
            problems.add("evolution",
                f"{evaluations} fitness evaluations (population + (generations - 1) x (mutations + crossovers)); "
                f"at most {limits.evaluations} (limit 'evaluations')")  # fmt: skip
    if choice is not None:
        problems.limit("auto_samples", choice.auto_samples, limits, "auto_samples")
        path = _predictor_file(resolved, predictors, problems)
        if path is not None and (why := predictor_problem(path, resolved.runner, resolved.space)) is not None:
            problems.add("predictor", why)
    problems.raise_any()
    return resolved


def _predictor_file(resolved: Resolved, predictors: Path | None, problems: _Problems) -> Path | None:
    """The predictor file a search will load, if it exists; a problem if the search can neither find nor make it."""
    name = resolved.predictor.predictor
    if name is None:
        if (missing := missing_predictor(resolved)) is not None:
            problems.add(missing.field, missing.message)
        path = MeasurementKey.of(resolved.runner, resolved.space).predictor_path()
        return path if path.is_file() else None
    if predictors is None:
        path = Path(name)
        if not path.is_file():
            problems.add("predictor", f"{name}: no such predictor file")
        return path if path.is_file() else None
    if Path(name).name != name or not (predictors / name).is_file():
        problems.add("predictor", f"no predictor {name!r}: GET /v1/predictors lists them")
        return None
    return predictors / name
