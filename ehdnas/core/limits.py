"""The most one command or job may ask for: one table of bounds, the same defaults on the CLI and the server.

A number far beyond what a machine can run (a billion samples, 100,000 threads,
a 100,000-channel network) must be refused at the start, with its name, not
crash deep inside NumPy or torch an hour later. The defaults are generous; an
operator raises one with `EHDNAS_LIMITS__NAME=VALUE` (both faces) or
`ehdnas serve --limit NAME=VALUE` (the server).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from ehdnas.core.errors import UserError

ENV_PREFIX = "EHDNAS_LIMITS__"
SEED_MAX = 2**32 - 1  # NumPy's and torch's seeds are unsigned 32-bit on every target


@dataclass(frozen=True)
class Limits:
    """Upper bounds on one command's or job's inputs."""

    samples: int = 20_000  # architectures a collect or benchmark measures
    archs: int = 100  # architectures named one by one in a benchmark
    epochs: int = 200  # search epochs (and a FlowNAS teacher's)
    retrain_epochs: int = 300
    lambdas: int = 8  # searches in one sweep
    auto_samples: int = 5_000
    pairs: int = 10_000  # flow pairs in each split of a flownas search
    evaluations: int = 10_000  # fitness evaluations of a flownas search's evolution
    repeats: int = 10_000  # timed runs per model
    min_time: float = 60.0  # timed seconds per model
    threads: int = 256  # a runtime's threads (target option `threads`)
    channels: int = 1024  # a space's widths (options `channels`, `in_channels`, `out_dim`)
    input_size: int = 1024  # a space's input side (options `input_size`, `input_height`, `input_width`)
    layers: int = 64  # a space's cells (options `layers`, nb201's `cells` per stage)
    batch: int = 1024  # a space's exported batch (option `batch`)
    array: int = 4096  # a systolic accelerator's rows or columns
    input_elements: int = 2**26  # one input of an ONNX file measured with --input-shape (256 MiB of float32)
    body_bytes: int = 64 * 1024  # a request body (the server's)
    queued: int = 100  # jobs waiting in the server's queue at once, from every client: its quota

    def check(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value > 0):
                raise UserError(f"limit {field.name} must be positive")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """The defaults with each `EHDNAS_LIMITS__NAME` over them: the CLI's limits (the server reads the same
        variables through its settings)."""
        from ehdnas.core.options import make_config

        environ = dict(os.environ) if environ is None else environ
        given = {
            key.removeprefix(ENV_PREFIX).lower(): value
            for key, value in environ.items()
            if key.startswith(ENV_PREFIX) and value
        }
        try:
            limits = make_config(cls, given, "limit")
        except UserError as err:
            raise UserError(f"{err} (from ${ENV_PREFIX}<NAME>)") from None
        limits.check()
        return limits


# Target and space settings bounded by a limit, by the setting's name.
SETTING_LIMITS = {
    "threads": "threads",
    "calibration_samples": "samples",
    "channels": "channels",
    "in_channels": "channels",
    "out_dim": "channels",
    "input_size": "input_size",
    "input_height": "input_size",
    "input_width": "input_size",
    "layers": "layers",
    "cells": "layers",  # nb201's cells per stage
    "batch": "batch",
    "rows": "array",
    "cols": "array",
}


def over_limit(value: Any, limits: Limits, name: str) -> str | None:
    """Why `value` is refused by limit `name`, or None: the one wording of a limit on both faces."""
    limit = getattr(limits, name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > limit:
        return f"{value:,} is over the limit of {limit:,} (limit {name!r}: raise it with {ENV_PREFIX}{name.upper()}=N)"
    return None
