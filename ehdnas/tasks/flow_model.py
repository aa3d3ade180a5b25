"""A compact RAFT-style optical-flow estimator (Teed & Deng, arXiv 2003.12039) around a FlowNAS encoder.

The encoder is kept apart from the rest (`FlowHead`) so that a weight-sharing
supernet can hand in the features of any sub-network; `FlowModel` joins a
standalone encoder (the teacher, a retrained searched one) to a head.

What is RAFT's, and what is simpler here:
- feature and context encoders share the sub-architecture (FlowNAS), and here
  the very same features: frame 1's features, through one 3x3 conv, give the
  GRU's initial hidden state (tanh) and its context input (relu);
- the all-pairs correlation volume at 1/8 (dot product / sqrt(D)), a pyramid
  by average-pooling the frame-2 dims, and a (2r+1)^2 window looked up
  bilinearly at every level around the current correspondence;
- the update block is RAFT-small's: a motion encoder, one 3x3 ConvGRU (not
  RAFT's separable 1x5/5x1 pair: a third of the cost at these small maps), and
  a flow head predicting the change of flow at 1/8;
- flow starts at zero and is detached between iterations, as in RAFT;
- upsampling to full resolution is bilinear (RAFT's `upflow8`), not RAFT's
  learned convex upsampling: fewer parameters and steps to train on a CPU.

Shapes in comments: B batch, D feature channels, (h, w) the 1/8 grid, (H, W)
the input. Flow is in pixels of its own grid, channels (u, v) = (x, y), from
frame 1 to frame 2 (the convention of ehdnas.tasks.flow_data).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, tick
from ehdnas.spaces.flownas import FlowNASSpace
from ehdnas.tasks.flow_data import FlowData, FlowSplit, epe

FlowFn = Callable[[Tensor, Tensor, int], list[Tensor]]  # (img1, img2, iterations) -> flow after each iteration


# ----------------------------------------------------------------------------- correlation


def correlation_pyramid(f1: Tensor, f2: Tensor, levels: int) -> list[Tensor]:
    """All-pairs correlation of (B, D, h, w) features, then `levels` resolutions of its frame-2 dims.

    Level l is (B*h*w, 1, h / 2^l, w / 2^l) (floored): for each frame-1 pixel, its match score with every
    frame-2 pixel, average-pooled 2^l x 2^l. Scores are dot products / sqrt(D), so their scale does not grow with D.
    """
    b, d, h, w = f1.shape
    if min(h, w) < 2 ** (levels - 1):
        raise ValueError(f"a {h}x{w} feature map is too small for {levels} correlation levels")
    corr = f1.flatten(2).transpose(1, 2) @ f2.flatten(2) / math.sqrt(d)  # (B, h*w, h*w)
    pyramid = [corr.reshape(b * h * w, 1, h, w)]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid


def lookup(pyramid: list[Tensor], coords: Tensor, radius: int) -> Tensor:
    """The correlation in a (2r+1)^2 window around `coords` (B, 2, h, w), level-0 pixels (x, y), at every level.

    Returns (B, levels * (2r+1)^2, h, w); within a level, channel (dy + r) * (2r+1) + (dx + r) holds the score at
    the window offset (dx, dy), in that level's pixels. Bilinear, zero outside the map. A level-0 position x is
    (x + 0.5) / 2^l - 0.5 at level l (the centre of the pooled cell), not RAFT's x / 2^l.
    """
    b, _, h, w = coords.shape
    steps = torch.arange(-radius, radius + 1, dtype=coords.dtype, device=coords.device)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    window = torch.stack((dx, dy), -1)  # (2r+1, 2r+1, 2): rows dy, columns dx, last dim (x, y)
    centres = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)  # one per frame-1 pixel
    out = []
    for level, volume in enumerate(pyramid):  # volume (B*h*w, 1, h_l, w_l)
        points = (centres + 0.5) / 2**level - 0.5 + window  # (B*h*w, 2r+1, 2r+1, 2), level-l pixels
        size = points.new_tensor([volume.shape[-1], volume.shape[-2]])
        grid = (2 * points + 1) / size - 1  # grid_sample's [-1, 1] with align_corners=False: exact at any size
        sampled = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.append(sampled.view(b, h, w, -1))  # (B, h, w, (2r+1)^2)
    return torch.cat(out, -1).permute(0, 3, 1, 2).contiguous()  # (B, levels * (2r+1)^2, h, w)


# ----------------------------------------------------------------------------- update block


class MotionEncoder(nn.Module):
    """RAFT-small's: correlation and current flow to `out_dim` motion features, the flow itself the last 2."""

    def __init__(self, corr_dim: int, out_dim: int) -> None:
        super().__init__()
        self.corr = nn.Conv2d(corr_dim, 96, 1)
        self.flow = nn.Sequential(nn.Conv2d(2, 64, 7, padding=3), nn.ReLU(), nn.Conv2d(64, 32, 3, padding=1))
        self.merge = nn.Conv2d(96 + 32, out_dim - 2, 3, padding=1)

    def forward(self, corr: Tensor, flow: Tensor) -> Tensor:  # (B, corr_dim, h, w), (B, 2, h, w)
        c = F.relu(self.corr(corr))  # (B, 96, h, w)
        f = F.relu(self.flow(flow))  # (B, 32, h, w)
        return torch.cat((F.relu(self.merge(torch.cat((c, f), 1))), flow), 1)  # (B, out_dim, h, w)


