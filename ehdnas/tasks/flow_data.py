"""Optical-flow data for a FlowNAS-style search, with no download.

- `photos` (the embedded default): synthetic pairs made FlyingChairs-style from
  the two real photographs that ship inside scikit-learn (china.jpg and
  flower.jpg, 427x640 RGB): a crop of a photo is frame 1, a random smooth
  background motion plus one moving elliptical foreground patch give the flow,
  and frame 2 is rendered from the whole photograph, so content that moves in
  from outside the crop is real;
- `chairs:DIR`: FlyingChairs, DIR/NNNNN_img1.ppm, DIR/NNNNN_img2.ppm, DIR/NNNNN_flow.flo;
- `sintel:DIR`: MPI-Sintel, DIR/training/clean/<scene>/frame_XXXX.png with
  DIR/training/flow/<scene>/frame_XXXX.flo; consecutive frames are the pairs.

Convention everywhere: flow goes from frame 1 to frame 2, in pixels, channels
(u, v) = (x, y), so that frame1(p) == frame2(p + flow(p)); `warp(frame2, flow)`
therefore reproduces frame 1 wherever the point is visible in both frames.

Splits never share source pixels. `photos`: each photograph is cut into column
bands, train = columns [0, 60%), val = [60%, 80%), test = [80%, 100%), and every
pixel of a pair (both frames and the foreground texture) is read from inside its
split's band. `chairs`: contiguous blocks of pairs, the last 10% test and the
10% before them val. `sintel`: the same by whole scenes, so no scene is in two
splits.

Images are resized to cover H x W and centre-cropped (flow vectors scaled by the
resize), and normalised per channel with the training split's statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ehdnas.core.errors import UserError
from ehdnas.tasks.images import data_folder, require_folder

FLO_MAGIC = 202021.25  # "PIEH" read as a little-endian float32
UNKNOWN_FLOW = 1e9  # Middlebury: a component above this (in pixels) means "no ground truth here"
PHOTO_BANDS = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}  # column fractions of each photograph
PHOTO_COUNTS = {"train": 320, "val": 48, "test": 48}  # default pairs per split of `photos`
HELD_OUT = 0.1  # fraction of pairs (chairs) or scenes (sintel) in each of val and test

# The synthetic motion, as fractions of the crop's shorter side s = min(H, W): a uniform draw in +-limit.
# Displacements reach several cells of the encoder's 1/8 grid, as in FlyingChairs: at 48x64, with sub-cell motion
# (shifts of 0.06 s, 0.12 s) a RAFT-style estimator trained for 600 steps stayed at the zero-flow EPE; at these, its
# val EPE fell 22% below it in as many steps.
BG_SHIFT = 0.24  # background translation per axis
BG_ROTATE = 0.05  # background rotation, radians
BG_ZOOM = 0.06  # background log-scale
BG_WARP = 0.06  # non-rigid background displacement at each control point
BG_CONTROL = (3, 4)  # control grid (rows, columns), upsampled bicubically to a smooth field
FG_SHIFT = 0.48  # foreground translation per axis
FG_ROTATE = 0.15  # foreground rotation, radians
FG_ZOOM = 0.1  # foreground log-scale
FG_RADIUS = (0.12, 0.25)  # foreground ellipse semi-axes, fractions of s


@dataclass(frozen=True)
class FlowSplit:
    """One split's pairs, ground truth and its mask, all in memory: the data sets here are small."""

    images: torch.Tensor  # (N, 2, 3, H, W) float32, normalised; [:, 0] is frame 1
    flow: torch.Tensor  # (N, 2, H, W) float32, pixels, frame 1 -> frame 2, channels (u, v)
    valid: torch.Tensor  # (N, H, W) bool: the flow is ground truth that frame 2 confirms (see load_flow_data)

    def __len__(self) -> int:
        return len(self.flow)


