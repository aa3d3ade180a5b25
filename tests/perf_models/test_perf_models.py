"""perf_models against oracles: synthetic latencies with a known law, finite differences, hand-computed losses."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ehdnas.core.errors import UserError
from perf_models import HardwareLoss, load_predictor
from perf_models.active import most_uncertain
from perf_models.baselines import fit_flops, fit_lut
from perf_models.dataset import split
from perf_models.kinds import KINDS
from perf_models.metrics import evaluate
from perf_models.mlp import MLPPredictor, fit_mlp
from perf_models.train import choose_kind, mape_and_se, train_predictors
from tests.examples import run_loss_example, synthetic


def test_metrics_against_hand_computed_values() -> None:
    m = evaluate(np.array([1.0, 2.1, 2.7, 4.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert m["mape"] == pytest.approx(100 * (0 + 0.05 + 0.1 + 0) / 4)
    assert m["acc5"] == 0.75 and m["acc10"] == 1.0  # 5% and 10% are inclusive
    assert m["rmse_ms"] == pytest.approx(math.sqrt((0.01 + 0.09) / 4))
    assert m["kendall_tau"] == pytest.approx(1.0) and m["spearman_rho"] == pytest.approx(1.0)


def test_split_is_fixed_and_disjoint() -> None:
    train, val, test = split(100, seed=3)
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert len(set(train) | set(val) | set(test)) == 100
    assert all((a == b).all() for a, b in zip(split(100, seed=3), (train, val, test)))


def test_lut_recovers_an_additive_law_and_flops_a_linear_one() -> None:
    data = synthetic(600)
    train, test = data.subset(np.arange(500)), data.subset(np.arange(500, 600))
    assert evaluate(fit_lut(train, train).predict(test), test.latency_ms)["mape"] < 0.5
    assert evaluate(fit_flops(train, train).predict(test), test.latency_ms)["mape"] < 0.5


def test_prediction_is_differentiable_in_the_soft_architecture() -> None:
    torch.manual_seed(0)
    model = MLPPredictor([8] * 28, members=2, hidden=(16, 8), dropout=0.0).double().eval()
    alpha = torch.randn(28, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: model(torch.softmax(a, -1).double()), (alpha,), eps=1e-6, atol=1e-5)


def test_soft_input_forms_agree() -> None:
    torch.manual_seed(0)
    model = MLPPredictor([8] * 28, members=2).eval()
    soft = torch.softmax(torch.randn(28, 8), -1)
    one = model(soft)
    assert one.shape == ()
    assert torch.allclose(model(list(soft)), one)
    assert torch.allclose(model(soft.expand(3, 28, 8)), one.expand(3))
    with pytest.raises(ValueError, match="expected 28 probability vectors"):
        model(list(soft)[:27])


def test_one_hot_input_gives_the_discrete_prediction() -> None:
    data = synthetic(80)
    model = fit_lut(data, data)
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(data.indices[0]), 8).float()
    assert float(model(one_hot).detach()) == pytest.approx(model.predict(data)[0], rel=1e-6)


def test_training_reports_each_epoch_of_a_kind_trained_in_epochs_and_nothing_of_the_others() -> None:
    data, heard = synthetic(60), []
    train_predictors(data, ["mlp", "lut"], on_epoch=lambda kind, done, epochs: heard.append((kind, done, epochs)))
    assert heard and {kind for kind, _, _ in heard} == {"mlp"}  # lut is fitted in one go
    assert [done for _, done, _ in heard] == list(range(1, len(heard) + 1)) and heard[0][2] == 400
    assert KINDS.get("mlp").in_epochs and not KINDS.get("lut").in_epochs


def test_uncertainty_ranks_unfamiliar_architectures_first() -> None:
    data = synthetic(200)
    familiar = data.indices[:, 0] != 7  # never show the ensemble dil_conv_5x5 on the first edge
    train = data.subset(np.flatnonzero(familiar))
    model = fit_mlp(train, train.subset(np.arange(20)), epochs=60, members=5)
    picked = most_uncertain(model, data.indices, 10)
    assert (~familiar).sum() >= 10 and (~familiar[picked]).sum() >= 8


def test_save_and_load_round_trip_and_refuse_another_space(tmp_path: Path) -> None:
    data = synthetic(120)
    report = train_predictors(data, kinds=["lut", "flops"])
    assert set(report.metrics) == {"lut", "flops"} and report.best == "lut"
    path = report.predictor.save(tmp_path / "p.pt", report.meta(data))
    loaded = load_predictor(path, space="darts")
    np.testing.assert_allclose(loaded.predict(data), report.predictor.predict(data), rtol=1e-6)
    assert loaded.meta["measurements"] == 120 and loaded.meta["split"]["test"] == 24
    assert loaded.meta["metrics"]["mape"] == report.metrics["lut"]["mape"]
    assert loaded.meta["selection"] == {"reason": report.reason, "validation": report.validation}
    assert report.reason.startswith("lut: the lowest validation MAPE (lut ") and set(report.validation) == {
        "lut",
        "flops",
    }
    with pytest.raises(UserError, match="trained for space 'darts', not 'flownas'"):
        load_predictor(path, space="flownas")
    with pytest.raises(UserError, match="with settings"):
        load_predictor(path, space="darts", space_config={**data.meta["space_config"], "layers": 20})
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a predictor file"):
        load_predictor(tmp_path / "junk.pt")


def test_a_save_that_fails_leaves_the_file_there_was_and_no_partial_one(tmp_path: Path) -> None:
    data = synthetic(120)
    report = train_predictors(data, kinds=["lut"])
    path = report.predictor.save(tmp_path / "p.pt", report.meta(data))
    saved = path.read_bytes()
    with pytest.raises(Exception, match="pickle"):  # a failure half-way through writing: the meta does not pickle
        report.predictor.save(path, {**report.meta(data), "unpicklable": lambda: None})
    assert path.read_bytes() == saved and [p.name for p in tmp_path.iterdir()] == ["p.pt"]


def test_too_few_measurements_says_how_many_more() -> None:
    with pytest.raises(UserError, match="only 30 measurements; at least 50 are needed \\(20 more\\)"):
        train_predictors(synthetic(30))
    noisy = synthetic(10)
    noisy.meta["flagged_skipped"] = 100  # what the store's dataset counts when most measurements were flagged
    with pytest.raises(UserError, match="only 10 measurements; .*; 100 more are stored but flagged, their kept rounds"):
        train_predictors(noisy)
    with pytest.raises(UserError, match="unknown predictor kind 'gcn'"):
        train_predictors(synthetic(60), kinds=["gcn"])


def test_the_simpler_kind_is_kept_when_the_errors_tie_within_one_standard_error() -> None:
    tied = {"mlp": {"mape": 4.0, "se": 1.0}, "lut": {"mape": 4.9, "se": 1.5}}
    kind, reason = choose_kind(tied)
    assert (kind, reason) == (
        "lut",
        "lut: within one standard error of the lowest validation MAPE (mlp 4.00% ± 1.00; lut 4.90%), and simpler",
    )
    assert choose_kind({"mlp": {"mape": 4.0, "se": 1.0}, "lut": {"mape": 5.1, "se": 0.1}})[0] == "mlp"
    assert choose_kind({"lut": {"mape": 3.0, "se": 0.5}, "mlp": {"mape": 2.9, "se": 0.0}})[0] == "mlp"  # no noise


def test_the_rule_keeps_lut_on_an_additive_latency_and_mlp_where_latency_is_clearly_not_additive() -> None:
    additive = synthetic(300)  # lut is exact: 210 training rows for its 197 free costs
    both_convs = (additive.indices[:, 0] >= 4) & (additive.indices[:, 1] >= 4)  # normal cell, node 2: a third of rows
    interacting = dataclasses.replace(additive, latency_ms=additive.latency_ms * (1 + 0.5 * both_convs))
    train_rows, val_rows, _ = split(len(additive))
    for data, expected in ((additive, "lut"), (interacting, "mlp")):
        train, val = data.subset(train_rows), data.subset(val_rows)
        fitted = {"mlp": fit_mlp(train, val, epochs=40), "lut": fit_lut(train, val)}
        kind, reason = choose_kind({k: mape_and_se(f.predict(val), val.latency_ms) for k, f in fitted.items()})
        assert kind == expected, reason


class ConstantPredictor(torch.nn.Module):
    def forward(self, arch: torch.Tensor) -> torch.Tensor:
        return arch.sum() * 0 + 4.0  # 4 ms, still attached to the graph


@pytest.mark.parametrize(
    ("form", "kwargs", "expected"),
    [
        ("eh-dnas", {"lam": 0.5}, 1.0 + 0.5 / (1000 / 4.0)),
        ("eh-dnas", {"lam": 0.5, "ref_ms": 2.0}, 1.0 + 0.5 / (2.0 / 4.0)),
        ("add#linear", {"lam": 0.2, "ref_ms": 2.0}, 1.0 + 0.2 * 2.0),
        ("mul#log", {"ref_ms": 2.0, "beta": 0.6}, 1.0 * (math.log(4.0) / math.log(2.0)) ** 0.6),
        ("hinge", {"lam": 1.0, "target_ms": 5.0}, 1.0),
        ("hinge", {"lam": 1.0, "target_ms": 2.0}, 2.0),
    ],
)
def test_loss_forms(form: str, kwargs: dict, expected: float) -> None:
    loss = HardwareLoss(ConstantPredictor(), form=form, **kwargs)  # type: ignore[arg-type]
    assert float(loss(torch.tensor(1.0), torch.ones(28, 8))) == pytest.approx(expected)


def test_loss_term_steers_alpha_towards_faster_ops() -> None:
    data = synthetic(300)
    predictor = fit_lut(data, data)
    alpha = torch.zeros(28, 8, requires_grad=True)
    loss = HardwareLoss(predictor, form="add#linear", lam=1.0, ref_ms=1.0)
    before = predictor(torch.softmax(alpha, -1)).item()
    optimizer = torch.optim.SGD([alpha], lr=1.0)
    for _ in range(20):
        optimizer.zero_grad()
        loss(torch.tensor(0.0), torch.softmax(alpha, -1)).backward()
        optimizer.step()
    assert predictor(torch.softmax(alpha, -1)).item() < before
    assert all(p.grad is None for p in predictor.parameters())  # the predictor is frozen


def test_loss_forms_need_their_reference() -> None:
    with pytest.raises(UserError, match="needs ref_ms"):
        HardwareLoss(ConstantPredictor(), form="add#linear")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="needs target_ms"):
        HardwareLoss(ConstantPredictor(), form="hinge")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown hardware loss form"):
        HardwareLoss(ConstantPredictor(), form="cubic")  # type: ignore[arg-type]


def test_the_readme_loss_example_runs(tmp_path: Path) -> None:
    final_ms, uniform_ms = run_loss_example(tmp_path)  # also run by .ci/core_only.sh on a core-only install
    assert final_ms < uniform_ms
