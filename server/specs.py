"""What a job asks for: one pydantic spec per kind, mirroring the CLI's options, and the checks at submission.

Pydantic checks shapes and types; `check_spec` then asks the library what the
CLI would find out at its start (unknown target, unavailable target, bad
target or space setting, unparsable architecture, missing predictor), so a bad
job is refused with 422 instead of failing an hour later. `Limits` bound the
work one job may ask for; an operator raises them with `ehdnas serve --limit`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

import ehdnas.tasks.images  # noqa: F401  (registers image data sets: int8 targets calibrate on them)
from backends.protocol import TimingProtocol
from ehdnas.core.errors import UserError

_PROTOCOL = TimingProtocol()
Setting = str | int | float | bool


@dataclass(frozen=True)
class Limits:
    """The most one job may ask for."""

    samples: int = 20_000  # architectures a collect or benchmark job measures
    archs: int = 100  # architectures named one by one in a benchmark job
    epochs: int = 200  # search epochs
    retrain_epochs: int = 300
    lambdas: int = 8  # searches in one sweep
    auto_samples: int = 5_000
    pairs: int = 10_000  # flow pairs in each split of a flownas search
    evaluations: int = 10_000  # fitness evaluations of a flownas search's evolution
    repeats: int = 10_000  # timed runs per model
    min_time: float = 60.0  # timed seconds per model
    body_bytes: int = 64 * 1024  # request body

    def check(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) <= 0:
                raise UserError(f"limit {field.name} must be positive")


class _Spec(BaseModel):
    """What every kind names: a target with its settings, and a space with its settings."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(description="Target name, as `GET /v1/targets` lists them.", examples=["ort-cpu"])
    options: dict[str, Setting] = Field(default_factory=dict, description="Target settings, as the CLI's -o.")
    accelerator: dict[str, Any] | None = Field(
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
    max_cv: float = Field(_PROTOCOL.max_cv, gt=0, le=10, description="Time a model again while its cv is above.")

    def protocol(self) -> TimingProtocol:
        from ehdnas.pipeline.measure import timing_protocol

        return timing_protocol(self.repeats, self.min_time, self.warmup, self.max_cv)


class BenchmarkSpec(_ProtocolSpec):
    samples: int | None = Field(None, ge=1, description="Sampled architectures [1, or none when archs are given].")
    seed: int = Field(0, ge=0)
    archs: list[str] = Field(default_factory=list, description="Architectures of the space, text or JSON form.")
    fresh: bool = Field(False, description="Measure again even if the store has it.")

    def sample_count(self) -> int:
        return self.samples if self.samples is not None else 0 if self.archs else 1


class CollectSpec(_ProtocolSpec):
    samples: int = Field(ge=1, description="Size of the seeded sample set to have measured.")
    seed: int = Field(0, ge=0)
    strategy: Literal["uniform", "uncertain"] = "uniform"


def _kind_names() -> list[str]:
    from perf_models.kinds import kind_names

    return kind_names()


class TrainPredictorSpec(_Spec):
    kinds: list[str] = Field(default_factory=lambda: _kind_names(), min_length=1, description="Predictor kinds.")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        known = _kind_names()
        for kind in kinds:
            if kind not in known:
                raise ValueError(f"unknown predictor kind {kind!r}; known: {', '.join(known)}")
        return kinds

    seed: int = Field(0, ge=0)


class SearchSpec(_Spec):
    """The CLI's `search`: EH-DNAS or DCP-NAS on the darts space, or FlowNAS's encoder search (space flownas)."""

    space: Literal["darts", "flownas"] = Field(
        "darts", description="darts: EH-DNAS or DCP-NAS; flownas: an optical-flow encoder under a latency budget."
    )
    lambdas: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [0.5], min_length=1, description="darts: hardware-term weights; several run a sweep."
    )
    loss_form: Literal["eh-dnas", "add#linear", "mul#log", "hinge"] = Field("eh-dnas", description="darts only.")
    data: str | None = Field(
        None,
        description="darts: digits (default), cifar10:DIR or folder:DIR; flownas: photos (default), chairs:DIR or "
        "sintel:DIR (a folder on the server).",
    )
    epochs: int = Field(25, ge=1, description="Search epochs (flownas: supernet training).")
    retrain_epochs: int = Field(30, ge=1, description="darts only.")
    batch_size: int = Field(64, ge=1, le=65_536)
    arch_lr: float = Field(3e-4, gt=0, le=10, description="darts only.")
    gumbel_tau: float = Field(0.0, ge=0, le=1_000, description="darts only.")
    target_ms: float = Field(0.0, ge=0, description="darts only: the hinge form's latency budget.")
    seed: int = Field(0, ge=0)
    method: Literal["eh-dnas", "dcp-nas"] = Field("eh-dnas", description="darts: dcp-nas is a 1-bit child (binary).")
    dcp_lambda: float = Field(5e-3, ge=0, description="DCP-NAS: tangent-propagation weight; 0 is CP-NAS.")
    dcp_mu: float = Field(0.2, ge=0, description="DCP-NAS: 1-bit weights' reconstruction-loss weight.")
    latency_budget_ms: float | None = Field(
        None, gt=0, description="flownas, required: the encoder's latency budget on the target (ms)."
    )
    latency_from: Literal["predictor", "measured"] = Field(
        "predictor", description="flownas: check the budget by the predictor's estimate or measured on the target."
    )
    teacher_epochs: int = Field(10, ge=1, description="flownas: teacher training epochs.")
    pairs: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="flownas: TRAIN, VAL, TEST pairs of the flow data [none: 320, 48, 48]."
    )
    evolution: dict[str, int | float] = Field(
        default_factory=dict,
        description="flownas: evolution settings (population, generations, parents, mutations, mutation_prob, "
        "crossovers, max_draws) [FlowNAS's].",
    )
    predictor: str | None = Field(
        None, description="A file that `GET /v1/predictors` lists [the one trained for this target and space]."
    )
    auto_predictor: bool = Field(False, description="Without a predictor: collect measurements and train one first.")
    auto_samples: int = Field(200, ge=1)

    @field_validator("pairs")
    @classmethod
    def _three_or_none(cls, pairs: list[int]) -> list[int]:
        if len(pairs) not in (0, 3):
            raise ValueError("three counts (TRAIN, VAL, TEST), or none for the defaults")
        return pairs

    def the_space(self) -> Any:
        from ehdnas.methods.darts import search_space

        if self.space == "flownas":
            return super().the_space()
        return search_space(self.method, self.space, self.space_options)  # dcp-nas sets the binary variant

    def predictor_path(self) -> Path | None:
        from ehdnas.core.paths import predictors_dir

        return predictors_dir() / self.predictor if self.predictor else None

    def uses_predictor(self) -> bool:
        return self.space == "darts" or self.latency_from == "predictor"

    def flow_settings(self, runner: Any, space: Any) -> Any:
        """The flownas search's settings (checked: raises UserError)."""
        from ehdnas.methods.flownas import flow_search_settings

        return flow_search_settings(
            runner, space, self.data, self.latency_budget_ms or 0.0, self.latency_from, self.epochs,
            self.teacher_epochs, self.batch_size, self.evolution, self.seed, self.pairs,
        )  # fmt: skip


