"""The RAFT-style flow estimator: shapes, the correlation lookup against an oracle, the loss by hand, learning."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from ehdnas.core.errors import UserError
from ehdnas.core.events import is_tick
from ehdnas.spaces.flownas import FlowNASConfig, FlowNASSpace
from ehdnas.tasks.flow_data import FlowData, FlowSplit, load_flow_data
from ehdnas.tasks.flow_model import (
    FlowHead,
    FlowModel,
    FlowTrainSettings,
    correlation_pyramid,
    evaluate_epe,
    lookup,
    sequence_loss,
    train_flow,
    train_teacher,
)


def pixel_grid(height: int, width: int) -> torch.Tensor:
    """(1, 2, H, W): every pixel's own (x, y), i.e. the correspondence of zero flow."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return torch.stack((xs, ys))[None]


def translations(
    textures: int, shifts_each: int, height: int, width: int, generator: torch.Generator, step: int = 8
) -> FlowSplit:
    """Pairs whose whole frame moves by (u, v) in {-step, 0, step}^2 pixels: an easy set that still needs matching.

    Each random smooth texture appears with `shifts_each` different shifts, so frame 1 alone cannot give the flow.
    frame2(q) = texture(q + margin - flow), so frame1(p) = frame2(p + flow) everywhere: every pixel is valid.
    """
    margin, count = step, textures * shifts_each
    coarse = torch.randn(textures, 3, (height + 2 * margin) // 4, (width + 2 * margin) // 4, generator=generator)
    texture = F.interpolate(coarse, scale_factor=4, mode="bilinear").repeat_interleave(shifts_each, 0)
    flow = (torch.randint(-1, 2, (count, 2), generator=generator) * step).tolist()  # (u, v) per pair
    frame1 = texture[:, :, margin : margin + height, margin : margin + width]
    frame2 = torch.stack(
        [t[:, margin - v : margin - v + height, margin - u : margin - u + width] for t, (u, v) in zip(texture, flow)]
    )
    dense = torch.tensor(flow, dtype=torch.float32)[:, :, None, None].expand(-1, -1, height, width)
    return FlowSplit(
        torch.stack((frame1, frame2), 1), dense.contiguous(), torch.ones(count, height, width, dtype=torch.bool)
    )


def small_model(seed: int = 0, dim: int = 32) -> FlowModel:
    """The smallest FlowNAS encoder at a reduced feature width, and a narrow head."""
    space = FlowNASSpace(FlowNASConfig(32, 48, out_dim=dim))
    torch.manual_seed(seed)
    return FlowModel(space.build(space.smallest()), FlowHead(dim, hidden=16, levels=3, radius=2))


def test_flows_have_one_full_resolution_field_per_iteration() -> None:
    model = small_model()
    images = torch.randn(2, 2, 3, 32, 48)
    flows = model(images[:, 0], images[:, 1], iterations=3)
    assert len(flows) == 3
    assert all(flow.shape == (2, 2, 32, 48) and flow.isfinite().all() for flow in flows)
    head = FlowHead(16, hidden=8)
    flows = head(torch.randn(1, 16, 4, 6), torch.randn(1, 16, 4, 6), 2, (32, 48))  # features straight in, as a supernet
    assert [tuple(flow.shape) for flow in flows] == [(1, 2, 32, 48)] * 2


def test_the_head_ignores_each_images_feature_scale_and_offset() -> None:
    """Features are standardised per image and channel first: a contrast change of one frame changes no flow."""
    torch.manual_seed(0)
    head = FlowHead(16, hidden=8).eval()
    f1, f2 = torch.randn(2, 16, 4, 6), torch.randn(2, 16, 4, 6)
    scale, offset = torch.rand(2, 16, 1, 1) + 0.5, torch.randn(2, 16, 1, 1)  # per image and channel
    with torch.no_grad():
        plain, rescaled = head(f1, f2, 2, (32, 48)), head(f1, scale * f2 + offset, 2, (32, 48))
        other = head(f1, f2.flip(-1), 2, (32, 48))
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(plain, rescaled))
    assert not torch.allclose(plain[-1], other[-1], atol=1e-4)  # and the features themselves still count