class ConvGRU(nn.Module):
    """A GRU whose gates are 3x3 convolutions over [hidden, input]."""

    def __init__(self, hidden: int, input_dim: int) -> None:
        super().__init__()
        self.gates = nn.Conv2d(hidden + input_dim, 2 * hidden, 3, padding=1)  # update z and reset r
        self.candidate = nn.Conv2d(hidden + input_dim, hidden, 3, padding=1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:  # (B, hidden, h, w), (B, input_dim, h, w)
        z, r = torch.sigmoid(self.gates(torch.cat((h, x), 1))).chunk(2, 1)
        q = torch.tanh(self.candidate(torch.cat((r * h, x), 1)))
        return (1 - z) * h + z * q  # (B, hidden, h, w)


class FlowHead(nn.Module):
    """Everything of RAFT after the encoders: frame features at 1/8 to a flow per update iteration."""

    def __init__(self, feature_dim: int, hidden: int = 64, levels: int = 3, radius: int = 3) -> None:
        super().__init__()
        self.hidden, self.levels, self.radius = hidden, levels, radius
        self.context = nn.Conv2d(feature_dim, 2 * hidden, 3, padding=1)  # -> GRU state and context input
        self.motion = MotionEncoder(levels * (2 * radius + 1) ** 2, hidden)
        self.gru = ConvGRU(hidden, 2 * hidden)  # input: context and motion features
        self.delta = nn.Sequential(
            nn.Conv2d(hidden, 2 * hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * hidden, 2, 3, padding=1)
        )

    def forward(self, f1: Tensor, f2: Tensor, iterations: int, image_size: tuple[int, int]) -> list[Tensor]:
        """Frame features (B, D, h, w) to the flow after each iteration, (B, 2, H, W) pixels, H x W = image_size.

        Each frame's features are first standardised per channel over its own image (instance norm, no
        parameters), so match scores do not depend on an image's contrast. RAFT puts instance norm inside its
        feature encoder; here it sits in the head, so the searched encoder keeps BatchNorm, which folds into its
        convolutions on every target. Measured at 48x64 on `photos`, the smallest encoder trained 15 epochs: val
        EPE 7.43 px with it, 8.19 px without (zero flow 8.88 px).
        """
        b, _, h, w = f1.shape
        f1, f2 = F.instance_norm(f1), F.instance_norm(f2)
        pyramid = correlation_pyramid(f1, f2, self.levels)
        state, context = self.context(f1).split(self.hidden, 1)
        state, context = torch.tanh(state), torch.relu(context)  # (B, hidden, h, w) each
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=f1.dtype, device=f1.device),
            torch.arange(w, dtype=f1.dtype, device=f1.device),
            indexing="ij",
        )
        grid = torch.stack((xs, ys))[None]  # (1, 2, h, w): every pixel's own coordinates
        flow = f1.new_zeros(b, 2, h, w)  # at 1/8, in 1/8-grid pixels
        flows = []
        for _ in range(iterations):
            flow = flow.detach()  # RAFT: each update learns from the correlation, not through earlier updates
            motion = self.motion(lookup(pyramid, grid + flow, self.radius), flow)  # (B, hidden, h, w)
            state = self.gru(state, torch.cat((context, motion), 1))
            flow = flow + self.delta(state)  # (B, 2, h, w)
            flows.append(upsample_flow(flow, image_size))
        return flows


