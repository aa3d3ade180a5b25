"""Image data sets by spec, as a lower layer sees them: a runner that calibrates on images asks here, and the image
task (`ehdnas.tasks.images`) registers how to check and load a spec, so runners never import the task layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ehdnas.core.errors import UserError


class _Check(Protocol):
    def __call__(self, spec: str) -> Any: ...


class _Load(Protocol):
    def __call__(self, spec: str, input_size: int, in_channels: int) -> Any: ...  # (N, C, H, W) float32 array


@dataclass(frozen=True)
class ImageSource:
    check: _Check  # raises UserError for a spec that cannot load
    load: _Load  # the training images of the spec, resized to input_size, as an array


_SOURCE: list[ImageSource] = []  # at most one: the image task's


def provide(source: ImageSource) -> None:
    """Called by the image task when it is imported."""
    _SOURCE[:] = [source]


def image_source() -> ImageSource:
    """The registered image source; the CLI, the server and the pipeline import the image task, which registers it."""
    if not _SOURCE:
        raise UserError("images by data spec need ehdnas's image task: import ehdnas.tasks.images first")
    return _SOURCE[0]
