"""End to end (slow), beside tests/perf_models/test_perf_models.py: perf_models against oracles: synthetic latencies
with a known law, finite differences, hand-computed losses.
"""

from __future__ import annotations

import pytest

from perf_models.baselines import fit_lut
from perf_models.dataset import split
from perf_models.metrics import evaluate
from perf_models.mlp import fit_mlp
from tests.examples import synthetic


@pytest.mark.slow
def test_mlp_learns_an_interaction_the_lut_cannot() -> None:
    data = synthetic(700, interaction=0.3)
    train_rows, val_rows, test_rows = split(len(data))
    train, val, test = data.subset(train_rows), data.subset(val_rows), data.subset(test_rows)
    mlp = evaluate(fit_mlp(train, val, members=3).predict(test), test.latency_ms)
    lut = evaluate(fit_lut(train, val).predict(test), test.latency_ms)
    assert mlp["mape"] < lut["mape"] and mlp["acc5"] > lut["acc5"]
    assert mlp["acc10"] > 0.95
