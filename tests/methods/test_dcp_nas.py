"""DCP-NAS: the child-parent step, its settings, the CLI and the server's search spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ehdnas.core.errors import UserError
from ehdnas.core.limits import Limits
from ehdnas.methods.darts import Schedule
from ehdnas.methods.dcp_nas import DcpNas, DcpNasSettings
from ehdnas.methods.registry import get_method
from perf_models.mlp import MLPPredictor
from server.specs import SearchSpec, check_spec

TINY = {"layers": 3, "channels": 4, "input_size": 8, "binary": True}


def _method(dcp_lambda: float) -> DcpNas:
    space = get_method("dcp-nas").space("darts", dict(TINY))
    settings = DcpNasSettings(space_options=space.config_dict(), dcp_lambda=dcp_lambda, lambdas=[0.0])
    predictor = MLPPredictor([len(d.choices) for d in space.decisions])
    schedule = Schedule.of(settings, rows=64)
    return DcpNas(settings, schedule, space, predictor, torch.Generator().manual_seed(0), torch.device("cpu"))


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 8, 8, generator=generator), torch.randint(0, 10, (8,), generator=generator)


def test_a_step_trains_parent_child_and_psi_and_backtracks_the_strongest_edges() -> None:
    method = _method(5e-3)
    child, parent = method.supernet.alpha.detach().clone(), method.parent.alpha.detach().clone()
    method.train()
    method.step(_batch(0), _batch(1), None, True)
    assert not torch.equal(child, method.supernet.alpha) and not torch.equal(parent, method.parent.alpha)
    assert int(method.mask.sum()) == 14  # half of the 28 edges, by weight-norm rank
    assert method.projected.abs().sum() > 0 and method.psi.abs().sum() == 0  # psi only moves from the next step
    method.step(_batch(2), _batch(3), None, True)
    assert method.psi.abs().sum() > 0  # the backtracking term is learned through the child's objective
    shifted = method.supernet.arch_logits(method.arch_shift()) - method.supernet.alpha
    assert torch.equal(shifted[method.mask.squeeze(1) == 0], torch.zeros_like(shifted[method.mask.squeeze(1) == 0]))
    record = method.end_epoch()
    assert record["discrepancy"] > 0 and record["backtracked_edges"] == 14


def test_lambda_zero_is_cp_nas_without_tangent_propagation() -> None:
    torch.manual_seed(0)
    cp, dcp = _method(0.0), _method(5.0)
    for method in (cp, dcp):
        method.train()
        torch.manual_seed(1)
        method.step(_batch(0), _batch(1), None, True)
    assert cp.end_epoch()["discrepancy"] == 0.0 and dcp.end_epoch()["discrepancy"] > 0
    assert not torch.allclose(cp.supernet.alpha, dcp.supernet.alpha)  # the tangent term moved alpha


def test_state_round_trips_for_resuming() -> None:
    method = _method(5e-3)
    method.train()
    method.step(_batch(0), _batch(1), None, True)
    method.step(_batch(2), _batch(3), None, True)
    again = _method(5e-3)
    again.load_state_dict(method.state_dict())
    assert torch.equal(again.psi, method.psi) and torch.equal(again.mask, method.mask)
    assert torch.equal(again.supernet.arch_logits(again.arch_shift()), method.supernet.arch_logits(method.arch_shift()))
    assert torch.equal(again.parent.alpha, method.parent.alpha)


def test_the_shift_is_an_input_and_a_saved_state_resumes_the_same_search(tmp_path: Path) -> None:
    method = _method(5e-3)
    method.train()
    for seed in (0, 2, 4):
        method.step(_batch(seed), _batch(seed + 1), None, True)
    assert not hasattr(method.supernet, "shift")  # the supernet holds alpha; the method, what corrects it
    shift = method.arch_shift()
    assert shift.abs().sum() > 0 and not torch.equal(
        method.supernet.soft_arch(shift=shift), method.supernet.soft_arch()
    )
    torch.save(method.state_dict(), tmp_path / "state.pt")  # as the search's checkpoint does
    again = _method(5e-3)
    again.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(again.supernet.soft_arch(shift=again.arch_shift()), method.supernet.soft_arch(shift=shift))
    assert again.supernet.derive(again.arch_shift()) == method.supernet.derive(shift)
    for resumed in (method, again):  # the next step goes on as if the search had not stopped
        resumed.step(_batch(6), _batch(7), None, True)
    assert torch.equal(again.arch_shift(), method.arch_shift())
    assert torch.equal(again.supernet.alpha, method.supernet.alpha)


def test_settings_space_and_server_spec() -> None:
    assert get_method("dcp-nas").space("darts", {"layers": 3}).config.binary is True
    with pytest.raises(UserError, match="binary=false does not go with it"):
        get_method("dcp-nas").space("darts", {"binary": False})
    with pytest.raises(UserError, match="set space option binary=true"):
        DcpNasSettings().check()
    with pytest.raises(UserError, match="unknown search method 'enas'"):
        get_method("enas")
    spec = SearchSpec(target="systolic-edge32", method="dcp-nas", auto_predictor=True, space_options={"layers": 3})
    assert check_spec(spec, Limits()) == [] and spec.resolve().space.config.binary is True
    bad = SearchSpec(target="systolic-edge32", method="dcp-nas", space_options={"binary": False}, auto_predictor=True)
    assert check_spec(bad, Limits())[0][0] == ("space_options",)
