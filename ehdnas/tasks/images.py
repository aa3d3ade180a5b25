"""Image classification data for search and retraining, with no download.

- `digits` (the embedded default): scikit-learn's 1,797 handwritten digits,
  8x8 grayscale images that ship inside the scikit-learn package;
- `cluttered` (embedded): those digits in the manner of cluttered MNIST (Mnih
  et al. 2014), 2,000 training and 1,000 test 24x24 canvases, each with one
  digit at a random position, scale and rotation among crops of other digits;
  drawn with a fixed seed when loaded, training canvases from the training
  digits only, test canvases from the test digits only (`cluttered_digits`);
- `cifar10:DIR`: CIFAR-10 in its standard python-batch format in DIR;
- `folder:DIR`: an image-folder layout, DIR/train/<class>/* and DIR/test/<class>/*.

Images are resized to the space's input size and given its channel count, and
normalised per channel with the training split's statistics.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ehdnas.core import datasets
from ehdnas.core.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm"}


@dataclass(frozen=True)
class ImageData:
    name: str
    train_x: torch.Tensor  # (N, C, H, W), normalised
    train_y: torch.Tensor  # (N,) class indices
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int


def _digits_split() -> tuple[np.ndarray, np.ndarray]:
    """The fixed 80/20 split of scikit-learn's digits: the indices of the training and of the test digits."""
    order = np.random.default_rng(0).permutation(1797)
    cut = int(0.8 * len(order))
    return order[:cut], order[cut:]


def _source_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as (N, 1, 8, 8) images in 0..1, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32)[:, None] / 16.0, digits.target


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    images, labels = _source_digits()
    train, test = _digits_split()
    return images[train], labels[train], images[test], labels[test]


@dataclass(frozen=True)
class Clutter:
    """How `cluttered` canvases are drawn (lengths in canvas pixels unless said otherwise)."""

    canvas: int = 24  # side of the square canvas
    pieces: int = 2  # clutter pieces per canvas
    crop: int = 4  # side of a clutter piece, in pixels of the 8x8 source digit
    scale: tuple[float, float] = (1.75, 2.5)  # the digit's side on the canvas over its 8 source pixels
    rotation: float = 20.0  # degrees, either way


CLUTTER = Clutter()
CLUTTERED_SIZES = (2000, 1000)  # canvases drawn from the training digits, from the test digits
CLUTTERED_SEED = 0


