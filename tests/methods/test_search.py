"""The supernet against the derived network, and the search end to end on the embedded digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space
from ehdnas.spaces.darts import EDGES, OPS
from ehdnas.supernets.darts import Supernet, derive_genotype
from ehdnas.tasks.images import load_data
from perf_models.baselines import fit_lut
from perf_models.dataset import Dataset

TINY = {"layers": 3, "channels": 4, "input_size": 8}


def tiny_predictor(space, slow_op: str = "sep_conv_5x5"):
    """A LUT whose law makes one op expensive, so the hardware term has something to push against."""
    archs = space.sample_many(120, seed=0)
    indices = np.array([space.encode(a) for a in archs])
    cost = np.where(np.array(space.decisions[0].choices) == slow_op, 0.2, 0.01)
    latency = 1.0 + cost[indices].sum(1)
    meta = {
        "space": space.name,
        "space_config": space.config_dict(),
        "decisions": [[d.name, list(d.choices)] for d in space.decisions],
    }
    data = Dataset(indices, latency, latency, latency, tuple(space.to_text(a) for a in archs), meta)
    predictor = fit_lut(data, data)
    predictor.meta = meta
    return predictor


def test_supernet_with_one_hot_alpha_equals_the_derived_network() -> None:
    space = get_space("darts", TINY)
    torch.manual_seed(0)
    supernet = Supernet(space).eval()
    genotype = space.sample(np.random.default_rng(1))
    with torch.no_grad():
        supernet.alpha.copy_(torch.as_tensor(np.stack(space.one_hot(genotype))) * 1e4)  # softmax -> one-hot
    assert derive_genotype(space, supernet.soft_arch().detach().numpy()) == genotype
    derived = space.build(genotype).eval()
    # Copy the chosen ops' weights (and everything outside the edges) from the supernet.
    state = {k: v for k, v in supernet.net.state_dict().items() if ".edges." not in k}
    for c, cell in enumerate(derived.cells):
        edges = genotype.reduce if cell.reduction else genotype.normal
        for position, (op, src) in enumerate(edges):
            node = position // 2
            edge = EDGES.index((src, node))
            mixed = supernet.net.cells[c].edges[edge].ops[OPS.index(op)]
            for name, value in mixed.state_dict().items():
                state[f"cells.{c}.ops.{position}.{name}"] = value
    assert_same_network(supernet, derived, state)


def assert_same_network(supernet: torch.nn.Module, derived: torch.nn.Module, state: dict) -> None:
    """The oracle: `derived`, given the supernet's weights of its chosen ops (`state`), computes what the supernet
    does on a batch of 8x8 images."""
    derived.load_state_dict(state)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(supernet(x), derived(x), rtol=1e-4, atol=1e-5)


def test_the_skip_cap_keeps_the_strongest_skips_of_the_normal_cell_and_derives_the_rest_again() -> None:
    space = get_space("darts", TINY)
    probs = np.full((28, 8), 0.05)
    probs[:, OPS.index("skip_connect")] = np.linspace(0.9, 0.5, 28)  # skip wins every edge, strongest first
    probs[:, OPS.index("sep_conv_3x3")] = 0.3
    free = derive_genotype(space, probs)
    assert [op for op, _ in free.normal].count("skip_connect") == 8
    capped = derive_genotype(space, probs, skip_cap=2)
    normal = [op for op, _ in capped.normal]
    assert normal.count("skip_connect") == 2 and normal.count("sep_conv_3x3") == 6
    assert capped.reduce == free.reduce  # the reduction cell is not capped


def test_the_schedule_follows_the_run_size() -> None:
    from ehdnas.methods.darts import ARCH_TRAVEL, Schedule, SearchSettings

    short = Schedule.of(SearchSettings(epochs=5, batch_size=64), rows=700)
    assert short.steps_per_epoch == 11 and short.warmup_steps == 16
    assert short.arch_lr == ARCH_TRAVEL / (55 - 16)
    darts = Schedule.of(SearchSettings(epochs=50, batch_size=64, warmup=0), rows=25_000)
    assert abs(darts.arch_lr - 3e-4) < 1e-5  # DARTS's own learning rate at DARTS's step count
    assert Schedule.of(SearchSettings(epochs=5, a_lr=0.01), rows=700).arch_lr == 0.01  # set: kept


def test_digits_ship_with_the_package() -> None:
    data = load_data("digits", input_size=16, in_channels=3)
    assert data.train_x.shape == (1437, 3, 16, 16) and data.test_x.shape == (360, 3, 16, 16)
    assert data.classes == 10 and set(data.train_y.tolist()) == set(range(10))
    assert abs(float(data.train_x.mean())) < 1e-4


@pytest.mark.parametrize(
    ("spec", "message"),
    [("mnist", "expected digits, cluttered, cifar10:DIR or folder:DIR"), ("cifar10:/nonexistent", "no such folder")],
)
def test_bad_data_specs(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_data(spec, 32, 3)


def test_cifar10_folder_missing_batches_is_clear(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data_batch_1 is missing"):
        load_data(f"cifar10:{tmp_path}", 32, 3)


def test_cifar10_batches_load(tmp_path: Path) -> None:
    import pickle

    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (20, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 20))}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_data(f"cifar10:{tmp_path}", 32, 3)
    assert data.train_x.shape == (100, 3, 32, 32) and data.test_x.shape == (20, 3, 32, 32)


def test_image_folder_loads(tmp_path: Path) -> None:
    from PIL import Image

    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(tmp_path / split / label / f"{i}.png")
    data = load_data(f"folder:{tmp_path}", 16, 3)
    assert data.classes == 2 and data.train_x.shape == (6, 3, 16, 16) and data.train_y.tolist() == [0, 0, 0, 1, 1, 1]