@pytest.mark.parametrize(("dx", "dy"), [(2, -1), (-3, 0), (0, 3), (1, 1)])
def test_lookup_peaks_at_the_displacement_of_shifted_features(dx: int, dy: int) -> None:
    """f2 is f1 moved by (dx, dy) grid pixels; with unit-norm features the match is the unique maximum of the window."""
    radius, depth, height, width = 3, 32, 7, 9
    f1 = F.normalize(torch.randn(1, depth, height, width, generator=torch.Generator().manual_seed(0)), dim=1)
    f2 = torch.roll(f1, (dy, dx), (2, 3))  # f2(p + d) == f1(p) (wrapping round, which the check below avoids)
    window = lookup(correlation_pyramid(f1, f2, 2), pixel_grid(height, width), radius)  # zero flow
    side = 2 * radius + 1
    assert window.shape == (1, 2 * side**2, height, width)
    level0 = window[:, : side**2]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    inside = (0 <= xs + dx) & (xs + dx < width) & (0 <= ys + dy) & (ys + dy < height)  # the match is in frame 2
    best = level0.argmax(1)[0]
    assert inside.sum() > 20 and (best[inside] == (dy + radius) * side + (dx + radius)).all()
    assert torch.allclose(level0.amax(1)[0][inside], torch.tensor(1 / math.sqrt(depth)))  # |f1|^2 / sqrt(D)
    # At offset 0, level 0: exactly the scaled dot product of the two frames' features at the same pixel.
    centre = (side**2) // 2
    assert torch.allclose(level0[:, centre], (f1 * f2).sum(1) / math.sqrt(depth), atol=1e-6)


def test_lookup_reads_coarser_levels_at_pooled_cell_centres() -> None:
    """Level 1 at the centre of a 2x2 cell of frame-2 pixels is that cell's mean score: the pooled value itself."""
    f1, f2 = torch.randn(1, 8, 4, 6), torch.randn(1, 8, 4, 6)
    pyramid = correlation_pyramid(f1, f2, 2)
    scores = (f1.flatten(2).transpose(1, 2) @ f2.flatten(2) / math.sqrt(8)).view(1, 4, 6, 4, 6)  # (1, h, w, h, w)
    # Pixel (x, y) = (0, 0) of frame 1 looks at frame-2 point (2.5, 0.5), the centre of the cell x 2..3, y 0..1.
    coords = pixel_grid(4, 6) + torch.tensor([2.5, 0.5]).view(1, 2, 1, 1)
    window = lookup(pyramid, coords, radius=0)  # (1, 2, h, w): level 0 (bilinear between 4 pixels), level 1
    cell = scores[0, 0, 0, 0:2, 2:4]
    assert torch.allclose(window[0, 0, 0, 0], cell.mean(), atol=1e-5)  # bilinear at the centre of 4 pixels
    assert torch.allclose(window[0, 1, 0, 0], cell.mean(), atol=1e-5)  # the pooled cell, read exactly


def test_sequence_loss_weights_later_iterations_more_on_valid_pixels_only() -> None:
    gt = torch.zeros(1, 2, 2, 2)
    valid = torch.tensor([[[True, False], [True, True]]])
    early, late = torch.full((1, 2, 2, 2), 1.0), torch.full((1, 2, 2, 2), 3.0)
    early[..., 0, 1], late[..., 0, 1] = 50.0, 100.0  # the invalid pixel: must not count
    # Mean |error| over the 3 valid pixels and both channels: 1 for the early flow, 3 for the late one.
    assert float(sequence_loss([early, late], gt, valid, gamma=0.8)) == pytest.approx(0.8 * 1 + 1.0 * 3)
    assert float(sequence_loss([late], gt, valid, gamma=0.5)) == pytest.approx(3.0)
    assert float(sequence_loss([late], gt, torch.zeros_like(valid))) == 0.0  # no valid pixel: nothing to learn


