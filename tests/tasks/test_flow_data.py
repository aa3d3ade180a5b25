"""Optical-flow data: .flo files, the synthetic photo pairs (oracle: warping frame 2 back gives frame 1), folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ehdnas.core.errors import UserError
from ehdnas.tasks import flow_data
from ehdnas.tasks.flow_data import check_flow_data_spec, epe, load_flow_data, read_flo, synthetic_pairs, warp, write_flo


def coordinate_photo(height: int, width: int) -> torch.Tensor:
    """A (3, H, W) "photo" whose channels are its own (x, y) pixel coordinates and a constant: bilinear is exact."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return torch.stack((xs, ys, torch.ones_like(xs)))


def shifted(flow: torch.Tensor, u: float, v: float) -> torch.Tensor:
    return flow + torch.tensor([u, v]).view(1, 2, 1, 1)


def test_flo_round_trip_is_exact(tmp_path: Path) -> None:
    flow = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0)) * 30
    write_flo(tmp_path / "a.flo", flow)
    data = (tmp_path / "a.flo").read_bytes()
    assert data[:4] == b"PIEH" and np.frombuffer(data, "<i4", 2, 4).tolist() == [7, 5]  # width, then height
    assert torch.equal(read_flo(tmp_path / "a.flo"), flow)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"XXXX" + data[4:], "magic"),
        (lambda data: data[:-4], "truncated"),
        (lambda data: data + b"\0" * 8, "truncated"),
        (lambda data: data[:6], "header"),
        (lambda data: data[:4] + np.array([-3, 5], "<i4").tobytes() + data[12:], "size"),
    ],
)
def test_bad_flo_is_a_one_line_user_error(tmp_path: Path, damage, message: str) -> None:
    write_flo(tmp_path / "a.flo", torch.zeros(2, 3, 4))
    (tmp_path / "a.flo").write_bytes(damage((tmp_path / "a.flo").read_bytes()))
    with pytest.raises(UserError, match=message) as caught:
        read_flo(tmp_path / "a.flo")
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="cannot read"):
        read_flo(tmp_path / "missing.flo")


def test_warp_and_epe_on_known_fields() -> None:
    image = coordinate_photo(6, 8)[None]
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0], flow[:, 1] = 2.0, 1.0
    warped = warp(image, flow)  # out(p) = image(p + (2, 1))
    assert torch.allclose(warped[0, :, :5, :6], image[0, :, 1:, 2:])
    assert float(warped[0, :, 5:].abs().max()) == float(warped[0, :, :, 6:].abs().max()) == 0.0  # outside: zeros
    gt = torch.zeros(2, 2, 4, 4)
    assert float(epe(shifted(gt, 3.0, 4.0), gt)) == pytest.approx(5.0)
    valid = torch.zeros(2, 4, 4, dtype=torch.bool)
    valid[0, 0, 0] = True
    pred = gt.clone()
    pred[0, :, 0, 0] = torch.tensor([6.0, 8.0])
    assert float(epe(pred, gt, valid)) == pytest.approx(10.0)
    assert float(epe(pred, gt)) == pytest.approx(10.0 / 32)
    with pytest.raises(ValueError):
        epe(pred, gt, torch.zeros_like(valid))


def test_synthetic_flow_is_exact_on_a_coordinate_photo() -> None:
    """Oracle: on a photo that bilinear interpolation reproduces, warping frame 2 back by the flow gives frame 1."""
    photo = coordinate_photo(120, 200)
    frame1, frame2, flow, valid = synthetic_pairs(photo, (40, 160), 12, 32, 48, torch.Generator().manual_seed(1))
    assert frame1.shape == frame2.shape == (12, 3, 32, 48) and flow.shape == (12, 2, 32, 48)
    assert 0.6 < float(valid.float().mean()) < 1.0  # some pixels leave the frame or are hidden by the patch
    error = (warp(frame2, flow) - frame1)[:, :2].abs().amax(1)[valid]  # pixels of the photo
    # Not zero: frame 2 holds the curved background motion only at pixel centres, bilinear between them.
    assert float(error.mean()) < 2e-3 and float(error.max()) < 2e-2
    assert float(flow.norm(dim=1).mean()) > 0.5
    assert float(frame1[:, 0].min()) >= 40 and float(frame2[:, 0].max()) <= 159  # read only from the band


def test_real_photo_pairs_satisfy_brightness_constancy() -> None:
    data = load_flow_data("photos", 32, 48, train=8, val=2, test=2)
    assert data.train.images.shape == (8, 2, 3, 32, 48) and data.train.valid.dtype == torch.bool

    def error(flow: torch.Tensor) -> float:
        frames = data.train.images
        return float((warp(frames[:, 1], flow) - frames[:, 0]).abs().mean(1)[data.train.valid].mean())

    truth = error(data.train.flow)  # bilinear resampling of a real photo, in normalised units
    assert truth < 0.5 * error(torch.zeros_like(data.train.flow))
    assert truth < error(shifted(data.train.flow, 0.5, 0.0)) and truth < error(shifted(data.train.flow, 0.0, -0.5))


