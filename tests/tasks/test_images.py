"""The embedded image data: the cluttered digits are fixed, balanced, split by source digit, and drawn as specified."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ehdnas.core.errors import UserError
from ehdnas.tasks import images
from ehdnas.tasks.images import Clutter, check_data_spec, clutter, cluttered_digits, load_data


def test_the_cluttered_digits_are_the_same_on_every_load() -> None:
    first, second = load_data("cluttered", 16, 3), load_data("cluttered", 16, 3)
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    for a, b in zip(cluttered_digits(), cluttered_digits()):
        np.testing.assert_array_equal(a, b)


def test_the_cluttered_digits_have_their_sizes_and_every_class_in_both_splits() -> None:
    train, test = images.CLUTTERED_SIZES
    side = images.CLUTTER.canvas
    train_x, train_y, _, test_x, test_y, _ = cluttered_digits()
    assert train_x.shape == (train, 1, side, side) and test_x.shape == (test, 1, side, side)
    assert train_x.dtype == np.float32 and 0 <= train_x.min() and train_x.max() <= 1
    data = load_data("cluttered", input_size=16, in_channels=3)
    assert data.train_x.shape == (train, 3, 16, 16) and data.test_x.shape == (test, 3, 16, 16)
    assert data.classes == 10 and data.name == "cluttered"
    for labels in (data.train_y, data.test_y):
        assert labels.dtype == torch.long and set(labels.tolist()) == set(range(10))
        assert np.bincount(labels.numpy()).min() > len(labels) / 20  # no class far below its tenth
    assert abs(float(data.train_x.mean())) < 1e-4 and abs(float(data.train_x.std()) - 1) < 1e-3


def test_train_and_test_canvases_are_drawn_from_disjoint_source_digits() -> None:
    from sklearn.datasets import load_digits

    _, train_y, train_sources, _, test_y, test_sources = cluttered_digits()
    train_pool, test_pool = images._digits_split()
    assert set(train_sources.ravel()) <= set(train_pool) and set(test_sources.ravel()) <= set(test_pool)
    assert not set(train_sources.ravel()) & set(test_sources.ravel())
    target = load_digits().target
    assert (train_y == target[train_sources[:, 0]]).all() and (test_y == target[test_sources[:, 0]]).all()
    for sources in (train_sources, test_sources):  # clutter is always cut from other digits than the canvas's own
        assert sources.shape[1] == 1 + images.CLUTTER.pieces and (sources[:, 1:] != sources[:, :1]).all()


def test_a_digit_at_scale_one_unrotated_on_a_canvas_of_its_size_is_the_digit_itself() -> None:
    source, _ = images._source_digits()
    recipe = Clutter(canvas=8, pieces=0, crop=4, scale=(1.0, 1.0), rotation=0.0)
    canvases, sources = clutter(source, np.arange(20), 20, np.random.default_rng(1), recipe)
    np.testing.assert_allclose(canvases, source[sources[:, 0]], atol=0.5 / 255)


def test_a_digit_drawn_twice_as_large_keeps_its_ink_four_times_over() -> None:
    source, _ = images._source_digits()
    recipe = Clutter(canvas=24, pieces=0, crop=4, scale=(2.0, 2.0), rotation=30.0)
    canvases, sources = clutter(source, np.arange(50), 50, np.random.default_rng(2), recipe)
    ink = source[sources[:, 0]].sum((1, 2, 3))
    np.testing.assert_allclose(canvases.sum((1, 2, 3)), 4 * ink, rtol=0.05)


def test_a_clutter_piece_is_a_crop_of_crop_by_crop_source_pixels() -> None:
    blank_and_ink = np.stack([np.zeros((1, 8, 8)), np.ones((1, 8, 8))]).astype(np.float32)
    recipe = Clutter(canvas=24, pieces=1, crop=3, scale=(1.0, 1.0), rotation=0.0)
    canvases, sources = clutter(blank_and_ink, np.arange(2), 200, np.random.default_rng(3), recipe)
    blank = sources[:, 0] == 0  # a blank digit under one piece of the all-ink one: the piece alone
    assert blank.sum() > 50 and (sources[blank, 1] == 1).all()
    ink = canvases[blank].sum((1, 2, 3))
    assert ink.max() <= 9 + 0.05 and np.median(ink) == pytest.approx(9, abs=0.05)  # 3x3 pixels, unless cut off


@pytest.mark.parametrize("spec", ["cluttered:x", "cluttered:", "clutter", "mnist"])
def test_a_bad_data_spec_is_a_one_line_user_error_naming_cluttered(spec: str) -> None:
    with pytest.raises(UserError) as caught:
        check_data_spec(spec)
    message = str(caught.value)
    assert "\n" not in message and repr(spec) in message
    assert "expected digits, cluttered, cifar10:DIR or folder:DIR" in message
    with pytest.raises(UserError):
        load_data(spec, 16, 3)


def test_a_folder_under_an_unknown_users_home_is_a_missing_folder_not_a_crash() -> None:
    """pathlib's expanduser raises for `~nosuchuser`; a data spec naming it is a user error (CLI and server)."""
    with pytest.raises(UserError, match="no such folder ~nosuchuser-ehdnas/x"):
        check_data_spec("folder:~nosuchuser-ehdnas/x")