def test_evaluate_epe_is_the_pixel_mean_over_valid_pixels() -> None:
    flow = torch.zeros(3, 2, 4, 4)
    flow[:, 0] = torch.tensor([3.0, 4.0, 5.0]).view(3, 1, 1)
    valid = torch.zeros(3, 4, 4, dtype=torch.bool)
    valid[0, :2], valid[1, :1], valid[2] = True, True, True  # 8, 4 and 16 valid pixels
    split = FlowSplit(torch.zeros(3, 2, 3, 4, 4), flow, valid)

    def zero(img1: torch.Tensor, img2: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        return [torch.zeros(len(img1), 2, 4, 4)] * iterations

    # Batches of 2 pairs: the batch means (3*8 + 4*4) / 12 and 5 must not be averaged as equals.
    assert evaluate_epe(zero, split, iterations=2, batch_size=2) == pytest.approx((3 * 8 + 4 * 4 + 5 * 16) / 28)


def test_training_learns_to_match_unseen_textures() -> None:
    """A few epochs bring the val EPE on unseen textures well below the zero-flow EPE (to 0.24-0.28 of it, seeds 0-5).

    The encoder here is a single stride-8 conv: its features of frames moved by whole 1/8 cells are shifted copies,
    so the correlation is informative from the first step, and what is tested is that train_flow teaches the head
    to read it. (FlowNAS encoders memorise sets this small before they learn to match: see the teacher run.)
    """
    generator = torch.Generator().manual_seed(0)
    height, width = 32, 48
    data = FlowData(
        "translations",
        height,
        width,
        train=translations(8, 8, height, width, generator),
        val=translations(16, 1, height, width, generator),
        test=translations(4, 1, height, width, generator),
    )
    zero_flow_epe = float(torch.linalg.vector_norm(data.val.flow, dim=1)[data.val.valid].mean())
    torch.manual_seed(0)
    model = FlowModel(torch.nn.Conv2d(3, 32, 8, stride=8), FlowHead(32, hidden=32))
    settings = FlowTrainSettings(epochs=14, batch_size=8, lr=2e-3, iterations=3, eval_iterations=4)
    events: list[dict[str, Any]] = []
    train_flow(model, data, settings, events.append)
    records = [e for e in events if not is_tick(e)]
    assert [r["epoch"] for r in records] == list(range(1, 15)) and all(r["stage"] == "flow-train" for r in records)
    assert records[-1]["loss"] < records[0]["loss"]
    assert records[-1]["val_epe"] < 0.5 * zero_flow_epe, (zero_flow_epe, [r["val_epe"] for r in records])
    assert evaluate_epe(model, data.val, settings.eval_iterations) == pytest.approx(records[-1]["val_epe"])


def test_training_is_reproducible_from_its_seed() -> None:
    split = translations(2, 2, 32, 48, torch.Generator().manual_seed(1))
    data = FlowData("translations", 32, 48, train=split, val=split, test=split)
    settings = FlowTrainSettings(epochs=2, batch_size=2, iterations=2, eval_iterations=2, seed=3)
    runs = []
    for _ in range(2):
        records: list[dict[str, Any]] = []
        train_flow(small_model(seed=5), data, settings, records.append)
        runs.append([(r["loss"], r["val_epe"]) for r in records if not is_tick(r)])
    assert runs[0] == runs[1]


def test_teacher_is_the_largest_encoder_trained_end_to_end() -> None:
    space = FlowNASSpace(FlowNASConfig(32, 32))
    data = load_flow_data("photos", 32, 32, train=4, val=2, test=2)
    settings = FlowTrainSettings(epochs=1, batch_size=2, iterations=2, eval_iterations=2)
    rng_state = torch.random.get_rng_state()
    events: list[dict[str, Any]] = []
    teacher = train_teacher(space, data, settings, events.append)
    records, ticks = [e for e in events if not is_tick(e)], [e for e in events if is_tick(e)]
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # its initial weights come from settings.seed
    largest = space.build(space.largest())
    assert {k: v.shape for k, v in teacher.encoder.state_dict().items()} == {
        k: v.shape for k, v in largest.state_dict().items()
    }
    assert len(records) == 1
    assert set(records[0]) == {"stage", "epoch", "epochs", "loss", "val_epe", "epoch_s"}
    assert math.isfinite(records[0]["loss"]) and records[0]["val_epe"] > 0
    # Between epochs the stage ticks: after each of the 2 steps, then while it validates, never past the epoch.
    assert [(t["stage"], t["done"], t["total"]) for t in ticks] == [("flow-train", d, 1) for d in (0.5, 1.0, 1.0)]
    assert [t["message"] for t in ticks] == [
        "teacher epoch 1/1, step 1/2", "teacher epoch 1/1, step 2/2", "teacher epoch 1/1, validating",
    ]  # fmt: skip
    assert events.index(ticks[-1]) < events.index(records[0])
    assert not teacher.training
    flows = teacher(data.test.images[:, 0], data.test.images[:, 1], 3)
    assert len(flows) == 3 and flows[-1].shape == (2, 2, 32, 32)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"iterations": 0},
        {"eval_iterations": 2.5},
        {"epochs": True},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"weight_decay": -1e-4},
        {"gamma": 0.0},
        {"gamma": 1.5},
        {"grad_clip": 0.0},
    ],
)
def test_bad_settings_are_user_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(UserError, match=next(iter(bad))):
        FlowTrainSettings(**bad).check()


def test_teacher_refuses_data_the_encoder_cannot_stride() -> None:
    split = FlowSplit(torch.zeros(1, 2, 3, 36, 48), torch.zeros(1, 2, 36, 48), torch.ones(1, 36, 48, dtype=torch.bool))
    with pytest.raises(UserError, match="multiple of 8"):
        train_teacher(FlowNASSpace(), FlowData("odd", 36, 48, split, split, split), FlowTrainSettings(), print)
