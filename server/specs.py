"""What a job asks for: one pydantic spec per kind (`SPECS`, the one table of job kinds), and the checks at submission.

The search spec is derived from the methods' settings classes. Pydantic checks
shapes and types; `check_spec` then makes the checks the CLI makes at a
command's start, with the same functions (`ehdnas.methods.requests`: unknown or
unavailable target, bad target or space setting, unparsable architecture,
another method's option, a missing predictor or one made for another target,
anything over the `Limits`), so a bad job is refused with 422 instead of
failing an hour later. An operator raises a limit with `ehdnas serve --limit`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PrivateAttr, create_model

from backends.protocol import TimingProtocol
from ehdnas.core.limits import SEED_MAX, Limits
from ehdnas.methods.registry import DEFAULT_METHOD
from ehdnas.tasks.images import data_folder  # and registers image data sets: int8 targets calibrate on them

_PROTOCOL = TimingProtocol()
Setting = str | int | float | bool


class _Spec(BaseModel):
    """What every kind names: a target with its settings, and a space with its settings."""

    # NaN and Infinity are no JSON numbers, yet Python's reader takes them: refused here, where the field is named,
    # they never reach a check that a NaN passes (every comparison with it is false) nor a JSON answer.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target: str = Field(description="Target name, as `GET /v1/targets` lists them.", examples=["ort-cpu"])
    options: dict[str, Setting] = Field(default_factory=dict, description="Target settings, as the CLI's -o.")
    accelerator: dict[str, JsonValue] | None = Field(
        default=None, description="A systolic-* target's accelerator description (the TOML file's keys)."
    )
    space: str = "darts"
    space_options: dict[str, Setting] = Field(default_factory=dict, description="Space settings (--space-option).")

    def target_options(self) -> dict[str, Any]:
        return {**self.options, **({"accelerator": self.accelerator} if self.accelerator else {})}

    def runner(self) -> Any:
        """The runner the spec names (raises UserError on a bad name or setting)."""
        from backends import get_target

        return get_target(self.target, self.target_options())

    def the_space(self) -> Any:
        from ehdnas.spaces import get_space

        return get_space(self.space, self.space_options)


class _ProtocolSpec(_Spec):
    repeats: int = Field(_PROTOCOL.min_repeats, ge=1, description="Minimum timed runs per model.")
    min_time: float = Field(_PROTOCOL.min_time_s, ge=0, description="Minimum timed seconds per model.")
    warmup: int = Field(_PROTOCOL.warmup, ge=0, le=10_000, description="Untimed warm-up runs per model.")
    max_spread: float = Field(
        _PROTOCOL.max_spread,
        gt=0,
        le=10,
        description="Time more rounds while the kept rounds' medians lie further apart (slowest/fastest - 1).",
    )
    clock: Literal["wall", "cpu"] = Field(_PROTOCOL.clock, description="wall: elapsed time; cpu: thread CPU time.")

    def protocol(self) -> TimingProtocol:
        from ehdnas.pipeline.measure import timing_protocol

        return timing_protocol(self.repeats, self.min_time, self.warmup, self.max_spread, self.clock)

    def protocol_values(self) -> dict[str, Any]:
        return {
            "repeats": self.repeats, "min_time": self.min_time, "warmup": self.warmup, "max_spread": self.max_spread,
            "clock": self.clock,
        }  # fmt: skip


class BenchmarkSpec(_ProtocolSpec):
    samples: int | None = Field(None, ge=1, description="Sampled architectures [1, or none when archs are given].")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    archs: list[str] = Field(default_factory=list, description="Architectures of the space, text or JSON form.")
    fresh: bool = Field(False, description="Measure again even if the store has it.")

    def sample_count(self) -> int:
        return self.samples if self.samples is not None else 0 if self.archs else 1

    def checked(self, limits: Limits) -> Any:
        from ehdnas.methods.requests import check_measure

        return check_measure(self.target, self.target_options(), self.space, self.space_options,
                             self.protocol_values(), limits, archs=self.archs, samples=self.samples,
                             seed=self.seed)  # fmt: skip


class CollectSpec(_ProtocolSpec):
    samples: int = Field(ge=1, description="Size of the seeded sample set to have measured.")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    strategy: Literal["uniform", "uncertain"] = "uniform"

    def checked(self, limits: Limits) -> Any:
        from ehdnas.methods.requests import check_measure

        return check_measure(self.target, self.target_options(), self.space, self.space_options,
                             self.protocol_values(), limits, samples=self.samples, seed=self.seed,
                             strategy=self.strategy)  # fmt: skip


def _kind_names() -> list[str]:
    from perf_models.kinds import kind_names

    return kind_names()


class TrainPredictorSpec(_Spec):
    kinds: list[str] = Field(default_factory=lambda: _kind_names(), min_length=1, description="Predictor kinds.")
    seed: int = Field(0, ge=0, le=SEED_MAX)

    def checked(self, limits: Limits) -> Any:
        from ehdnas.methods.requests import check_train

        return check_train(self.target, self.target_options(), self.space, self.space_options, self.kinds,
                           self.seed, limits)  # fmt: skip


def _option_fields() -> dict[str, Any]:
    """Every method's options (and the predictor's) as optional spec fields: unset takes the method's default."""
    from ehdnas.methods.resolve import face_options

    return {
        option.name: (option.kind | None, Field(None, description=f"{option.help} [{defaults}]"))
        for option, defaults in face_options()
    }


