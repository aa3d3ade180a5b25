"""Image classification data for search and retraining, with no download.

- `digits` (the embedded default): scikit-learn's 1,797 handwritten digits,
  8x8 grayscale images that ship inside the scikit-learn package;
- `cifar10:DIR`: CIFAR-10 in its standard python-batch format in DIR;
- `folder:DIR`: an image-folder layout, DIR/train/<class>/* and DIR/test/<class>/*.

Images are resized to the space's input size and given its channel count, and
normalised per channel with the training split's statistics.
"""

from __future__ import annotations

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


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None] / 16.0  # (1797, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(images))  # the fixed split: 80% train, 20% test
    cut = int(0.8 * len(images))
    return images[order[:cut]], digits.target[order[:cut]], images[order[cut:]], digits.target[order[cut:]]


def _cifar10(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = root / name
        if not path.is_file():
            raise UserError(f"cifar10:{root}: {name} is missing (expected data_batch_1..5 and test_batch)")
        try:
            with path.open("rb") as f:
                entry = pickle.load(f, encoding="bytes")
            images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            return images.astype(np.float32) / 255.0, np.asarray(entry[b"labels"])
        except Exception as err:  # a truncated or foreign pickle raises many types
            raise UserError(f"cifar10:{root}: {name} is not a CIFAR-10 python batch ({err})") from None

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = batch("test_batch")
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y


def _folder(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    from PIL import Image

    splits = [root / "train", root / "test"]
    for split in splits:
        if not split.is_dir():
            raise UserError(f"folder:{root}: expected {split.name}/<class>/<images>, no {split} folder")
    classes = sorted(p.name for p in splits[0].iterdir() if p.is_dir())
    if len(classes) < 2:
        raise UserError(f"folder:{root}: train/ needs at least two class folders, found {len(classes)}")
    arrays = []
    for split in splits:
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in sorted((split / name).glob("*")) if (split / name).is_dir() else []:
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    with Image.open(path) as image:
                        images.append(np.asarray(image.convert("RGB").resize((32, 32)), np.float32) / 255.0)
                    labels.append(label)
        if not images:
            raise UserError(f"folder:{root}: no images in {split}/<class>/")
        arrays += [np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels)]
    return (*arrays, len(classes))  # type: ignore[return-value]


def _fit(images: np.ndarray, size: int, channels: int) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1) if channels != 1 else x.mean(1, keepdim=True)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()


def require_folder(folder: Path, spec: str) -> None:
    """A folder that a data spec names must exist (checked at submission too, without reading it)."""
    try:
        found = folder.is_dir()
    except ValueError:  # a NUL byte in the name
        found = False
    if not found:
        raise UserError(f"{spec!r}: no such folder {folder}")


def check_data_spec(spec: str) -> tuple[str, Path]:
    """The kind and folder that `spec` names, checked without reading any data."""
    kind, _, location = spec.partition(":")
    if kind == "digits" and not location:
        return kind, Path()
    if kind in ("cifar10", "folder") and location:
        root = Path(location).expanduser()
        require_folder(root, spec)
        return kind, root
    raise UserError(f"--data {spec!r}: expected digits, cifar10:DIR or folder:DIR")


def load_data(spec: str, input_size: int, in_channels: int) -> ImageData:
    """Data named by `spec` at the network's input size and channel count."""
    kind, root = check_data_spec(spec)
    if kind == "digits":
        train_x, train_y, test_x, test_y = _digits()
        classes = 10
    elif kind == "cifar10":
        train_x, train_y, test_x, test_y = _cifar10(root)
        classes = 10
    else:
        train_x, train_y, test_x, test_y, classes = _folder(root)
    train, test = _fit(train_x, input_size, in_channels), _fit(test_x, input_size, in_channels)
    mean, std = train.mean((0, 2, 3), keepdim=True), train.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
    return ImageData(
        name=spec,
        train_x=(train - mean) / std,
        train_y=torch.as_tensor(train_y, dtype=torch.long),
        test_x=(test - mean) / std,
        test_y=torch.as_tensor(test_y, dtype=torch.long),
        classes=classes,
    )


def _calibration_images(spec: str, input_size: int, in_channels: int) -> np.ndarray:
    return load_data(spec, input_size, in_channels).train_x.numpy()


datasets.provide(datasets.ImageSource(check=check_data_spec, load=_calibration_images))  # for int8 calibration
