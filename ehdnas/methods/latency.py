"""The latency (ms) a search holds to its budget: the predictor's estimate, or measured on the target and stored.

A method that checks architectures one by one against a budget (FlowNAS, the
tabular searches) takes one of these; each is called once per distinct
architecture by `evolve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ehdnas.core.settings import setting
from ehdnas.spaces.base import SearchSpace

LATENCY_SOURCES = ("predictor", "measured")


def budget_setting() -> Any:
    """The `latency_budget_ms` option of a method that holds candidates to a budget: one declaration for all."""
    return setting(None, gt=0, flag="--latency-budget", help="Required: the searched network's latency budget on the "
                   "target (ms).")  # fmt: skip


def source_setting() -> Any:
    """The `latency_from` option beside it."""
    return setting("predictor", choices=LATENCY_SOURCES, public="latency_from",
                   help="Check the budget by the 'predictor' estimate or 'measured' on the target.")  # fmt: skip


def latency_function(
    source: str, space: SearchSpace, runner: Any, predictor: Any, store: Any
) -> Callable[[Any], float]:
    """The latency (ms) of an architecture of `space` on `runner`: `source` 'predictor' or 'measured'."""
    if source == "predictor":

        def predicted(arch: Any) -> float:
            with torch.no_grad():
                return float(predictor([torch.as_tensor(v) for v in space.one_hot(arch)]))

        return predicted
    from backends import TimingProtocol
    from ehdnas.pipeline.measure import measure_archs

    def measured(arch: Any) -> float:
        (result,) = measure_archs(runner, space, [arch], TimingProtocol(), store)
        return result.measurement.latency_ms.median

    return measured
