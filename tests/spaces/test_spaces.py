"""Contract tests over every registered search space, then the DARTS space's own rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import build_seeded, export_arch
from ehdnas.spaces import get_space, list_spaces

SMALL = {  # settings that keep the contract tests fast
    "darts": {"layers": 3, "channels": 4},
    "flownas": {"input_height": 32, "input_width": 32},
    "nb201": {"cells": 1, "channels": 4, "input_size": 8},
}


@pytest.fixture(params=list_spaces())
def space(request: pytest.FixtureRequest):
    return get_space(request.param, SMALL.get(request.param, {}))


def test_sampling_is_seeded(space) -> None:
    assert space.sample_many(5, seed=1) == space.sample_many(5, seed=1)
    assert space.sample_many(5, seed=1) != space.sample_many(5, seed=2)


def test_text_json_and_encoding_round_trip(space) -> None:
    for arch in space.sample_many(20, seed=0):
        text = space.to_text(arch)
        assert space.parse(text) == arch
        assert space.to_text(space.parse(text)) == text
        assert space.parse(json.dumps(space.to_dict(arch))) == arch
        indices = space.encode(arch)
        assert len(indices) == len(space.decisions)
        assert all(0 <= i < len(d.choices) for i, d in zip(indices, space.decisions))
        assert space.decode(indices) == arch
        soft = space.one_hot(arch)
        assert [v.shape[0] for v in soft] == [len(d.choices) for d in space.decisions]
        assert all(v.sum() == 1.0 and v[i] == 1.0 for v, i in zip(soft, indices))


def test_neighbours_are_valid_distinct_and_one_decision_away(space) -> None:
    arch = space.sample(np.random.default_rng(3))
    neighbours = space.neighbours(arch, 6, np.random.default_rng(0))
    assert len(neighbours) == 6
    assert len({space.to_text(n) for n in neighbours} | {space.to_text(arch)}) == 7
    start = np.array(space.encode(arch))
    for neighbour in neighbours:
        assert (np.array(space.encode(neighbour)) != start).sum() == 1
        assert space.parse(space.to_text(neighbour)) == neighbour  # a valid architecture of the space


def test_build_forward_and_export_match_onnxruntime(space, tmp_path: Path) -> None:
    arch = space.sample(np.random.default_rng(3))
    module = build_seeded(space, arch).eval()
    x = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = module(x).numpy()
    assert np.isfinite(expected).all()
    path = export_arch(space, arch, tmp_path / "net.onnx").path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert session.get_inputs()[0].shape == list(space.input_shape)  # static shape


# --- DARTS -------------------------------------------------------------------

DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2_TEXT = (
    "normal=sep_conv_3x3(0)+sep_conv_3x3(1)|sep_conv_3x3(0)+sep_conv_3x3(1)|skip_connect(0)+sep_conv_3x3(1)"
    "|skip_connect(0)+dil_conv_3x3(2);reduce=max_pool_3x3(0)+max_pool_3x3(1)|max_pool_3x3(1)+skip_connect(2)"
    "|max_pool_3x3(0)+skip_connect(2)|max_pool_3x3(1)+skip_connect(2)"
)


def test_darts_reads_the_genotype_darts_prints() -> None:
    space = get_space("darts")
    genotype = space.parse(DARTS_V2)
    assert genotype.to_text() == DARTS_V2_TEXT
    # DARTS V2 has 3.3M parameters at 20 layers and 36 channels (without its auxiliary head).
    module = get_space("darts", {"layers": 20, "channels": 36}).build(genotype)
    assert 3.2e6 < sum(p.numel() for p in module.parameters()) < 3.4e6


def test_darts_encoding_matches_supernet_alpha_layout() -> None:
    space = get_space("darts")
    assert len(space.decisions) == 28 and all(len(d.choices) == 8 for d in space.decisions)
    genotype = space.parse(DARTS_V2)
    indices = np.array(space.encode(genotype)).reshape(2, 14)  # (cell, edge) like DARTS's alpha rows
    assert (indices != 0).sum(axis=1).tolist() == [8, 8]
    assert space.decisions[0].name == "normal.0->2" and space.decisions[14].name == "reduce.0->2"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (lambda t: t.replace("sep_conv_3x3(0)", "sep_conv_7x7(0)", 1), "normal cell node 2: unknown op 'sep_conv_7x7'"),
        (lambda t: t.replace("sep_conv_3x3(0)", "none(0)", 1), "'none' is never a chosen op"),
        (lambda t: t.rsplit("|", 1)[0], "reduce cell: expected 8 edges .* got 6"),
        (lambda t: t.replace("dil_conv_3x3(2)", "dil_conv_3x3(6)"), "normal cell node 5: input 6 out of range 0..4"),
        (lambda t: t.replace("sep_conv_3x3(0)+", "sep_conv_3x3(1)+", 1), "node 2: both edges come from input 1"),
        (lambda t: t.replace("(0)", "[0]", 1), "'sep_conv_3x3\\[0\\]' is not op\\(input\\)"),
        (lambda t: t.replace("normal=", "nromal="), "is not 'normal=...' or 'reduce=...'"),
        (lambda t: t.split(";")[0], "missing the reduce cell"),
        (lambda t: '{"normal": []}', "object with the keys \\['normal', 'reduce'\\], got \\{'normal': \\[\\]\\}"),
        (lambda t: "{not json", "invalid JSON"),
    ],
)
def test_darts_rejects_invalid_genotypes_with_a_reason(fault, message: str) -> None:
    space = get_space("darts")
    assert space.to_text(space.parse(DARTS_V2_TEXT)) == DARTS_V2_TEXT  # only the planted fault is wrong
    with pytest.raises(UserError, match=message):
        space.parse(fault(DARTS_V2_TEXT))


def test_darts_decode_rejects_a_node_without_two_edges() -> None:
    space = get_space("darts")
    indices = space.encode(space.parse(DARTS_V2_TEXT))
    indices[2:5] = [4, 4, 4]  # the three candidate edges into node 3 of the normal cell
    with pytest.raises(UserError, match="normal cell node 3 has 3 edges, not 2"):
        space.decode(indices)


def test_darts_settings_are_checked() -> None:
    with pytest.raises(UserError, match="unknown space 'darts' option 'depth'"):
        get_space("darts", ["depth=3"])
    with pytest.raises(UserError, match="not a valid int"):
        get_space("darts", ["layers=many"])
    with pytest.raises(UserError, match="at least 3"):
        get_space("darts", {"layers": 2})
    with pytest.raises(UserError, match="unknown search space 'nasbench'; known: darts"):
        get_space("nasbench")


def test_darts_builds_odd_input_sizes() -> None:
    space = get_space("darts", {"layers": 3, "channels": 4, "input_size": 7, "in_channels": 1, "classes": 3})
    module = space.build(space.sample(np.random.default_rng(0))).eval()
    assert module(torch.zeros(space.input_shape)).shape == (1, 3)