@dataclass(frozen=True)
class FlowData:
    """Train / val / test pairs at one size, normalised with the training split's per-channel statistics.

    `fresh_train`, when set (`photos`), makes new training pairs for an epoch from the same band of the same
    photographs: a network that sees each pair once cannot memorise pairs and has to learn matching.
    """

    name: str
    height: int
    width: int
    train: FlowSplit
    val: FlowSplit
    test: FlowSplit
    fresh_train: Callable[[int], FlowSplit] | None = None

    def train_split(self, epoch: int) -> FlowSplit:
        """The training pairs of `epoch` (from 0): `train` at epoch 0 and for folders, new ones otherwise."""
        return self.train if epoch == 0 or self.fresh_train is None else self.fresh_train(epoch)


def _sample(image: torch.Tensor, points: torch.Tensor, mode: str = "bilinear", padding: str = "zeros") -> torch.Tensor:
    """`image` (N, C, Hi, Wi) read at pixel coordinates `points` (N, 2, Ho, Wo), channels (x, y).

    Pixel centres are at integers (align_corners), so a point on a pixel centre returns that pixel exactly.
    """
    height, width = image.shape[-2:]
    scale = points.new_tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)]).view(1, 2, 1, 1)
    grid = (points * scale - 1).permute(0, 2, 3, 1)  # grid_sample's [-1, 1] coordinates, (N, Ho, Wo, 2)
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=True)


def _pixel_grid(count: int, height: int, width: int) -> torch.Tensor:
    """The coordinates of every pixel, (count, 2, H, W), channels (x, y)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return torch.stack((xs, ys)).expand(count, -1, -1, -1)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """`image` (N, C, H, W) backward-warped by `flow` (N, 2, H, W) pixels: out(p) = image(p + flow(p)).

    Bilinear, zero outside the image. warp(frame2, flow) is frame 1 where the flow is right and the point visible.
    """
    return _sample(image, _pixel_grid(len(flow), *flow.shape[-2:]) + flow)


def epe(flow_pred: torch.Tensor, flow_gt: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean end-point error in pixels: the Euclidean distance between (N, 2, H, W) fields, over `valid` (N, H, W)."""
    error = torch.linalg.vector_norm(flow_pred - flow_gt, dim=1)  # (N, H, W)
    if valid is None:
        return error.mean()
    if not valid.any():
        raise ValueError("epe: no valid pixels")
    return error[valid].mean()


def read_flo(path: Path) -> torch.Tensor:
    """A Middlebury .flo file as a (2, H, W) float32 flow in pixels."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    if len(data) < 12:
        raise UserError(f"{path}: not a .flo file ({len(data)} bytes, shorter than the 12-byte header)")
    magic = float(np.frombuffer(data, "<f4", 1)[0])
    if magic != FLO_MAGIC:
        raise UserError(f"{path}: not a .flo file (magic {magic!r}, expected {FLO_MAGIC})")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
    if not (0 < width < 1 << 16 and 0 < height < 1 << 16):
        raise UserError(f"{path}: bad .flo size {width}x{height}")
    expected = 12 + 8 * width * height
    if len(data) != expected:
        raise UserError(
            f"{path}: truncated or padded .flo ({width}x{height} needs {expected} bytes, found {len(data)})"
        )
    flow = np.frombuffer(data, "<f4", 2 * width * height, 12).reshape(height, width, 2)
    return torch.from_numpy(flow.transpose(2, 0, 1).astype(np.float32))


def write_flo(path: Path, flow: torch.Tensor) -> None:
    """Writes a (2, H, W) flow in pixels as a Middlebury .flo file (little-endian)."""
    if flow.dim() != 3 or flow.shape[0] != 2:
        raise ValueError(f"write_flo: expected a (2, H, W) flow, got {tuple(flow.shape)}")
    height, width = flow.shape[1:]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    Path(path).write_bytes(header + flow.detach().cpu().permute(1, 2, 0).numpy().astype("<f4").tobytes())


def _motion_bound(height: int, width: int) -> float:
    """An upper bound, in pixels per axis, on the background displacement the generator draws."""
    side, half_diagonal = min(height, width), math.hypot(height - 1, width - 1) / 2
    linear = math.expm1(BG_ZOOM) + BG_ROTATE  # bounds the norm of (scaled rotation - identity)
    return linear * half_diagonal + (BG_SHIFT + 1.9 * BG_WARP) * side  # 1.9 = 1.375^2: bicubic's worst overshoot


def _similarity(generator: torch.Generator, count: int, rotate: float, zoom: float) -> torch.Tensor:
    """Random rotation-and-scale matrices (count, 2, 2), angle in +-rotate radians, log-scale in +-zoom."""
    angle = (torch.rand(count, generator=generator) * 2 - 1) * rotate
    scale = torch.exp((torch.rand(count, generator=generator) * 2 - 1) * zoom)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)


def _apply(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, 2, 2) matrices applied to (N, 2, H, W) points."""
    return torch.einsum("nij,njhw->nihw", matrix, points)


