"""End to end (slow), beside tests/backends/test_backends.py: contract tests over every registered target, then ort-
cpu, model loading and the timing protocol.
"""

from __future__ import annotations

import pytest

from backends import TimingProtocol, get_target, load_model
from tests.conftest import LIGHT_MODELS


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in LIGHT_MODELS.glob("*.onnx")))
def test_ort_cpu_measures_classic_opset9_classifiers(name: str) -> None:
    """AlexNet, ResNet-50, VGG-19, DenseNet-121, Inception, ShuffleNet, SqueezeNet as exported at opset 9."""
    model = load_model(LIGHT_MODELS / f"{name}.onnx")
    assert model.opset == 9 and model.inputs[0].shape == (1, 3, 224, 224)
    assert model.macs is not None and model.macs > 100e6
    m = get_target("ort-cpu").measure(
        model, TimingProtocol(warmup=1, min_repeats=2, min_time_s=0.0, rounds=1, keep_rounds=1)
    )
    assert m.latency_ms.n == 2 and m.latency_ms.median > 0