class _SearchBase(_Spec):
    """The CLI's `search`: a method (eh-dnas, dcp-nas, flownas, evolution, random; `ehdnas methods`) on one of its
    spaces."""

    method: str | None = Field(None, description=f"The search method (GET /v1/methods) [{DEFAULT_METHOD}].")
    _resolved: Any = PrivateAttr(default=None)
    space: str | None = Field(None, description="The space to search [the method's first].")  # type: ignore[assignment]

    def resolve(self) -> Any:
        """The method's checked settings (raises SettingErrors naming each field at fault); resolved once per spec,
        since submission checks, stores and (on a dry run) shows the same resolution."""
        if self._resolved is None:
            from ehdnas.methods.resolve import resolve

            values = self.model_dump(exclude_none=True, exclude=set(_Spec.model_fields) | {"method"})
            self._resolved = resolve(
                self.target, self.target_options(), self.space, self.space_options, self.method, values
            )
        return self._resolved

    def checked(self, limits: Limits) -> Any:
        """`resolve`, and the rest of what a search checks at its start: availability, limits, the predictor."""
        from ehdnas.core.paths import predictors_dir
        from ehdnas.methods.requests import check_search

        values = self.model_dump(exclude_none=True, exclude=set(_Spec.model_fields) | {"method"})
        self._resolved = check_search(self.target, self.target_options(), self.space, self.space_options,
                                      self.method, values, limits, predictors_dir())  # fmt: skip
        return self._resolved

    def predictor_path(self) -> Path | None:
        from ehdnas.core.paths import predictors_dir

        name = getattr(self, "predictor", None)
        return predictors_dir() / name if name else None


def dry_run_document(spec: _Spec) -> dict[str, Any]:
    """What a job with this (checked) spec would run: a search's resolved settings, as `search --dry-run --json`
    prints them; the spec itself for the other kinds."""
    return spec.resolve().document() if isinstance(spec, _SearchBase) else stored_spec(spec)


def stored_spec(spec: _Spec) -> dict[str, Any]:
    """What a job records of its spec: a search's every option as resolved, so a later default never changes it."""
    if not isinstance(spec, _SearchBase):
        return spec.model_dump(mode="json")
    base = spec.model_dump(mode="json", include=set(_Spec.model_fields))
    return base | spec.resolve().options()


_NOT_ALLOWED = (
    "this server reads no file or folder outside the ones its operator allows (ehdnas serve --data-dir DIR, "
    "or EHDNAS_DATA_DIRS)"
)
_INLINE = "; or give the accelerator inline, as the spec's `accelerator` object"


Problems = list[tuple[tuple[str | int, ...], str]]


def outside_data_dirs(spec: _Spec, data_dirs: Sequence[Path]) -> Problems:
    """The spec's paths (an accelerator file, an accuracy table, a data or calibration folder) that lie outside
    `data_dirs`, symlinks and `..` resolved. Checked before anything looks at them, in words that do not depend
    on whether they exist: a client learns nothing of the server's files."""
    options = spec.target_options()
    accelerator = options.get("accelerator")
    paths: dict[tuple[str, ...], str] = {}
    if isinstance(accelerator, str) and accelerator:
        paths["options", "accelerator"] = accelerator  # read as given, as load_accelerator reads it
    table = getattr(spec, "accuracy_table", None)
    if isinstance(table, str) and table:
        paths[("accuracy_table",)] = table  # a tabular search's fitness, read as given
    for loc, value in [
        (("options", "calibration"), options.get("calibration")),
        (("data",), getattr(spec, "data", None)),
    ]:
        if isinstance(value, str) and ":" in value:  # KIND:DIR
            paths[loc] = str(data_folder(value.partition(":")[2]))
    allowed = [Path(os.path.realpath(os.path.expanduser(folder))) for folder in data_dirs]

    def inside(path: str) -> bool:
        real = Path(os.path.realpath(path)) if "\0" not in path else None  # realpath refuses a NUL byte
        return real is not None and any(real.is_relative_to(folder) for folder in allowed)

    return [
        (loc, _NOT_ALLOWED + (_INLINE if "accelerator" in loc else ""))
        for loc, path in paths.items()
        if not inside(path)
    ]


SearchSpec = create_model("SearchSpec", __base__=_SearchBase, **_option_fields())


# The job kinds: the one table of them. The request models, the list filter and the executors come from it.
SPECS: dict[str, type[_Spec]] = {
    "search": SearchSpec,
    "collect": CollectSpec,
    "train_predictor": TrainPredictorSpec,
    "benchmark": BenchmarkSpec,
}


def check_spec(spec: _Spec, limits: Limits) -> Problems:
    """Every problem with a well-formed spec, as (location within the spec, message); empty when it can run.
    The library's checks of each kind of work (`ehdnas.methods.requests`), as the CLI makes them."""
    from ehdnas.methods.resolve import SettingErrors

    try:
        spec.checked(limits)
    except SettingErrors as errors:
        return [(error.field, error.unquoted) for error in errors.problems]  # a client may not read a server file
    return []