# The fields that only one space's search reads: set for the other, they are refused rather than ignored.
_ONLY_FOR = {
    "darts": ("lambdas", "loss_form", "retrain_epochs", "arch_lr", "gumbel_tau", "target_ms", "method", "dcp_lambda",
              "dcp_mu"),
    "flownas": ("latency_budget_ms", "latency_from", "teacher_epochs", "pairs", "evolution"),
}  # fmt: skip


SPECS: dict[str, type[_Spec]] = {
    "search": SearchSpec,
    "collect": CollectSpec,
    "train_predictor": TrainPredictorSpec,
    "benchmark": BenchmarkSpec,
}

# Spec fields bounded by a limit: of the same name, but teacher epochs count as epochs.
_BOUNDED = {name: name for name in ("samples", "epochs", "retrain_epochs", "repeats", "min_time", "auto_samples")}
_BOUNDED["teacher_epochs"] = "epochs"
_BOUNDED_LENGTH = ("archs", "lambdas")


def check_spec(spec: _Spec, limits: Limits) -> list[tuple[tuple[str | int, ...], str]]:
    """Every problem with a well-formed spec, as (location within the spec, message); empty when it can run."""
    from backends.base import TARGETS
    from ehdnas.spaces.base import SPACES

    problems: list[tuple[tuple[str | int, ...], str]] = []
    unread = _unread(spec) if isinstance(spec, SearchSpec) else {}
    for name, bound in _BOUNDED.items():
        value, limit = getattr(spec, name, None), getattr(limits, bound)
        if value is not None and value > limit and name not in unread:
            problems.append(((name,), f"at most {limit} on this server (the operator's --limit)"))
    for name in _BOUNDED_LENGTH:
        if len(getattr(spec, name, ())) > getattr(limits, name):
            problems.append(((name,), f"at most {getattr(limits, name)} items on this server"))
    runner = space = None
    if spec.target not in TARGETS.names():
        problems.append((("target",), f"unknown target {spec.target!r}; known: {', '.join(TARGETS.names())}"))
    else:
        try:
            runner = spec.runner()
        except UserError as err:
            problems.append((("accelerator" if "accelerator" in str(err) else "options",), str(err)))
        else:
            status = type(runner).availability()
            if not status.available:
                problems.append((("target",), f"target {spec.target!r} is unavailable here: {status.reason}"))
    if spec.space not in SPACES.names():
        problems.append((("space",), f"unknown space {spec.space!r}; known: {', '.join(SPACES.names())}"))
    else:
        try:
            space = spec.the_space()
        except UserError as err:
            problems.append((("space_options",), str(err)))
    if space is not None:
        for i, text in enumerate(getattr(spec, "archs", ())):
            try:
                space.parse(text)
            except UserError as err:
                problems.append((("archs", i), str(err)))
    if isinstance(spec, SearchSpec):
        problems += [((name,), why) for name, why in unread.items() if getattr(spec, name) != _default(name)]
        problems += _check_flownas(spec, runner, space, limits) if spec.space == "flownas" else _check_data(spec)
        if spec.uses_predictor():
            problems += _check_predictor(spec, runner, space)
    return problems


