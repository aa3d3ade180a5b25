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
from backends.protocol import CLOCKS, LatencyStats, TimingProtocol, kept_samples, round_spread, time_rounds
from backends.remote.address import RemoteAddress
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
    latency_ms: LatencyStats  # of the kept rounds' samples
    samples_ms: tuple[float, ...]  # every timed run, in order, discarded rounds included
    protocol: dict[str, Any]
    wall_s: float  # time the whole measurement took, session creation included
    created_at: str  # ISO 8601, UTC
    attempts: int = 1  # sets of rounds timed; more than 1 when a noisy one was retried
    rounds: tuple[int, ...] = ()  # samples in each round, in order; () for one round (rows stored before rounds)
    kept_rounds: tuple[int, ...] = ()  # the rounds `latency_ms` comes from
    cores: tuple[int | None, ...] = ()  # the core each round was pinned to (None: not pinned)
    cpu_share: tuple[float, ...] = ()  # per round: the share of a core each timed thread had (1: undisturbed)
    flagged: bool = False  # the kept rounds lay further apart than the protocol's max_spread even so: not clean
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # target-specific, e.g. compile time
    layers: list[dict[str, Any]] | None = None  # per-layer figures, from targets that break a model down

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["samples_ms"] = list(self.samples_ms)
        return data

    def kept_samples(self) -> list[float]:
        """The samples `latency_ms` comes from."""
        return kept_samples(self.samples_ms, self.rounds, self.kept_rounds)

    def spread(self) -> float:
        """How far the kept rounds' medians lie apart: the noise the protocol bounds (0 for one round)."""
        return round_spread(self.samples_ms, self.rounds, self.kept_rounds)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        fields = dict(data)
        fields["latency_ms"] = LatencyStats(**fields["latency_ms"])
        for name in ("samples_ms", "rounds", "kept_rounds", "cores", "cpu_share"):
            if name in fields:
                fields[name] = tuple(fields[name])
        return cls(**fields)  # rows stored before a field existed take its default


@dataclass(frozen=True)
class DeviceBuild:
    """What the host built for a remote device (a library, a `.tflite` file), uploaded beside the ONNX file."""

    path: Path
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # how it was built: the measurement's details


@dataclass(frozen=True)
class Timer:
    """A model made ready to time on a target, once per measurement, with what the target knows about it."""

    run: Callable[[TimingProtocol], list[float]]  # one round of the protocol given: its latency samples in ms
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
    # How a timed run can be clocked (see TimingProtocol.clock), and whether its work runs on this host's
    # CPU (not on a device), so that the CPU share of a round says whether the OS let it run undisturbed.
    clocks: ClassVar[tuple[str, ...]] = CLOCKS
    on_host: ClassVar[bool] = True
    # False for a device measured elsewhere (`external:NAME`): its latencies are imported and predicted, and a
    # search against it reports the prediction only.
    measures: ClassVar[bool] = True
    # A target of named instances (`external:NAME`) sets the option that `NAME` fills.
    instance_option: ClassVar[str | None] = None

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.Config()
        # Every target's `-o remote=HOST:PORT/KEY` (set by `get_target`): measure on a device of KEY at that
        # tracker (backends.remote). Not in `config_dict`: the device's fingerprint keys what it measures.
        self.remote: RemoteAddress | None = None

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Whether this target can run on this machine, and if not, why."""

    @classmethod
    def device_availability(cls) -> Availability:
        """Whether this machine, as a remote device, can time what a host built for it (`device_build`)."""
        return cls.availability()

    @abstractmethod
    def libraries(self) -> dict[str, str]:
        """Versions of the libraries whose code is being timed."""

    def build_libraries(self) -> dict[str, str]:
        """Versions of what makes the timed model from the ONNX file (a converter, a compiler) wherever it runs:
        for a remote device, on the host. Part of the key beside `libraries`."""
        return {}

    @abstractmethod
    def _timer(self, model: OnnxModel) -> Timer:
        """`model` made ready to time (loaded, built, converted): every timed run of one measurement uses it."""

    def prepare(self, model: OnnxModel) -> None:  # noqa: B027  (a hook: most runners need no preparation)
        """Make and cache on disk what timing `model` needs (if `prepares`); may run in another process."""

    def device_build(self, model: OnnxModel, device: dict[str, Any]) -> DeviceBuild | None:
        """Build `model` here for a remote device (its report: `backends.remote.device.describe`), to upload beside
        the ONNX file; None when the device times the ONNX file itself."""
        return None

    def device_settings(self) -> dict[str, Any]:
        """The settings a remote device times with: those that shape the build stay on the host."""
        return self.config_dict()

    def _built_timer(self, model: OnnxModel, build: Path) -> Timer:
        """`model` made ready to time from what `device_build` made for this device (on the device)."""
        raise NotImplementedError(f"target {self.name!r} builds nothing for a remote device")

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
        """The fingerprint of the machine that times: this one, or the remote device."""
        if self.remote is not None:
            from backends.remote.client import device_runtime

            device = device_runtime(self)["host"]
            return {**device, "libraries": dict(sorted({**device["libraries"], **self.build_libraries()}.items()))}
        return host_info({**self.libraries(), **self.build_libraries()})

    def timed_threads(self) -> int:
        """Threads one timed run uses (a target's `threads` setting, 1 without one): only 1 is pinned to a core."""
        return getattr(self.config, "threads", 1)

    def measure(
        self, model: OnnxModel | Path | str, protocol: TimingProtocol | None = None, build: Path | None = None
    ) -> Measurement:
        """Measure `model` under `protocol`, here or on the remote device; on a device, from the host's `build`."""
        protocol = protocol or TimingProtocol()
        if protocol.clock not in self.clocks:
            raise UserError(f"target {self.name!r} times on the {' or '.join(self.clocks)} clock, not {protocol.clock}")
        model = model if isinstance(model, OnnxModel) else load_model(model)
        if self.remote is not None:
            from backends.remote.client import measure_remote

            return measure_remote(self, model, protocol)
        status = self.availability() if build is None else self.device_availability()
        if not status.available:
            raise UserError(f"target {self.name!r} is not available here: {status.reason}")
        if self.simulated:  # exact figures: one round of one sample, on no core
            protocol = dataclasses.replace(protocol, rounds=1, keep_rounds=1, pin_idle_core=False)
        start = time.perf_counter()
        timer = self._timer(model) if build is None else self._built_timer(model, build)
        timed = time_rounds(timer.run, protocol, self.timed_threads(), on_host=self.on_host and not self.simulated)
        return Measurement(
            target=self.name,
            target_config=self.config_dict(),
            host=self.host(),
            model=model.describe(),
            latency_ms=timed.stats,
            samples_ms=timed.samples_ms,
            protocol=protocol.to_dict(),
            wall_s=time.perf_counter() - start,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            attempts=timed.attempts,
            rounds=timed.rounds,
            kept_rounds=timed.kept_rounds,
            cores=timed.cores,
            cpu_share=timed.cpu_share,
            flagged=timed.flagged,
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
    remote = values.pop("remote", None) or None  # every target's setting, kept out of its Config
    runner = cls(make_config(cls.Config, values, f"target {family!r}"))
    runner.remote = RemoteAddress.parse(str(remote)) if remote is not None else None
    return runner


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
