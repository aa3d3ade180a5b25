"""Targets `systolic-<preset>`: a network's end-to-end latency on a simulated systolic-array accelerator.

Every layer of the ONNX graph is costed (convolutions and fully connected layers
on the array, the rest on the vector unit), layers run one after another, and
the latency is the total cycles at the accelerator's clock. Two engines:

- `analytical` (default): `backends.systolic.analytical`, milliseconds a network.
- `scalesim`: SCALE-Sim itself for the array layers (cycle-accurate, seconds to
  minutes a layer); vector layers are costed as in the analytical engine, since
  SCALE-Sim models only the array.

A simulation is deterministic: one sample, zero spread, and `details` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from backends.base import Availability, Runner, Timer, register_target, requires_extra
from backends.onnx_model import OnnxModel
from backends.systolic.accelerator import PRESETS, Accelerator, load_accelerator
from backends.systolic.analytical import ENGINE_VERSION, LayerCost, as_words, gemm_cost, vector_cost
from backends.systolic.layers import ConvLayer, graph_layers
from ehdnas.core.errors import UserError
from ehdnas.core.options import make_config

ENGINES = ("analytical", "scalesim")


@dataclass(frozen=True)
class SystolicConfig:
    engine: str = "analytical"
    # Instead of the target's preset: a TOML file, or the description itself (as a measurement's
    # target_config holds it, so a runner can be made again from what it recorded).
    accelerator: str | dict[str, Any] = ""

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise UserError(f"systolic option 'engine' must be one of {', '.join(ENGINES)}")
        if self.engine == "scalesim" and not (status := requires_extra("sim", "scalesim")).available:
            raise UserError(f"systolic option engine=scalesim needs SCALE-Sim: {status.reason}")


def layer_costs(model: OnnxModel, acc: Accelerator, engine: str = "analytical") -> list[LayerCost]:
    """The cost of every layer of `model` on `acc`, in graph order."""
    layers = graph_layers(model.path, {spec.name: spec.shape for spec in model.inputs})
    convs = [layer for layer in layers if isinstance(layer, ConvLayer)]
    if engine == "scalesim" and convs:
        from backends.systolic.scalesim_engine import simulate

        figures = simulate([as_words(layer, acc) for layer in convs], acc)
        exact = iter(_from_scalesim(layer, f, acc) for layer, f in zip(convs, figures, strict=True))
        return [next(exact) if isinstance(layer, ConvLayer) else vector_cost(layer, acc) for layer in layers]
    return [gemm_cost(layer, acc) if isinstance(layer, ConvLayer) else vector_cost(layer, acc) for layer in layers]


def _from_scalesim(layer: ConvLayer, figures: dict[str, float], acc: Accelerator) -> LayerCost:
    fast = gemm_cost(layer, acc)  # SCALE-Sim's DRAM counts depend on its trace options; keep ours for bytes
    total, stall = int(figures["total_cycles"]), int(figures["stall_cycles"])
    return LayerCost(
        name=layer.name,
        kind="gemm",
        compute_cycles=total - stall,
        stall_cycles=stall,
        macs=layer.macs,
        utilization=fast.utilization * fast.cycles / total,
        dram_read_bytes=fast.dram_read_bytes,
        dram_write_bytes=fast.dram_write_bytes,
    )


class SystolicRunner(Runner):
    """A systolic-array accelerator, simulated. Subclasses set `preset`."""

    Config = SystolicConfig
    preset: ClassVar[Accelerator]
    simulated = True

    def __init__(self, config: SystolicConfig | None = None) -> None:
        super().__init__(config)
        given = self.config.accelerator
        if isinstance(given, dict):
            self.accelerator = make_config(Accelerator, given, f"target {self.name!r} accelerator")
        else:
            self.accelerator = load_accelerator(given) if given else self.preset

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)

    def libraries(self) -> dict[str, str]:
        """The cost model's version: a change of model must not mix with measurements of the old one."""
        if self.config.engine == "scalesim":
            from importlib.metadata import version

            return {"scalesim": version("scalesim")}
        return {"ehdnas-analytical": str(ENGINE_VERSION)}

    def config_dict(self) -> dict[str, Any]:
        """The accelerator itself, not the file that described it, keys the measurements."""
        return {"engine": self.config.engine, "accelerator": self.accelerator.to_dict()}

    def host(self) -> dict[str, Any]:
        """A simulation gives the same cycles on any machine: only the simulator keys it, not the host."""
        return {"simulated": True, "libraries": self.libraries()}

    def costs(self, model: OnnxModel) -> list[LayerCost]:
        return layer_costs(model, self.accelerator, self.config.engine)

    def _timer(self, model: OnnxModel) -> Timer:
        costs = self.costs(model)  # simulated once: every run gives the same figures
        latency_ms = sum(cost.cycles for cost in costs) / (self.accelerator.clock_mhz * 1e3)
        layers = [cost.to_dict() for cost in costs]
        return Timer(lambda protocol: [latency_ms], self._summary(costs), layers)

    def _summary(self, costs: list[LayerCost]) -> dict[str, Any]:
        """A simulation's figures for the whole network: the measurement's details."""
        cycles = sum(c.cycles for c in costs)
        gemm = [c for c in costs if c.kind == "gemm"]
        array_cycles = sum(c.cycles for c in gemm)
        return {
            "deterministic": True,  # simulated: one sample, zero spread
            "engine": self.config.engine,
            "accelerator": self.accelerator.name,
            "cycles": cycles,
            "stall_cycles": sum(c.stall_cycles for c in costs),
            "array_cycles": array_cycles,
            "vector_cycles": cycles - array_cycles,
            "utilization": round(
                sum(c.macs for c in gemm) / (self.accelerator.rows * self.accelerator.cols * cycles), 4
            ),
            "dram_bytes": sum(c.dram_read_bytes + c.dram_write_bytes for c in costs),
            "layers": len(costs),
        }


def _register(name: str, acc: Accelerator) -> None:
    description = (
        f"simulated {acc.rows}x{acc.cols} systolic array, {acc.dataflow.upper()} dataflow, {acc.bits}-bit, "
        f"{acc.clock_mhz:g} MHz"
    )
    cls = type(f"Systolic_{name}", (SystolicRunner,), {"preset": acc, "description": description})
    cls.__module__ = __name__
    globals()[cls.__name__] = cls  # importable by name, so a runner can be sent to a worker process
    register_target(f"systolic-{name}")(cls)


for _name, _acc in PRESETS.items():
    _register(_name, _acc)
