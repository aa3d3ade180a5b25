"""The FlowNAS weight-sharing supernet: oracles against the standalone networks it extracts, and its training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ehdnas.spaces import get_space
from ehdnas.spaces.flownas import EncoderArch, FlowNASConfig, StageChoice
from ehdnas.supernets.flownas import FlowNASSupernet, sandwich

CONFIG = FlowNASConfig(input_height=32, input_width=32, out_dim=16)
LARGEST = "k5w64d2e1|k5w72d3e4|k5w96d3e6|k5w112d3e6|k5w128d4e6|k5w136d2e6"
SMALLEST = "k3w56d1e1|k3w64d1e1|k3w88d1e4|k3w96d1e4|k3w112d2e6|k3w128d1e6"


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def images(seed: int, batch: int = 2) -> torch.Tensor:
    """Inputs whose statistics are far from BatchNorm's initial (0, 1), so stale statistics show."""
    return 2.0 * torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) + 1.0


def supernet_with_random_norms(seed: int = 0) -> FlowNASSupernet:
    """A supernet whose BatchNorm affine parameters and running statistics are not the trivial 1, 0, 0, 1."""
    supernet = FlowNASSupernet(CONFIG, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in supernet.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                for tensor, low, high in (
                    (bn.weight, 0.5, 1.5),
                    (bn.bias, -0.5, 0.5),
                    (bn.running_mean, -0.5, 0.5),
                    (bn.running_var, 0.5, 2.0),
                ):
                    tensor.copy_(torch.empty(tensor.shape).uniform_(low, high, generator=generator))
    return supernet


def oracle_archs() -> list[EncoderArch]:
    space = get_space("flownas", vars(CONFIG))
    return [space.largest(), space.smallest(), *space.sample_many(4, seed=3)]


def test_largest_and_smallest_are_the_ends_of_the_table() -> None:
    space = get_space("flownas", vars(CONFIG))
    assert space.to_text(space.largest()) == LARGEST
    assert space.to_text(space.smallest()) == SMALLEST
    archs = sandwich(space, np.random.default_rng(7))
    assert archs[:2] == [space.largest(), space.smallest()] and len(archs) == 4
    assert archs == sandwich(space, np.random.default_rng(7))  # the generator is the only random state


def test_supernet_holds_exactly_the_largest_network() -> None:
    """Same parameters as the built largest network (no kernel transform matrix), so a trained one loads in."""
    supernet = FlowNASSupernet(CONFIG)
    largest = supernet.space.build(supernet.space.largest()).eval()
    assert n_params(supernet) == n_params(largest)
    supernet.net.load_state_dict(largest.state_dict())
    x = images(0)
    with torch.no_grad():
        assert torch.equal(supernet.eval()(x, supernet.space.largest()), largest(x))


@pytest.mark.parametrize("arch", oracle_archs(), ids=lambda a: a.to_text())
def test_forward_equals_the_extracted_network_in_eval_mode(arch: EncoderArch) -> None:
    supernet = supernet_with_random_norms().eval()
    extracted = supernet.extract(arch).eval()
    assert type(extracted) is type(supernet.space.build(arch))
    x = images(1)
    with torch.no_grad():
        out = supernet(x, arch)
        assert out.shape == (2, CONFIG.out_dim, 4, 4)
        torch.testing.assert_close(out, extracted(x), atol=1e-5, rtol=1e-5)


def test_training_mode_uses_batch_statistics_and_moves_the_shared_running_ones() -> None:
    supernet = supernet_with_random_norms().train()
    arch = oracle_archs()[2]
    extracted = supernet.extract(arch).train()
    before = copy.deepcopy(supernet.net.state_dict())
    x = images(2)
    torch.testing.assert_close(supernet(x, arch), extracted(x), atol=1e-5, rtol=1e-5)
    # Stage 4, block 1: the project BatchNorm's running mean moved on the arch's width only, as the extracted one's.
    width = arch.stages[3].width
    shared = supernet.net.stages[3][0].body[-1][1].running_mean
    torch.testing.assert_close(shared[:width], extracted.stages[3][0].body[-1][1].running_mean)
    assert not torch.equal(shared[:width], before["stages.3.0.body.2.1.running_mean"][:width])
    assert torch.equal(shared[width:], before["stages.3.0.body.2.1.running_mean"][width:])


def test_gradients_reach_only_the_slices_a_subnetwork_used() -> None:
    supernet = supernet_with_random_norms().train()  # trained-like: residual bodies no longer start at zero
    smallest = supernet.space.smallest()
    supernet(images(3), smallest).square().mean().backward()
    stage4 = supernet.net.stages[3]  # smallest: c_in 88, expand 4 (hidden 352), kernel 3, width 96, depth 1
    expand, depthwise, project = (unit[0].weight.grad for unit in stage4[0].body)
    assert expand[:352, :88].abs().sum() > 0 and not expand[352:].any() and not expand[:, 88:].any()
    assert depthwise[:352, :, 1:4, 1:4].abs().sum() > 0 and not depthwise[352:].any()
    ring = depthwise.clone()
    ring[:, :, 1:4, 1:4] = 0
    assert not ring.any()  # kernel 3: the outer taps of the 5x5 kernels get nothing
    assert project[:96, :352].abs().sum() > 0 and not project[96:].any() and not project[:, 352:].any()
    assert not stage4[0].body[-1][1].weight.grad[96:].any()
    assert all(
        p.grad is None for block in list(stage4)[1:] for p in block.parameters()
    )  # depth 1: blocks 2 and 3 unused
    assert all(p.grad is None for p in supernet.net.stages[1][0].body[0].parameters())  # expand 1: no expand conv
    assert not supernet.net.project.weight.grad[:, 128:].any()

    supernet.zero_grad(set_to_none=True)
    supernet(images(3), supernet.space.largest()).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in supernet.parameters())