def _unread(spec: SearchSpec) -> dict[str, str]:
    """The fields this search does not read, with why: set to anything but their default, they are refused."""
    other = "flownas" if spec.space == "darts" else "darts"
    unread = {name: f"applies to {other} searches only, not to {spec.space}" for name in _ONLY_FOR[other]}
    if not spec.uses_predictor():
        why = "applies with latency_from 'predictor' only; this search measures latency on the target"
        unread |= dict.fromkeys(("predictor", "auto_predictor", "auto_samples"), why)
    return unread


def _default(name: str) -> Any:
    return SearchSpec.model_fields[name].get_default(call_default_factory=True)


def _check_data(spec: SearchSpec) -> list[tuple[tuple[str | int, ...], str]]:
    from ehdnas.tasks.images import check_data_spec

    try:
        check_data_spec(spec.data or "digits")
    except UserError as err:
        return [(("data",), str(err))]
    return []


def _check_flownas(
    spec: SearchSpec, runner: Any, space: Any, limits: Limits
) -> list[tuple[tuple[str | int, ...], str]]:
    """What the CLI's flownas search would refuse at its start: no budget, a bad evolution setting, no data."""
    from ehdnas.tasks.flow_data import check_flow_data_spec

    problems: list[tuple[tuple[str | int, ...], str]] = []
    if spec.latency_budget_ms is None:
        problems.append((("latency_budget_ms",), "a flownas search needs a latency budget (ms) on the target"))
    if any(count > limits.pairs for count in spec.pairs):
        problems.append((("pairs",), f"at most {limits.pairs} pairs each on this server (the operator's --limit)"))
    try:
        check_flow_data_spec(spec.data or "photos")
    except UserError as err:
        problems.append((("data",), str(err)))
    if runner is None or space is None or spec.latency_budget_ms is None:
        return problems
    try:
        evolution = spec.flow_settings(runner, space).evolution_settings()
    except UserError as err:  # pydantic bounds the other settings: what is left is the evolution's
        problems.append((("evolution",) if "evolution" in str(err) else (), str(err)))
        return problems
    evaluations = evolution.population + (evolution.generations - 1) * (evolution.mutations + evolution.crossovers)
    if evaluations > limits.evaluations:
        problems.append(
            (
                ("evolution",),
                f"{evaluations} fitness evaluations (population + (generations - 1) x (mutations + crossovers)); "
                f"at most {limits.evaluations} on this server (the operator's --limit)",
            )
        )
    return problems


def _check_predictor(spec: SearchSpec, runner: Any, space: Any) -> list[tuple[tuple[str | int, ...], str]]:
    from ehdnas.pipeline.key import MeasurementKey
    from perf_models.train import MIN_MEASUREMENTS

    problems: list[tuple[tuple[str | int, ...], str]] = []
    if spec.auto_predictor and spec.auto_samples < MIN_MEASUREMENTS:
        problems.append((("auto_samples",), f"a predictor needs at least {MIN_MEASUREMENTS} measurements"))
    if spec.predictor is not None:
        path = spec.predictor_path()
        if Path(spec.predictor).name != spec.predictor or path is None or not path.is_file():
            problems.append((("predictor",), f"no predictor {spec.predictor!r}: GET /v1/predictors lists them"))
    elif runner is not None and space is not None and not spec.auto_predictor:
        if not MeasurementKey.of(runner, space).predictor_path().is_file():
            problems.append(
                (
                    ("auto_predictor",),
                    f"no latency predictor for {space.name} on {runner.name} with these settings: run a collect and "
                    "a train_predictor job with the same target and space settings first, or set auto_predictor"
                    + (" (or latency_from 'measured')" if spec.space == "flownas" else ""),
                )
            )
    return problems
