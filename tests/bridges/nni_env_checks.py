"""The NNI bridge inside NNI 3.0, run in its own environment (`make nni`) by tests/bridges/test_nni.py.

Not named test_*.py: the main suite's environment has no NNI, so pytest there never collects this file; it is
run as `.venv-nni/bin/python -m pytest --noconftest tests/bridges/nni_env_checks.py` (the suite's conftest
imports what that environment lacks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch
from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.execution import SequentialExecutionEngine
from nni.nas.hub.pytorch import DARTS, NasBench201
from nni.nas.oneshot.pytorch.profiler import RangeProfilerFilter, SampleProfilerPenalty
from nni.nas.space import RawFormatModelSpace
from nni.nas.strategy import DARTS as DartsStrategy
from nni.nas.strategy import RandomOneShot
from torch.utils.data import TensorDataset

from ehdnas.bridges.nni import (
    architecture_logits,
    architecture_probs,
    predictor_filter,
    predictor_penalty,
    predictor_profiler,
)
from ehdnas.bridges.nni_labels import label_map
from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space
from ehdnas.spaces.darts import Genotype
from perf_models.baselines import LUTPredictor, fit_lut
from tests.examples import python_block, synthetic

NNI_EXAMPLE = "## Inside NNI"  # the README section whose python block runs


def lut(space: str, seed: int = 0) -> LUTPredictor:
    """A lookup-table predictor with a random cost (ms) per (decision, choice)."""
    decisions = get_space(space).decisions
    predictor = LUTPredictor([len(d.choices) for d in decisions])
    with torch.no_grad():
        predictor.table.copy_(torch.rand(predictor.table.shape, generator=torch.Generator().manual_seed(seed)))
        predictor.bias.fill_(1.0)
    predictor.meta = {"space": space}
    return predictor


def tiny(space: str) -> torch.nn.Module:
    """NNI's hub space for ehdnas space `space`, at a width and depth that train in a second."""
    return (
        DARTS(width=4, num_cells=3) if space == "darts" else NasBench201(stem_out_channels=4, num_modules_per_stack=1)
    )


def samples(model_space: torch.nn.Module, count: int, seed: int) -> list[dict]:
    """Valid discrete samples drawn from NNI's own choices (DARTS's with two distinct inputs per node)."""
    rng, found = np.random.RandomState(seed), []
    mutables = model_space.simplify()
    while len(found) < count:
        sample = {label: mutable.random(random_state=rng) for label, mutable in mutables.items()}
        pairs = [(sample[k], sample[k.replace("_0", "_1", 1)]) for k in sample if "/input_" in k and k.endswith("_0")]
        if all(a != b for a, b in pairs):
            assert model_space.check_contains(sample) is None
            found.append(sample)
    return found


def supernet(space: str) -> torch.nn.Module:
    """The tiny model space turned into DARTS's supernet, in place, as the strategy does."""
    model_space = tiny(space)
    DartsStrategy().mutate_model(model_space)
    return model_space


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_sampled_nni_architectures_map_to_ehdnas_and_back(space: str) -> None:
    labels, ours = label_map(space), get_space(space)
    model_space = tiny(space)
    for sample in samples(model_space, 30, seed=1):
        arch = labels.to_arch(sample)
        assert ours.from_text(ours.to_text(arch)) == arch
        back = labels.to_sample(arch)
        assert model_space.check_contains(back) is None  # a valid NNI sample
        assert labels.to_arch(back) == arch
        if space == "nb201":
            assert back == sample
    for arch in ours.sample_many(30, seed=2):
        assert labels.to_arch(labels.to_sample(arch)) == arch


def test_a_sample_with_both_edges_of_a_node_from_one_input_is_refused_naming_the_labels() -> None:
    sample = samples(tiny("darts"), 1, seed=3)[0]
    sample["reduce/input_4_1"] = sample["reduce/input_4_0"]
    with pytest.raises(UserError, match="'reduce/input_4_0' and 'reduce/input_4_1'"):
        label_map("darts").to_arch(sample)