def upsample_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, 2, h, w) flow in grid pixels -> (B, 2, H, W) in image pixels: bilinear (RAFT's upflow8), u x W/w, v x H/h."""
    height, width = size
    scale = flow.new_tensor([width / flow.shape[-1], height / flow.shape[-2]]).view(1, 2, 1, 1)  # 8 and 8 here
    return F.interpolate(flow, size=size, mode="bilinear", align_corners=True) * scale


class FlowModel(nn.Module):
    """A standalone encoder (images (B, 3, H, W) -> features (B, D, H/8, W/8)) and a FlowHead: the whole estimator."""

    def __init__(self, encoder: nn.Module, head: FlowHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, img1: Tensor, img2: Tensor, iterations: int) -> list[Tensor]:  # (B, 3, H, W) each
        f1, f2 = self.encoder(torch.cat((img1, img2))).chunk(2)  # one pass, as RAFT's fnet: (B, D, h, w) each
        return self.head(f1, f2, iterations, (img1.shape[-2], img1.shape[-1]))  # [(B, 2, H, W)] * iterations


# ----------------------------------------------------------------------------- training


def sequence_loss(flows: list[Tensor], gt: Tensor, valid: Tensor, gamma: float = 0.8) -> Tensor:
    """RAFT's loss: sum over iterations i of gamma^(n-1-i) x the mean |flow_i - gt| over valid pixels and (u, v).

    flows: n tensors (B, 2, H, W) pixels; gt (B, 2, H, W) pixels; valid (B, H, W) bool. The last iteration
    weighs 1. A batch with no valid pixel has loss 0.
    """
    mask = valid[:, None].to(gt.dtype)  # (B, 1, H, W)
    count = (2 * mask.sum()).clamp_min(1)  # both channels of every valid pixel
    n = len(flows)
    return sum(gamma ** (n - 1 - i) * ((flow - gt).abs() * mask).sum() / count for i, flow in enumerate(flows))


@dataclass(frozen=True)
class FlowTrainSettings:
    """How a flow estimator is trained (RAFT's recipe, scaled to minutes on a CPU).

    Measured on the 48x64 `photos` pairs (320 new training pairs per epoch, 48 val; zero flow scores 8.88 px) with
    one intra-op thread: an epoch (40 steps of batch 8 at 6 iterations, then validation at 12) takes 58-67 s for the
    largest-encoder teacher and 12 s for the smallest encoder. After 15 epochs the teacher's val EPE was 7.26 px
    (8.54 before residual blocks started as the identity) and the smallest encoder's 7.43 px: these defaults are a
    short start, not a converged RAFT. With two intra-op threads on 2 shared cores a step took anywhere from 1.7 s
    to minutes, the threads waiting on each other: set torch.set_num_threads(1) on shared cores.
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3  # peak of the one-cycle schedule (RAFT: 4e-4 for its far longer runs)
    weight_decay: float = 1e-4
    iterations: int = 6  # update iterations in training (RAFT: 12)
    eval_iterations: int = 12  # in validation and evaluation (RAFT: 24 to 32)
    gamma: float = 0.8  # in the loss, each iteration weighs gamma times the next one
    grad_clip: float = 1.0  # max gradient norm
    seed: int = 0

    def check(self) -> None:
        for name in ("epochs", "batch_size", "iterations", "eval_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"flow training: {name} must be a whole number of at least 1, got {value!r}")
        if not self.lr > 0:
            raise UserError(f"flow training: lr must be positive, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise UserError(f"flow training: weight_decay must be 0 or more, got {self.weight_decay!r}")
        if not 0 < self.gamma <= 1:
            raise UserError(f"flow training: gamma must be in (0, 1], got {self.gamma!r}")
        if not self.grad_clip > 0:
            raise UserError(f"flow training: grad_clip must be positive, got {self.grad_clip!r}")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a GPU when there is one, never required


def _on(split: FlowSplit, device: torch.device) -> FlowSplit:
    return FlowSplit(images=split.images.to(device), flow=split.flow.to(device), valid=split.valid.to(device))


def evaluate_epe(model: nn.Module | FlowFn, split: FlowSplit, iterations: int, batch_size: int = 16) -> float:
    """Mean end-point error (pixels) of the last iteration's flow over all valid pixels of `split`.

    `model` is a FlowModel or any callable (img1, img2, iterations) -> flows, e.g. a supernet sub-network with a
    head; a module is put in eval mode and fed on its parameters' device.
    """
    device = split.images.device
    if isinstance(model, nn.Module):
        model.eval()
        device = next(model.parameters(), split.images).device
    total, pixels = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            rows = slice(start, start + batch_size)
            valid = split.valid[rows].to(device)
            count = int(valid.sum())
            if count == 0:
                continue
            images = split.images[rows].to(device)
            flow = model(images[:, 0], images[:, 1], iterations)[-1]
            total += float(epe(flow, split.flow[rows].to(device), valid)) * count
            pixels += count
    if pixels == 0:
        raise ValueError("evaluate_epe: the split has no valid pixels")
    return total / pixels


def raft_optimizer(
    parameters: list[nn.Parameter], settings: FlowTrainSettings, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """RAFT's AdamW and one-cycle schedule (5% warm-up, linear decay), the schedule stepped once per batch."""
    optimizer = torch.optim.AdamW(parameters, settings.lr, weight_decay=settings.weight_decay, eps=1e-8)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        settings.lr,
        total_steps=settings.epochs * steps_per_epoch,
        pct_start=0.05,
        cycle_momentum=False,
        anneal_strategy="linear",
    )
    return optimizer, schedule


