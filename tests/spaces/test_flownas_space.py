"""The FlowNAS encoder space: its table, the networks it builds, its errors, and predictors over it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backends import Measurement, get_target
from backends.protocol import LatencyStats
from ehdnas.core.errors import UserError
from ehdnas.pipeline import measure
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from ehdnas.spaces.flownas import EncoderArch, StageChoice
from ehdnas.spaces.flownas_net import MBConv
from perf_models.mlp import fit_mlp

# FlowNAS (arXiv 2207.01271), written out again here as the oracle: per stage widths, depths, expand ratios.
PAPER = [
    ((56, 64), (1, 2), (1,)),
    ((64, 72), (1, 2, 3), (1, 2, 4)),
    ((88, 96), (1, 2, 3), (4, 5, 6)),
    ((96, 104, 112), (1, 2, 3), (4, 5, 6)),
    ((112, 120, 128), (2, 3, 4), (6,)),
    ((128, 136), (1, 2), (6,)),
]
SMALL = {"input_height": 32, "input_width": 32}
SMALLEST = "k3w56d1e1|k3w64d1e1|k3w88d1e4|k3w96d1e4|k3w112d2e6|k3w128d1e6"


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_decisions_follow_the_paper_table() -> None:
    decisions = get_space("flownas").decisions
    assert len(decisions) == 24
    for stage, (widths, depths, expands) in enumerate(PAPER, start=1):
        row = decisions[4 * (stage - 1) : 4 * stage]
        assert [d.name for d in row] == [f"stage{stage}.{f}" for f in ("kernel", "width", "depth", "expand")]
        expected = [(3, 5), widths, depths, expands]
        assert [tuple(map(int, d.choices)) for d in row] == expected


def test_output_is_at_one_eighth_with_out_dim_channels() -> None:
    space = get_space("flownas", {"input_height": 48, "input_width": 72, "out_dim": 32, "in_channels": 1})
    assert space.input_shape == (1, 1, 48, 72)
    for arch in space.sample_many(3, seed=0):
        with torch.no_grad():
            out = space.build(arch).eval()(torch.zeros(2, 1, 48, 72))
        assert out.shape == (2, 32, 6, 9)


def test_depth_width_and_expand_change_the_network() -> None:
    space = get_space("flownas", SMALL)
    base = space.parse(SMALLEST)
    stages = list(base.stages)

    def with_stage4(**change: int) -> EncoderArch:
        return EncoderArch((*stages[:3], StageChoice(**{**vars(stages[3]), **change}), *stages[4:]))

    smallest = n_params(space.build(base))
    for change in ({"depth": 2}, {"width": 104}, {"expand": 5}, {"kernel": 5}):
        assert n_params(space.build(with_stage4(**change))) > smallest, change
    deeper = space.build(with_stage4(depth=3))
    assert [len(stage) for stage in deeper.stages] == [1, 1, 1, 3, 2, 1]


def test_residual_only_where_the_shapes_allow() -> None:
    space = get_space("flownas", SMALL)
    # stage 1 at width 56 changes 64 stem channels; stage 3 strides; the other first blocks keep the shape.
    module = space.build(space.parse("k3w56d2e1|k3w64d2e2|k5w88d2e4|k3w96d1e4|k3w112d2e6|k3w128d1e6")).eval()
    residual = [[block.residual for block in stage] for stage in module.stages]
    assert residual == [[False, True], [False, True], [False, True], [False], [False, True], [False]]
    module = space.build(space.parse("k3w64d1e1|k3w64d1e1|k3w88d1e4|k3w96d1e4|k3w112d2e6|k3w128d1e6")).eval()
    assert [stage[0].residual for stage in module.stages] == [True, True, False, False, False, False]
    # Oracle: with the projecting BatchNorm zeroed, a residual block is the identity and a plain one gives 0.
    for c_in, c_out, stride, identity in ((64, 64, 1, True), (64, 56, 1, False), (64, 64, 2, False)):
        block = MBConv(c_in, c_out, 3, stride, expand=2).eval()
        torch.nn.init.zeros_(block.body[-1][1].weight)
        x = torch.randn(1, c_in, 8, 8)
        with torch.no_grad():
            y = block(x)
        assert torch.equal(y, x) if identity else not y.any()
    # A new residual block starts as that identity; a plain one does not start at zero.
    assert not MBConv(64, 64, 3, 1, expand=2).body[-1][1].weight.any()
    assert MBConv(64, 56, 3, 1, expand=2).body[-1][1].weight.all()


def test_expand_ratio_one_has_no_expand_conv() -> None:
    assert len(MBConv(64, 64, 3, 1, expand=1).body) == 2  # depthwise, project
    assert len(MBConv(64, 64, 3, 1, expand=4).body) == 3  # expand, depthwise, project


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SMALLEST.rsplit("|", 1)[0], "expected 6 stages separated by '\\|', got 5: 'k3w56d1e1\\|k3"),
        (SMALLEST.replace("k3w88d1e4", "k3w88e4"), "stage 3: 'k3w88e4' is not k<kernel>w<width>d<depth>e<expand>"),
        (SMALLEST.replace("k3w88", "k3w90"), "stage 3: width 90 is not one of 88, 96"),
        (SMALLEST.replace("k3w56", "k7w56"), "stage 1: kernel 7 is not one of 3, 5"),
        (SMALLEST.replace("w112d2", "w112d1"), "stage 5: depth 1 is not one of 2, 3, 4"),
        ('{"stages": [{"kernel": 3}]}', "stage 1: expected an object with the keys \\['kernel', 'width', 'depth'"),
        ('{"stage": []}', "expected an object with the keys \\['stages'\\], got \\{'stage': \\[\\]\\}"),
        ("{not json", "invalid JSON"),
    ],
)
def test_invalid_architectures_say_why(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        get_space("flownas").parse(text)


def test_json_values_must_be_integers() -> None:
    space = get_space("flownas")
    data = space.to_dict(space.parse(SMALLEST))
    data["stages"][1]["width"] = 64.0
    with pytest.raises(UserError, match="stage 2: width 64.0 is not one of 64, 72"):
        space.parse(json.dumps(data))
    data["stages"][1]["width"] = True
    with pytest.raises(UserError, match="stage 2: width True"):
        space.from_dict(data)


def test_decode_checks_the_indices() -> None:
    space = get_space("flownas")
    with pytest.raises(UserError, match="expected 24 indices, got 3"):
        space.decode([0, 0, 0])
    with pytest.raises(UserError, match="stage1.expand index 1 out of range 0..0"):
        space.decode([0, 0, 0, 1] + [0] * 20)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["input_height=60"], "'input_height' must be a positive multiple of 8, got 60"),
        (["input_width=0"], "'input_width' must be a positive multiple of 8, got 0"),
        (["out_dim=0"], "'out_dim' must be at least 1"),
        (["layers=3"], "unknown space 'flownas' option 'layers'"),
    ],
)
def test_settings_are_checked(options: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        get_space("flownas", options)


# --- predictors over the space ------------------------------------------------


def test_measurements_of_the_space_load_as_a_dataset(tmp_path: Path) -> None:
    """The path `collect` and `train-predictor` take: export, measure, store, load."""
    space, runner, store = (
        get_space("flownas", SMALL),
        get_target("systolic-edge32"),
        Store(f"sqlite:///{tmp_path}/s.db"),
    )
    archs = space.sample_many(2, seed=0)
    measure.measure_archs(runner, space, archs, measure.timing_protocol(1, 0.0, 0, 1.0), store)
    data = load_dataset(store, space, MeasurementKey.of(runner, space))
    assert data.indices.tolist() == [space.encode(a) for a in archs]
    assert (data.latency_ms > 0).all() and (data.macs > 0).all()
    assert data.meta["choice_macs"] is None and len(data.meta["decisions"]) == 24


def synthetic_store(space, path: Path, n: int) -> Store:
    """A store of `n` architectures whose latency follows a known law: per-choice costs in log space."""
    store = Store(f"sqlite:///{path}")
    costs = np.random.default_rng(42).uniform(0.0, 0.1, size=(24, 3))
    for arch in space.sample_many(n, seed=0):
        latency = float(np.exp(costs[np.arange(24), space.encode(arch)].sum()))
        measurement = Measurement(
            target="synthetic",
            target_config={},
            host={},
            model={"macs": None, "params": None},
            latency_ms=LatencyStats.from_samples([latency]),
            samples_ms=(latency,),
            protocol={},
            wall_s=0.0,
            created_at="2025-01-01T00:00:00+00:00",
        )
        store.record(measurement, space.name, space.config_dict(), space.to_text(arch))
    return store


def test_mlp_predictor_is_differentiable_in_the_soft_architecture(tmp_path: Path) -> None:
    space = get_space("flownas", SMALL)
    data = load_dataset(
        synthetic_store(space, tmp_path / "s.db", 60),
        space,
        MeasurementKey("synthetic", {}, {}, space.name, space.config_dict()),
    )
    assert len(data) == 60 and data.indices.shape == (60, 24)
    model = fit_mlp(data, data, epochs=5, members=2, hidden=(16, 8), dropout=0.0)
    assert model.choices == [len(d.choices) for d in space.decisions]
    # The discrete prediction equals the one from the space's one-hot vectors, and those carry a gradient.
    soft = [torch.tensor(v, requires_grad=True) for v in space.one_hot(space.parse(data.archs[0]))]
    latency = model(soft)
    assert latency.item() == pytest.approx(model.predict(data)[0], rel=1e-5)
    latency.backward()
    assert all(v.grad is not None and torch.isfinite(v.grad).all() for v in soft)
    assert all(v.grad.abs().sum() > 0 for v in soft if v.numel() > 1)
    model = model.double()
    alpha = tuple(torch.randn(len(d.choices), dtype=torch.float64, requires_grad=True) for d in space.decisions)
    assert torch.autograd.gradcheck(lambda *a: model([torch.softmax(x, -1) for x in a]), alpha, eps=1e-6, atol=1e-5)
