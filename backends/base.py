"""The runner interface every target implements, the measurement it returns, and the target registry.

A runner has a name, says whether it can run here (and why not), and measures an
ONNX file under an explicit timing protocol. Heavy runtimes are imported inside
the runner that needs them, so installing one runtime never requires another:
each comes with an extra of the package (`pip install 'ehdnas[tvm]'`), and a
runner whose extra is missing says so, with that line (`requires_extra`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.onnx_model import OnnxModel, load_model
from backends.protocol import LatencyStats, TimingProtocol
from ehdnas.core.errors import UserError
from ehdnas.core.host import host_info
from ehdnas.core.options import make_config, parse_pairs
from ehdnas.core.registry import Registry


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""


def importable(module: str) -> bool:
    """Whether `module` can be imported, found without importing it (None in sys.modules counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that does not import, a module without a spec
        return False


def requires_extra(extra: str | None, *modules: str) -> Availability:
    """Available when every one of `modules` can be imported; otherwise why not: the modules missing and the
    pip line that installs them, `pip install 'ehdnas[EXTRA]'` (extra None: a core dependency gone missing)."""
    missing = [module for module in modules if not importable(module)]
    if not missing:
        return Availability(True)
    line = f"pip install 'ehdnas[{extra}]'" if extra else "pip install ehdnas"
    return Availability(False, f"{', '.join(missing)} not installed: {line}")


@dataclass(frozen=True)
class Measurement:
    """One model measured on one target: raw samples, their statistics and the context."""

    target: str
    target_config: dict[str, Any]
    host: dict[str, Any]
    model: dict[str, Any]
    latency_ms: LatencyStats
    samples_ms: tuple[float, ...]
    protocol: dict[str, Any]
    wall_s: float  # time the whole measurement took, session creation included
    created_at: str  # ISO 8601, UTC
    attempts: int = 1  # timed runs of the protocol; more than 1 when a noisy run was retried
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # target-specific, e.g. compile time
    layers: list[dict[str, Any]] | None = None  # per-layer figures, from targets that break a model down

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["samples_ms"] = list(self.samples_ms)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        fields = dict(data)
        fields["latency_ms"] = LatencyStats(**fields["latency_ms"])
        fields["samples_ms"] = tuple(fields["samples_ms"])
        return cls(**fields)  # rows stored before a field existed take its default


@dataclass(frozen=True)
class Timer:
    """A model made ready to time on a target, once per measurement, with what the target knows about it."""

    run: Callable[[TimingProtocol], list[float]]  # one timed run of the protocol: the latency samples in ms
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # the measurement's details
    layers: list[dict[str, Any]] | None = None  # the measurement's per-layer figures


class Runner(ABC):
    """Measures ONNX models on one target. Subclasses set `Config` (a frozen dataclass)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type]
    # A simulator: its figures are exact (one sample, no spread), the same on any host, and several
    # can be taken at once, one per core. A timed target is none of these.
    simulated: ClassVar[bool] = False
    # Measuring a model first needs costly work apart from timing (a conversion), done by `prepare`
    # and cached on disk: a collection prepares several models at once, one per core, between timings.
    prepares: ClassVar[bool] = False
    # False for a device measured elsewhere (`external:NAME`): its latencies are imported and predicted, and a
    # search against it reports the prediction only.
    measures: ClassVar[bool] = True
    # A target of named instances (`external:NAME`) sets the option that `NAME` fills.
    instance_option: ClassVar[str | None] = None

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Whether this target can run on this machine, and if not, why."""

    @abstractmethod
    def libraries(self) -> dict[str, str]:
        """Versions of the libraries whose code is being timed."""

    @abstractmethod
    def _timer(self, model: OnnxModel) -> Timer:
        """`model` made ready to time (loaded, built, converted): every timed run of one measurement uses it."""

    def prepare(self, model: OnnxModel) -> None:  # noqa: B027  (a hook: most runners need no preparation)
        """Make and cache on disk what timing `model` needs (if `prepares`); may run in another process."""

    def precision(self) -> str:
        """The arithmetic the target runs a network in; not float32 means its accuracy can differ from torch's."""
        return "float32"

    def infer(self, model: OnnxModel, inputs: np.ndarray) -> np.ndarray:
        """`model`'s outputs for a batch of `inputs` as this target computes them (targets not in float32)."""
        raise NotImplementedError(f"target {self.name!r} does not compute outputs")

    def config_dict(self) -> dict[str, Any]:
        """The settings that change what is measured: part of every measurement's key."""
        return dataclasses.asdict(self.config)

    def host(self) -> dict[str, Any]:
        return host_info(self.libraries())

    def measure(self, model: OnnxModel | Path | str, protocol: TimingProtocol | None = None) -> Measurement:
        status = self.availability()
        if not status.available:
            raise UserError(f"target {self.name!r} is not available here: {status.reason}")
        protocol = protocol or TimingProtocol()
        model = model if isinstance(model, OnnxModel) else load_model(model)
        start = time.perf_counter()
        timer = self._timer(model)
        samples, attempts = timer.run(protocol), 1
        cv = LatencyStats.from_samples(samples).cv
        while cv > protocol.max_cv and attempts <= protocol.retries:
            again, attempts = timer.run(protocol), attempts + 1
            again_cv = LatencyStats.from_samples(again).cv
            if again_cv < cv:
                samples, cv = again, again_cv
        return Measurement(
            target=self.name,
            target_config=self.config_dict(),
            host=self.host(),
            model=model.describe(),
            latency_ms=LatencyStats.from_samples(samples),
            samples_ms=tuple(samples),
            protocol=protocol.to_dict(),
            wall_s=time.perf_counter() - start,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            attempts=attempts,
            details=timer.details,
            layers=timer.layers,
        )


TARGETS: Registry[type[Runner]] = Registry("target")


def register_target(name: str):  # noqa: ANN201  (a class decorator)
    """Register a runner class under `name`, which becomes its `name`."""

    def decorate(cls: type[Runner]) -> type[Runner]:
        cls.name = name
        return TARGETS.register(name)(cls)

    return decorate


def target_class(name: str) -> type[Runner]:
    """The runner class of a target name: `FAMILY:NAME` names an instance of a target that has them."""
    family, sep, _ = name.partition(":")
    cls = TARGETS.get(family)
    if sep and cls.instance_option is None:
        raise UserError(f"target {family!r} has no named instances: {name!r} is not a target")
    return cls


def get_target(name: str, options: Mapping[str, Any] | Iterable[str] = ()) -> Runner:
    """A runner by target name, configured from a mapping or from `KEY=VALUE` strings."""
    cls = target_class(name)
    family, sep, instance = name.partition(":")
    values = dict(options) if isinstance(options, Mapping) else parse_pairs(options, f"target {family!r}")
    if sep:
        assert cls.instance_option is not None  # target_class refuses a name part otherwise
        values[cls.instance_option] = instance
    return cls(make_config(cls.Config, values, f"target {family!r}"))


def list_targets() -> list[dict[str, Any]]:
    """Every registered target with whether it is usable here and why not, and the settings a bare `--target`
    measures with (each can be changed with `-o NAME=VALUE`)."""
    rows = []
    for name in TARGETS.names():
        cls = TARGETS.get(name)
        status = cls.availability()
        rows.append(
            {"name": name, "available": status.available, "reason": status.reason, "description": cls.description,
             "settings": dataclasses.asdict(cls.Config())}
        )  # fmt: skip
    return rows
