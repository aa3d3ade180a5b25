"""Target `external:NAME`: a device measured elsewhere, whose latencies are imported, never measured here.

HW-NAS-Bench, BRP-NAS and HELP publish per-architecture latencies of devices
one rarely has at hand (an Edge GPU, a Pixel 3, an FPGA). `ehdnas
import-measurements` stores such a table under a named device; this target
is that device's key in the store, so `train-predictor` and `search` use the
imported figures like any target's measurements. It cannot measure: a search
against it reports its predictor's latency only, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from backends.base import Availability, Runner, Timer, register_target
from backends.onnx_model import OnnxModel
from ehdnas.core.errors import UserError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ExternalConfig:
    device: str = ""  # the device's name, as imported (`external:NAME` sets it)

    def check(self) -> None:
        if not _NAME.fullmatch(self.device):
            raise UserError(
                f"target 'external' needs a device name: external:NAME, NAME of letters, digits, '.', '_' or '-' "
                f"(at most 64), got {self.device!r}"
            )


@register_target("external")
class ExternalRunner(Runner):
    description = "a device measured elsewhere: latencies imported with import-measurements, predicted, never measured"
    Config = ExternalConfig
    measures = False
    instance_option = "device"

    def __init__(self, config: Any | None = None) -> None:
        super().__init__(config)
        self.name = f"external:{self.config.device}"  # the store's target column, and what results name

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)  # its measurements are in the store, wherever they were taken

    def libraries(self) -> dict[str, str]:
        return {}

    def host(self) -> dict[str, Any]:
        """The device, not this machine: imported figures are found from any host."""
        return {"external": self.config.device}

    def _timer(self, model: OnnxModel) -> Timer:
        raise UserError(
            f"target {self.name!r} cannot measure: its latencies were measured elsewhere and imported "
            "(ehdnas import-measurements); train a predictor on them and search with it"
        )