def test_a_space_whose_depth_is_a_choice_is_refused_naming_the_label() -> None:
    model_space = DARTS(width=4, num_cells=(3, 6))
    DartsStrategy().mutate_model(model_space)
    penalty = predictor_penalty(lut("darts"), "darts", model_space, baseline=1.0)
    with pytest.raises(UserError, match="NNI label 'depth' has no counterpart in ehdnas space 'darts'"):
        penalty(torch.zeros(()), {})


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_the_penalty_alone_gives_every_architecture_logit_a_gradient(space: str) -> None:
    model = supernet(space)
    penalty = predictor_penalty(lut(space), space, model, baseline=2.0, scale=0.5)
    loss, details = penalty(torch.zeros(()), {})
    loss.backward()
    alphas = {name: p for name, p in model.named_parameters() if "_arch_alpha" in name}
    assert alphas
    for name, alpha in alphas.items():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name
    assert torch.allclose(loss, 0.5 * (details["penalty"] / 2.0 - 1))


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_the_penalty_of_a_nearly_one_hot_supernet_is_the_predicted_latency_of_its_architecture(space: str) -> None:
    """The oracle for the op permutation: the NNI logits of one architecture, the ehdnas encoding of the same."""
    model, predictor, ours = supernet(space), lut(space), get_space(space)
    arch = ours.sample(np.random.default_rng(4))
    labels = label_map(space)
    chosen = dict(zip(labels.labels, ours.encode(arch)))
    with torch.no_grad():
        for label, (logits, names, _) in architecture_logits(model).items():
            op = labels.ops[chosen[label]]
            logits.fill_(-30.0)
            logits[names.index(labels.renamed.get(op, op))] = 30.0
    penalty = predictor_penalty(predictor, space, model, baseline=1.0)
    _, details = penalty(torch.zeros(()), {})
    one_hot = [torch.from_numpy(v) for v in ours.one_hot(arch)]
    assert details["penalty"].item() == pytest.approx(predictor(one_hot).item(), rel=1e-5)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_the_profiler_returns_the_predicted_latency_of_a_sample(space: str) -> None:
    predictor, ours, labels = lut(space), get_space(space), label_map(space)
    profiler = predictor_profiler(predictor, space)
    for sample in samples(tiny(space), 5, seed=5):
        indices = ours.encode(labels.to_arch(sample))
        by_table = 1.0 + sum(float(predictor.table[d, i]) for d, i in enumerate(indices))
        assert profiler.profile(sample) == pytest.approx(by_table, rel=1e-6)
        keep = RangeProfilerFilter(profiler, max=by_table + 1e-3)
        assert keep(sample) and not RangeProfilerFilter(profiler, max=by_table - 1e-3)(sample)
        value, _ = SampleProfilerPenalty(profiler, baseline=by_table)(torch.zeros(()), sample)
        assert float(value) == pytest.approx(0.0, abs=1e-5)


def test_a_predictor_of_another_space_is_refused() -> None:
    with pytest.raises(UserError, match="trained for space 'nb201', not 'darts'"):
        predictor_profiler(lut("nb201"), "darts")


def evaluator() -> Classification:
    """NNI's classification evaluator on 16 random 8x8 images, one epoch."""
    images = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(images, torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1)))
    return Classification(
        train_dataloaders=DataLoader(data, batch_size=8),
        val_dataloaders=DataLoader(data, batch_size=8),
        num_classes=10,
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_random_one_shot_on_nni_nas_bench_201_keeps_only_what_the_filter_lets_through() -> None:
    # NasBench201: every NNI sample is in the ehdnas space, and about half are under 3.8 ms on this table. (On NNI's
    # DARTS 96% are not, and NNI draws 100 at most: the README says so.)
    predictor, kept, seen = lut("nb201"), [], []
    inner = predictor_filter(predictor, "nb201", max_ms=3.8)

    def watched(sample: dict) -> bool:
        seen.append(sample)
        kept.append(inner(sample))
        return kept[-1]

    model_space = tiny("nb201")
    strategy = RandomOneShot(filter=watched)
    strategy(RawFormatModelSpace.from_model(model_space, evaluator()), SequentialExecutionEngine())
    assert any(kept) and seen
    profiler = predictor_profiler(predictor, "nb201")
    for sample, keep in zip(seen, kept):
        assert (profiler.profile(sample) <= 3.8) == keep


def test_one_epoch_of_nni_darts_with_the_penalty_trains_the_architecture_logits() -> None:
    model_space = tiny("darts")
    penalty = predictor_penalty(lut("darts"), "darts", model_space, baseline=5.0, scale=10.0)
    strategy = DartsStrategy(penalty=penalty, arc_learning_rate=0.1)
    strategy(RawFormatModelSpace.from_model(model_space, evaluator()), SequentialExecutionEngine())
    moved = {label: probs for label, (probs, _) in architecture_probs(model_space).items()}
    assert set(moved) == set(label_map("darts").labels)
    # NNI draws the logits ~ N(0, 1e-3): uniform to 1e-4; the penalty and the task loss moved them
    assert max((p - 1 / 8).abs().max().item() for p in moved.values()) > 1e-3


def test_the_readmes_nni_example_runs_and_finds_a_darts_genotype(tmp_path: Path) -> None:
    data = synthetic(100)
    fit_lut(data, data).save(tmp_path / "ort-cpu.pt", {**data.meta, "target": "ort-cpu"})
    images = TensorDataset(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))
    namespace = {"train_loader": DataLoader(images, batch_size=4), "val_loader": DataLoader(images, batch_size=4)}
    with contextlib.chdir(tmp_path):
        exec(compile(python_block(NNI_EXAMPLE), "README.md", "exec"), namespace)
    assert isinstance(namespace["genotype"], Genotype)
    assert namespace["latency_ms"] > 0