def _place(
    images: np.ndarray, centres: np.ndarray, positions: np.ndarray, recipe: Clutter, rng: np.random.Generator
) -> torch.Tensor:
    """Each (1, 8, 8) image drawn on a canvas of its own: rotated and scaled about its source point `centres` (x, y in
    source pixels), which lands on `positions` (x, y in canvas pixels); bilinear, zero outside the source."""
    count, side, size = len(images), images.shape[-1], recipe.canvas
    angle = np.deg2rad(rng.uniform(-recipe.rotation, recipe.rotation, count))
    scale = rng.uniform(*recipe.scale, count)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    inverse = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)  # canvas -> source, (N, 2, 2)
    # affine_grid's coordinates run -1..1 over both images (align_corners=False): source = A canvas + b
    linear = inverse * (size / side)
    offset = np.einsum("nij,nj->ni", inverse, size / 2 - positions) * (2 / side) + centres * (2 / side) - 1
    theta = torch.as_tensor(np.concatenate([linear, offset[:, :, None]], -1), dtype=torch.float32)
    grid = F.affine_grid(theta, [count, 1, size, size], align_corners=False)
    return F.grid_sample(torch.as_tensor(images), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def clutter(
    images: np.ndarray, pool: np.ndarray, count: int, rng: np.random.Generator, recipe: Clutter = CLUTTER
) -> tuple[np.ndarray, np.ndarray]:
    """`count` cluttered canvases (count, 1, canvas, canvas), values 0..1 in steps of 1/255, and the indices into
    `images` each one was drawn from (count, 1 + pieces): its digit first, then the digits its pieces were cut from.

    Every index is drawn from `pool`. A canvas holds one whole digit, at a random position (inside the canvas),
    scale and rotation, under `pieces` crops of `crop` x `crop` source pixels cut from other digits of the pool,
    each scaled and rotated the same way and placed anywhere; where they overlap the brighter pixel shows.
    """
    side, size = images.shape[-1], recipe.canvas
    if len(pool) < 2 or side * recipe.scale[1] > size:
        raise ValueError(f"clutter: needs two digits in the pool and digits that fit a {size}x{size} canvas")
    digits = rng.integers(len(pool), size=count)
    others = (digits[:, None] + rng.integers(1, len(pool), size=(count, recipe.pieces))) % len(pool)  # never itself
    sources = pool[np.concatenate([digits[:, None], others], 1)]
    margin = side * recipe.scale[1] / 2  # the unrotated digit stays on the canvas at the largest scale
    positions = rng.uniform(margin, size - margin, (count, 2))
    canvas = _place(images[sources[:, 0]], np.full((count, 2), side / 2), positions, recipe, rng)
    corners = rng.integers(0, side - recipe.crop + 1, (count, recipe.pieces, 2))  # (x, y) of each crop
    ys, xs = np.arange(side)[None, :, None], np.arange(side)[None, None, :]
    for piece in range(recipe.pieces):
        x0, y0 = corners[:, piece, 0, None, None], corners[:, piece, 1, None, None]
        inside = (ys >= y0) & (ys < y0 + recipe.crop) & (xs >= x0) & (xs < x0 + recipe.crop)
        cut = images[sources[:, 1 + piece]] * inside[:, None]
        placed = _place(cut, corners[:, piece] + recipe.crop / 2, rng.uniform(0, size, (count, 2)), recipe, rng)
        canvas = torch.maximum(canvas, placed)
    return (np.round(canvas.clamp(0, 1).numpy() * 255) / 255).astype(np.float32), sources


def cluttered_digits(
    sizes: tuple[int, int] = CLUTTERED_SIZES, recipe: Clutter = CLUTTER, seed: int = CLUTTERED_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cluttered digits (Mnih et al. 2014's cluttered MNIST, made of scikit-learn's digits): train images, labels and
    source indices (into scikit-learn's digits, as `clutter` gives them), then the same for test. Training canvases
    are drawn only from the training digits of the fixed digits split, test canvases only from its test digits, each
    split from its own random stream (the test set does not change with the number of training canvases)."""
    images, labels = _source_digits()
    out: list[np.ndarray] = []
    for pool, count, stream in zip(_digits_split(), sizes, np.random.SeedSequence(seed).spawn(2)):
        canvases, sources = clutter(images, pool, count, np.random.default_rng(stream), recipe)
        out += [canvases, labels[sources[:, 0]], sources]
    return tuple(out)  # type: ignore[return-value]


CIFAR10_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _cifar10_layout(root: Path) -> None:
    """The python batches are all there (their content is read by the training)."""
    for name in CIFAR10_BATCHES:
        if not (root / name).is_file():
            raise UserError(f"cifar10:{root}: {name} is missing (expected data_batch_1..5 and test_batch)")


def _cifar10(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    _cifar10_layout(root)

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = root / name
        try:
            with path.open("rb") as f:
                entry = pickle.load(f, encoding="bytes")
            images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            return images.astype(np.float32) / 255.0, np.asarray(entry[b"labels"])
        except Exception as err:  # a truncated or foreign pickle raises many types
            raise UserError(f"cifar10:{root}: {name} is not a CIFAR-10 python batch ({err})") from None

    train = [batch(name) for name in CIFAR10_BATCHES[:-1]]
    test_x, test_y = batch(CIFAR10_BATCHES[-1])
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def _folder_layout(root: Path) -> list[str]:
    """The class names of a `folder:` data set whose train/ and test/ folders both hold images."""
    splits = [root / "train", root / "test"]
    for split in splits:
        if not split.is_dir():
            raise UserError(f"folder:{root}: expected {split.name}/<class>/<images>, no {split} folder")
    classes = sorted(p.name for p in splits[0].iterdir() if p.is_dir())
    if len(classes) < 2:
        raise UserError(f"folder:{root}: train/ needs at least two class folders, found {len(classes)}")
    for split in splits:
        if not any(_images(split / name) for name in classes):
            raise UserError(f"folder:{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {split}/<class>/")
    return classes


def _folder(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    from PIL import Image

    classes = _folder_layout(root)
    arrays = []
    for split in (root / "train", root / "test"):
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in _images(split / name):
                with Image.open(path) as image:
                    images.append(np.asarray(image.convert("RGB").resize((32, 32)), np.float32) / 255.0)
                labels.append(label)
        arrays += [np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels)]
    return (*arrays, len(classes))  # type: ignore[return-value]


def _fit(images: np.ndarray, size: int, channels: int) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1) if channels != 1 else x.mean(1, keepdim=True)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()


def data_folder(location: str) -> Path:
    """The folder a data spec's DIR names, `~` expanded (by os.path, which leaves an unknown user's `~x` as it is
    where pathlib raises); the server checks the same path against its allowed folders."""
    return Path(os.path.expanduser(location))


def require_folder(folder: Path, spec: str) -> None:
    """A folder that a data spec names must exist (checked at submission too, without reading it)."""
    try:
        found = folder.is_dir()
    except ValueError:  # a NUL byte in the name
        found = False
    if not found:
        raise UserError(f"{spec!r}: no such folder {folder}")


def check_data_spec(spec: str) -> tuple[str, Path]:
    """The kind and folder that `spec` names, its files there, checked without reading any data."""
    kind, _, location = spec.partition(":")
    if spec in ("digits", "cluttered"):  # embedded: nothing after the name, not even a colon
        return kind, Path()
    if kind in ("cifar10", "folder") and location:
        root = data_folder(location)
        require_folder(root, spec)
        if kind == "cifar10":
            _cifar10_layout(root)
        else:
            _folder_layout(root)
        return kind, root
    raise UserError(f"--data {spec!r}: expected digits, cluttered, cifar10:DIR or folder:DIR")


def load_data(spec: str, input_size: int, in_channels: int) -> ImageData:
    """Data named by `spec` at the network's input size and channel count."""
    kind, root = check_data_spec(spec)
    if kind == "digits":
        train_x, train_y, test_x, test_y = _digits()
        classes = 10
    elif kind == "cluttered":
        train_x, train_y, _, test_x, test_y, _ = cluttered_digits()
        classes = 10
    elif kind == "cifar10":
        train_x, train_y, test_x, test_y = _cifar10(root)
        classes = 10
    else:
        train_x, train_y, test_x, test_y, classes = _folder(root)
    return image_data(spec, (train_x, train_y, test_x, test_y), classes, input_size, in_channels)


def image_data(name: str, arrays: tuple[np.ndarray, ...], classes: int, input_size: int, in_channels: int) -> ImageData:
    """Train and test images and labels resized to the input size and channels, normalised by the train split."""
    train_x, train_y, test_x, test_y = arrays
    train, test = _fit(train_x, input_size, in_channels), _fit(test_x, input_size, in_channels)
    mean, std = train.mean((0, 2, 3), keepdim=True), train.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
    return ImageData(
        name=name,
        train_x=(train - mean) / std,
        train_y=torch.as_tensor(train_y, dtype=torch.long),
        test_x=(test - mean) / std,
        test_y=torch.as_tensor(test_y, dtype=torch.long),
        classes=classes,
    )


def _calibration_images(spec: str, input_size: int, in_channels: int) -> np.ndarray:
    return load_data(spec, input_size, in_channels).train_x.numpy()


datasets.provide(datasets.ImageSource(check=check_data_spec, load=_calibration_images))  # for int8 calibration