def test_kernel_3_is_the_centre_of_the_5x5_kernels() -> None:
    supernet = supernet_with_random_norms().eval()
    k5 = supernet.space.largest()
    k3 = EncoderArch(tuple(StageChoice(3, s.width, s.depth, s.expand) for s in k5.stages))
    extracted = supernet.extract(k3)
    shared = supernet.net.stages[2][1].body[1][0].weight  # (96 * 6, 1, 5, 5)
    assert torch.equal(extracted.stages[2][1].body[1][0].weight, shared[:, :, 1:4, 1:4])
    # Oracle: with the outer taps zeroed, a 5x5 depthwise conv is its centre 3x3 one.
    with torch.no_grad():
        for stage in supernet.net.stages:
            for block in stage:
                block.body[-2][0].weight[:, :, [0, 4]] = 0
                block.body[-2][0].weight[:, :, :, [0, 4]] = 0
        x = images(4)
        torch.testing.assert_close(supernet(x, k3), supernet(x, k5), atol=1e-5, rtol=1e-5)


def test_bn_calibration_recomputes_the_statistics_of_one_subnetwork() -> None:
    supernet = supernet_with_random_norms()
    arch = oracle_archs()[3]
    batches = [images(seed, batch=16) for seed in (10, 11, 12)]
    before = copy.deepcopy(supernet.state_dict())
    calibrated = supernet.calibrate_bn(arch, batches)
    assert not calibrated.training
    assert all(torch.equal(v, before[k]) for k, v in supernet.state_dict().items())  # the supernet is left as it was
    stale = supernet.extract(arch).eval()
    assert calibrated.stem[1].momentum == stale.stem[1].momentum  # the built network's, for whoever trains it further
    # Oracle on the first BatchNorm, whose input no statistics change: the mean over every calibration image.
    x = torch.cat(batches)
    with torch.no_grad():
        stem_out = calibrated.stem[0](x)  # (48, 64, 16, 16)
    torch.testing.assert_close(calibrated.stem[1].running_mean, stem_out.mean((0, 2, 3)), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(
        calibrated.stages[4][0].body[0][1].running_mean, stale.stages[4][0].body[0][1].running_mean
    )

    # Eval mode now normalises nearly as training mode does on these inputs; the gap left is the unbiased
    # running variance against the biased batch one and batch-to-batch spread, compounded over ~35 BatchNorms.
    with torch.no_grad():
        batch_stats = copy.deepcopy(calibrated).train()(x)
        error = (calibrated(x) - batch_stats).abs().mean() / batch_stats.abs().mean()
        stale_error = (stale(x) - batch_stats).abs().mean() / batch_stats.abs().mean()
    assert error < 0.1 and error < stale_error / 10, (error, stale_error)
    with pytest.raises(ValueError, match="at least one batch"):
        supernet.calibrate_bn(arch, [])


def test_sandwich_training_reduces_the_loss() -> None:
    """Largest, smallest and 2 random sub-networks per step, losses summed, one optimizer, shared weights."""
    supernet = FlowNASSupernet(CONFIG, seed=1).train()
    optimizer = torch.optim.Adam(supernet.parameters(), lr=3e-3)
    x = images(5)
    target = torch.randn(2, CONFIG.out_dim, 4, 4, generator=torch.Generator().manual_seed(6))
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(6):
        optimizer.zero_grad(set_to_none=True)
        loss = sum(F.mse_loss(supernet(x, arch), target) for arch in sandwich(supernet.space, rng))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