def test_photos_are_seeded() -> None:
    def make(seed: int) -> flow_data.FlowData:
        return load_flow_data("photos", 24, 32, train=4, val=2, test=2, seed=seed, noise_std=0.01)

    first, again, other = make(0), make(0), make(1)
    for name in ("train", "val", "test"):
        a, b, c = (getattr(d, name) for d in (first, again, other))
        assert torch.equal(a.images, b.images) and torch.equal(a.flow, b.flow) and torch.equal(a.valid, b.valid)
        assert not torch.equal(a.flow, c.flow)
    fresh, fresh_again = first.train_split(1), again.train_split(1)  # every epoch after the first: new pairs, seeded
    assert first.train_split(0) is first.train and torch.equal(fresh.flow, fresh_again.flow)
    assert len(fresh) == len(first.train) and not torch.equal(fresh.flow, first.train.flow)
    assert not torch.equal(fresh.flow, first.train_split(2).flow)


def test_photo_splits_share_no_source_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_data, "_photos", lambda height, width: [coordinate_photo(427, 640)] * 2)
    data = load_flow_data("photos", 32, 48, train=6, val=4, test=4)
    assert (len(data.train), len(data.val), len(data.test)) == (6, 4, 4)
    columns = [split.images[:, :, 0] for split in (data.train, data.val, data.test)]  # normalised x: order kept
    assert float(columns[0].max()) < float(columns[1].min())
    assert float(columns[1].max()) < float(columns[2].min())
    fresh = data.train_split(3).images[:, :, 0]  # an epoch's new training pairs come from the training band too
    assert float(fresh.max()) < float(columns[1].min())


def write_image(path: Path, value: np.ndarray) -> None:
    Image.fromarray(value.astype(np.uint8)).save(path)


def test_chairs_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        flow = torch.zeros(2, 24, 32)
        flow[0], flow[1] = float(i), -1.0
        if i == 1:
            flow[:, 5, 6] = 1e10  # Middlebury's "unknown"
        write_flo(tmp_path / f"{i:05d}_flow.flo", flow)
        for frame in (1, 2):
            write_image(tmp_path / f"{i:05d}_img{frame}.ppm", rng.integers(0, 256, (24, 32, 3)))
    full = load_flow_data(f"chairs:{tmp_path}", 24, 32)
    assert (len(full.train), len(full.val), len(full.test)) == (2, 1, 1)
    assert full.train.flow[:, 0, 0, 0].tolist() == [1.0, 2.0] and float(full.test.flow[0, 0, 0, 0]) == 4.0
    assert torch.nonzero(~full.train.valid).tolist() == [[0, 5, 6]]
    half = load_flow_data(f"chairs:{tmp_path}", 12, 12)  # 24x32 -> 12x16 (vectors halved), centre crop 12x12
    assert half.train.images.shape == (2, 2, 3, 12, 12)
    assert torch.allclose(half.test.flow[0, 0], torch.full((12, 12), 2.0))
    assert torch.allclose(half.test.flow[0, 1], torch.full((12, 12), -0.5))
    assert not bool(half.train.valid[0, 2, 1]) and float(half.train.valid.float().mean()) > 0.9
    assert len(load_flow_data(f"chairs:{tmp_path}", 12, 16, train=1).train) == 1


def test_sintel_folder_pairs_consecutive_frames_and_splits_by_scene(tmp_path: Path) -> None:
    for scene in range(3):
        for frame in range(1, 4):
            folder = tmp_path / "training" / "clean" / f"scene_{scene}"
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / f"frame_{frame:04d}.png", np.full((16, 20, 3), 40 * frame + scene))
            if frame < 3:  # the flow from each frame to the next
                flow = torch.zeros(2, 16, 20)
                flow[0], flow[1] = 10.0 * scene + frame, -1.0
                (tmp_path / "training" / "flow" / f"scene_{scene}").mkdir(parents=True, exist_ok=True)
                write_flo(tmp_path / "training" / "flow" / f"scene_{scene}" / f"frame_{frame:04d}.flo", flow)
    data = load_flow_data(f"sintel:{tmp_path}", 8, 10)  # every vector halved
    assert [split.flow[:, 0, 0, 0].tolist() for split in (data.train, data.val, data.test)] == [
        [0.5, 1.0],
        [5.5, 6.0],
        [10.5, 11.0],
    ]
    assert torch.allclose(data.val.flow[:, 1], torch.full((2, 8, 10), -0.5))
    assert bool((data.train.images[:, 1] > data.train.images[:, 0]).all())  # frame k, then frame k + 1
    (tmp_path / "training" / "clean" / "scene_2" / "frame_0003.png").unlink()
    with pytest.raises(UserError, match="frame_0003.png is missing"):
        load_flow_data(f"sintel:{tmp_path}", 8, 10)


@pytest.mark.parametrize("spec", ["", "digits", "photos:x", "chairs", "chairs:", "sintel:/no/such/folder", "flo:x"])
def test_bad_specs_are_user_errors(spec: str) -> None:
    with pytest.raises(UserError, match="photos|no such folder"):
        check_flow_data_spec(spec)


def test_good_specs(tmp_path: Path) -> None:
    assert check_flow_data_spec("photos") == ("photos", Path())
    with pytest.raises(UserError, match="training"):
        check_flow_data_spec(f"sintel:{tmp_path}")  # a folder, but not Sintel's layout
    with pytest.raises(UserError, match="no NNNNN_flow.flo"):  # a folder with no data: refused by the check
        check_flow_data_spec(f"chairs:{tmp_path}")
    with pytest.raises(UserError, match="at least 1"):
        load_flow_data("photos", 8, 8, val=0)