def _offsets(low: torch.Tensor, high: torch.Tensor, limits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random integer offsets (N, 2) that keep each extent [low, high] (N, 2) inside [0, limits - 1], pixels (x, y)."""
    first, last = torch.ceil(-low), torch.floor(limits - 1 - high)
    if bool((last < first).any()):
        raise ValueError(f"synthetic_pairs: a {limits.tolist()} (x, y) band is too small for these crops and motion")
    return first + torch.floor(torch.rand(low.shape, generator=generator) * (last - first + 1))


def synthetic_pairs(
    photo: torch.Tensor,
    band: tuple[int, int],
    count: int,
    height: int,
    width: int,
    generator: torch.Generator,
    noise_std: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`count` FlyingChairs-style pairs from `photo` (3, Hp, Wp): frame 1, frame 2, flow, valid.

    Every pixel is read from the photo's columns [band[0], band[1]), so pairs from disjoint bands share nothing.
    Frame 1 is an H x W crop with an elliptical patch of other texture from the band pasted on it. Frame 2 renders
    the background through a smooth backward map b (similarity + translation + bicubic non-rigid field) and the
    patch through its own similarity + translation. The background flow is the inverse of b, found by the fixed
    point flow(p) = -b(p + flow(p)) (b is a contraction: its gradient stays below 0.6).
    Returns frames (count, 3, H, W) in the photo's units with Gaussian noise of `noise_std` (clamped to [0, 1]
    only when noise is added), flow (count, 2, H, W) in pixels, and valid (count, H, W): the match p + flow(p)
    lies inside frame 2 and shows the same layer there, so frame1(p) == warp(frame2, flow)(p) up to interpolation.
    """
    side, n = min(height, width), count

    def uniform(*shape: int) -> torch.Tensor:  # in [-1, 1)
        return torch.rand(shape, generator=generator) * 2 - 1

    grid = _pixel_grid(n, height, width)  # (n, 2, H, W)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2]).view(1, 2, 1, 1)
    # Background: frame2(q) = photo(offset + q + b(q)) for q in crop coordinates.
    linear = _similarity(generator, n, BG_ROTATE, BG_ZOOM) - torch.eye(2)
    shift = (uniform(n, 2) * BG_SHIFT * side).view(n, 2, 1, 1)
    control = uniform(n, 2, *BG_CONTROL) * BG_WARP * side  # non-rigid displacements at control points, pixels
    to_control = torch.tensor([(BG_CONTROL[1] - 1) / max(width - 1, 1), (BG_CONTROL[0] - 1) / max(height - 1, 1)])
    constant = shift - _apply(linear, centre.expand(n, -1, -1, -1))  # so that b(q) = linear q + constant + nonrigid

    def backward(points: torch.Tensor) -> torch.Tensor:
        nonrigid = _sample(control, points * to_control.view(1, 2, 1, 1), mode="bicubic", padding="border")
        return _apply(linear, points) + constant + nonrigid

    source = grid + backward(grid)  # where frame 2's background pixels come from, crop coordinates
    flow_bg = -backward(grid)
    for _ in range(50):  # converges at least as 0.6^k
        previous, flow_bg = flow_bg, -backward(grid + flow_bg)
        if float((flow_bg - previous).abs().max()) < 1e-4:  # pixels
            break
    # Foreground: an ellipse around `middle` in frame 1, moved by p -> middle + fg_linear (p - middle) + fg_shift.
    middle = grid.new_tensor([width - 1, height - 1]) * (0.2 + 0.6 * torch.rand(n, 2, generator=generator))
    middle = middle.view(n, 2, 1, 1)
    low, high = FG_RADIUS
    axes = (low + (high - low) * torch.rand(n, 2, generator=generator)) * side
    tilt = _similarity(generator, n, math.pi, 0.0)
    fg_linear = _similarity(generator, n, FG_ROTATE, FG_ZOOM)
    fg_shift = (uniform(n, 2) * FG_SHIFT * side).view(n, 2, 1, 1)

    def inside_ellipse(local: torch.Tensor) -> torch.Tensor:  # (n, 2, H, W) offsets from the centre -> (n, H, W)
        return (_apply(tilt.transpose(1, 2), local) / axes.view(n, 2, 1, 1)).square().sum(1) <= 1

    local2 = _apply(torch.linalg.inv(fg_linear), grid - middle - fg_shift)  # frame-2 pixels in patch coordinates
    layer1, layer2 = inside_ellipse(grid - middle), inside_ellipse(local2)
    flow_fg = _apply(fg_linear, grid - middle) + middle + fg_shift - grid
    flow = torch.where(layer1[:, None], flow_fg, flow_bg)

    band_photo = photo[None, :, :, band[0] : band[1]]
    limits = torch.tensor([band[1] - band[0], photo.shape[-2]])  # (x, y) extent of the band, pixels
    extent_low = torch.minimum(source.amin((2, 3)), grid.new_zeros(2))  # (n, 2): both frames' background sources
    extent_high = torch.maximum(source.amax((2, 3)), grid.new_tensor([width - 1, height - 1]))
    offset = _offsets(extent_low, extent_high, limits, generator).view(n, 2, 1, 1)
    radius = torch.full((n, 2), float(axes.max()))
    texture = _offsets(-radius, radius, limits, generator).view(n, 2, 1, 1)  # band position of each patch's centre

    def render(points: torch.Tensor) -> torch.Tensor:  # one band image read at (n, 2, H, W) points -> (n, 3, H, W)
        flat = points.permute(1, 0, 2, 3).reshape(1, 2, n * height, width)
        return _sample(band_photo, flat).reshape(3, n, height, width).transpose(0, 1)

    frame1 = render(torch.where(layer1[:, None], grid - middle + texture, grid + offset))
    frame2 = render(torch.where(layer2[:, None], local2 + texture, source + offset))
    inside = warp(torch.ones(n, 1, height, width), flow)[:, 0] > 1 - 1e-4
    same_layer = (warp(layer2[:, None].float(), flow)[:, 0] - layer1.float()).abs() < 1e-4
    if noise_std > 0:
        frame1 = (frame1 + noise_std * torch.randn(frame1.shape, generator=generator)).clamp(0, 1)
        frame2 = (frame2 + noise_std * torch.randn(frame2.shape, generator=generator)).clamp(0, 1)
    return frame1, frame2, flow, inside & same_layer


def _photos(height: int, width: int) -> list[torch.Tensor]:
    """scikit-learn's two sample photographs (3, Hp, Wp) in [0, 1], enlarged only if the smallest band is too narrow."""
    from sklearn.datasets import load_sample_images

    photos = [torch.tensor(image).permute(2, 0, 1).float() / 255 for image in load_sample_images().images]
    margin = 2 * _motion_bound(height, width) + 2
    narrowest = min(high - low for low, high in PHOTO_BANDS.values())
    photo_height, photo_width = photos[0].shape[-2:]
    scale = max(1.0, (width + margin) / (narrowest * photo_width - 1), (height + margin) / photo_height)
    if scale == 1.0:
        return photos
    size = (math.ceil(photo_height * scale), math.ceil(photo_width * scale))
    return [F.interpolate(p[None], size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1) for p in photos]


def _photo_split(
    photos: list[torch.Tensor], name: str, count: int, height: int, width: int, seed: tuple[int, ...], noise_std: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`count` pairs of split `name`, half from each photograph's band, drawn by a generator seeded with `seed`."""
    low, high = PHOTO_BANDS[name]
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    parts = []
    for i, photo in enumerate(photos):
        share = count // len(photos) + (i < count % len(photos))
        if share == 0:
            continue
        band = (round(low * photo.shape[-1]), round(high * photo.shape[-1]))
        frame1, frame2, flow, valid = synthetic_pairs(photo, band, share, height, width, generator, noise_std)
        parts.append((torch.stack((frame1, frame2), 1), flow, valid))
    images, flow, valid = (torch.cat(part) for part in zip(*parts))
    return images, flow, valid


def _read_image(path: Path) -> torch.Tensor:
    """An image file as (3, h, w) float32 in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), np.float32) / 255
    except OSError as err:  # PIL's "cannot identify image file" is one too
        raise UserError(f"{path}: not a readable image ({err})") from None
    return torch.from_numpy(array).permute(2, 0, 1)


def _fit_pair(
    paths: tuple[Path, Path, Path], height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A pair (2, 3, H, W), flow (2, H, W) and valid (H, W): resized to cover H x W, centre-cropped.

    Resizing by (sx, sy) scales the flow's u by sx and v by sy; a pixel is valid only if all the source pixels
    it is resampled from had known flow.
    """
    images = torch.stack([_read_image(paths[0]), _read_image(paths[1])])
    flow = read_flo(paths[2])
    if images.shape[-2:] != flow.shape[-2:]:
        raise UserError(f"{paths[2]}: flow is {tuple(flow.shape[-2:])}, its images {tuple(images.shape[-2:])} (H, W)")
    known = (flow.abs() < UNKNOWN_FLOW).all(0) & flow.isfinite().all(0)
    flow, valid = torch.where(known, flow, 0.0), known.float()
    old_height, old_width = flow.shape[-2:]
    scale = max(height / old_height, width / old_width)
    new_height, new_width = max(height, round(old_height * scale)), max(width, round(old_width * scale))
    if (new_height, new_width) != (old_height, old_width):

        def resize(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=(new_height, new_width), mode="bilinear", align_corners=False, antialias=True)

        images = resize(images)
        flow = resize(flow[None])[0] * torch.tensor([new_width / old_width, new_height / old_height]).view(2, 1, 1)
        valid = resize(valid[None, None])[0, 0]
    top, left = (new_height - height) // 2, (new_width - width) // 2
    crop = (slice(top, top + height), slice(left, left + width))
    return images[..., crop[0], crop[1]], flow[:, crop[0], crop[1]], valid[crop] > 1 - 1e-3


def _chairs_groups(root: Path) -> list[list[tuple[Path, Path, Path]]]:
    """FlyingChairs pairs in numeric order, each pair its own group."""
    groups = []
    for flow in sorted(root.glob("*_flow.flo")):
        prefix = flow.name.removesuffix("_flow.flo")
        images = root / f"{prefix}_img1.ppm", root / f"{prefix}_img2.ppm"
        for image in images:
            if not image.is_file():
                raise UserError(f"chairs:{root}: {image.name} is missing (it goes with {flow.name})")
        groups.append([(*images, flow)])
    if not groups:
        raise UserError(
            f"chairs:{root}: no NNNNN_flow.flo files (expected NNNNN_img1.ppm, NNNNN_img2.ppm, NNNNN_flow.flo)"
        )
    return groups


def _sintel_groups(root: Path) -> list[list[tuple[Path, Path, Path]]]:
    """MPI-Sintel training pairs (clean pass), one group per scene, scenes in name order."""
    groups = []
    for scene in sorted(p for p in (root / "training" / "flow").iterdir() if p.is_dir()):
        pairs = []
        for flow in sorted(scene.glob("frame_*.flo")):
            number = int(flow.stem.removeprefix("frame_"))
            frames = root / "training" / "clean" / scene.name
            images = frames / f"frame_{number:04d}.png", frames / f"frame_{number + 1:04d}.png"
            for image in images:
                if not image.is_file():
                    raise UserError(f"sintel:{root}: {image.relative_to(root)} is missing (it goes with {flow.name})")
            pairs.append((*images, flow))
        if pairs:
            groups.append(pairs)
    if not groups:
        raise UserError(f"sintel:{root}: no training/flow/<scene>/frame_XXXX.flo files")
    return groups


def _groups(kind: str, root: Path, spec: str) -> list[list[tuple[Path, Path, Path]]]:
    """The pairs of a chairs or sintel folder, listed (not read), and enough of them for three splits."""
    groups = _chairs_groups(root) if kind == "chairs" else _sintel_groups(root)
    if len(groups) < 3:
        raise UserError(f"{spec}: needs at least 3 chairs pairs or Sintel scenes (one per split), found {len(groups)}")
    return groups


def _folder_splits(
    groups: list[list[tuple[Path, Path, Path]]], height: int, width: int, counts: dict[str, int | None]
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Groups (pairs or scenes) split in order: train, val, test; each split thinned evenly to at most its count."""
    held_out = max(1, round(HELD_OUT * len(groups)))
    cuts = {"train": groups[: -2 * held_out], "val": groups[-2 * held_out : -held_out], "test": groups[-held_out:]}
    splits = {}
    for name, chosen in cuts.items():
        pairs = [pair for group in chosen for pair in group]
        count = counts[name]
        if count is not None and count < len(pairs):
            pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, count).round().astype(int)]
        images, flow, valid = (torch.stack(part) for part in zip(*(_fit_pair(p, height, width) for p in pairs)))
        splits[name] = images, flow, valid
    return splits


def check_flow_data_spec(spec: str) -> tuple[str, Path]:
    """The kind and folder that `spec` names, its files there (enough pairs for three splits), checked without
    reading any data."""
    kind, _, location = spec.partition(":")
    if kind == "photos" and not location:
        return kind, Path()
    if kind in ("chairs", "sintel") and location:
        root = data_folder(location)
        needed = [root] if kind == "chairs" else [root / "training" / "clean", root / "training" / "flow"]
        for folder in needed:
            require_folder(folder, spec)
        _groups(kind, root, spec)
        return kind, root
    raise UserError(f"flow data {spec!r}: expected photos, chairs:DIR or sintel:DIR")


def load_flow_data(
    spec: str,
    height: int,
    width: int,
    *,
    train: int | None = None,
    val: int | None = None,
    test: int | None = None,
    seed: int = 0,
    noise_std: float = 0.0,
) -> FlowData:
    """Flow pairs named by `spec` at H x W, split train / val / test, images normalised.

    Counts: for `photos` the number of pairs made (default PHOTO_COUNTS); for folders an upper bound (default all).
    `seed` and `noise_std` (Gaussian, in [0, 1] image units, before normalisation) apply to `photos` only.
    `photos` also makes new training pairs for every epoch after the first (`FlowData.train_split`), as synthetic
    flow sets are used: 320 fixed pairs are memorised long before matching is learnt.
    `valid` marks pixels whose flow is ground truth that frame 2 can confirm: for `photos` the match is inside
    frame 2 and not hidden by (or straddling) the moving patch; for folders the .flo file gives a known value.
    """
    kind, root = check_flow_data_spec(spec)
    counts = {"train": train, "val": val, "test": test}
    for name, count in counts.items():
        if count is not None and count < 1:
            raise UserError(f"{spec}: {name} needs at least 1 pair, not {count}")
    if kind == "photos":
        photos = _photos(height, width)
        chosen = {name: PHOTO_COUNTS[name] if count is None else count for name, count in counts.items()}
        index = {name: i for i, name in enumerate(PHOTO_BANDS)}  # each split's own stream of random numbers
        splits = {
            name: _photo_split(photos, name, count, height, width, (seed, index[name]), noise_std)
            for name, count in chosen.items()
        }
    else:
        splits = _folder_splits(_groups(kind, root, spec), height, width, counts)
    train_images = splits["train"][0]
    mean = train_images.mean((0, 1, 3, 4)).view(1, 1, 3, 1, 1)
    std = train_images.std((0, 1, 3, 4)).clamp_min(1e-6).view(1, 1, 3, 1, 1)

    def normalised(images: torch.Tensor, flow: torch.Tensor, valid: torch.Tensor) -> FlowSplit:
        return FlowSplit(images=((images - mean) / std).contiguous(), flow=flow.contiguous(), valid=valid)

    def fresh(epoch: int) -> FlowSplit:  # photos: new training pairs for the epoch, from the same band
        train_seed = (seed, index["train"], epoch)
        return normalised(*_photo_split(photos, "train", chosen["train"], height, width, train_seed, noise_std))

    return FlowData(
        name=spec,
        height=height,
        width=width,
        **{name: normalised(*split) for name, split in splits.items()},
        fresh_train=fresh if kind == "photos" else None,
    )