def train_flow(
    model: nn.Module, data: FlowData, settings: FlowTrainSettings, on_event: Events, what: str = "flow training"
) -> nn.Module:
    """Trains `model` (img1, img2, iterations -> flows) on data.train_split(epoch), validating on data.val after each.

    AdamW with RAFT's one-cycle schedule (5% warm-up, linear decay) stepped per batch, gradient clipping; the batch
    order comes from a generator seeded with settings.seed. Returns the model in eval mode, on the GPU if there is one.
    Ticks `on_event` after every step and before validating (stage "flow-train", messages naming it `what`; the
    caller throttles them).
    """
    settings.check()
    device = default_device()
    model = model.to(device)
    val = _on(data.val, device)
    generator = torch.Generator().manual_seed(settings.seed)
    steps = math.ceil(len(data.train) / settings.batch_size)
    optimizer, schedule = raft_optimizer(list(model.parameters()), settings, steps)
    for epoch in range(settings.epochs):
        started, losses = time.perf_counter(), []
        train = _on(data.train_split(epoch), device)
        model.train()
        where = f"{what} epoch {epoch + 1}/{settings.epochs}"
        for step, rows in enumerate(torch.randperm(len(train), generator=generator).split(settings.batch_size)):
            rows = rows.to(device)
            images = train.images[rows]  # (b, 2, 3, H, W)
            flows = model(images[:, 0], images[:, 1], settings.iterations)
            loss = sequence_loss(flows, train.flow[rows], train.valid[rows], settings.gamma)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            on_event(
                tick("flow-train", epoch + (step + 1) / steps, settings.epochs, f"{where}, step {step + 1}/{steps}")
            )
        on_event(tick("flow-train", epoch + 1, settings.epochs, f"{where}, validating"))
        val_epe = evaluate_epe(model, val, settings.eval_iterations, settings.batch_size)
        on_event(
            {
                "stage": "flow-train",
                "epoch": epoch + 1,
                "epochs": settings.epochs,
                "loss": sum(losses) / len(losses),
                "val_epe": val_epe,  # pixels, last iteration of eval_iterations
                "epoch_s": time.perf_counter() - started,  # training and validation
            }
        )
    return model.eval()


def train_teacher(
    space: FlowNASSpace, data: FlowData, settings: FlowTrainSettings, on_event: Events, hidden: int = 64
) -> FlowModel:
    """The estimator with the space's largest encoder, trained: the teacher that FlowNAS distils the supernet from.

    Its initial weights come from settings.seed; the global random state is left as it was.
    """
    settings.check()
    if data.height % 8 or data.width % 8:
        raise UserError(f"flow teacher: the {data.height}x{data.width} data must be a multiple of 8 in both sides")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = FlowModel(space.build(space.largest()), FlowHead(space.config.out_dim, hidden))
    train_flow(model, data, settings, on_event, "teacher")
    return model
