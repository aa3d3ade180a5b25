"""1-bit convolutions and the binary variant of the DARTS space (DCP-NAS's child)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from backends import OnnxModel, TimingProtocol, get_target
from backends.systolic.layers import ConvLayer, graph_layers
from ehdnas.pipeline.export import build_seeded, export_arch, export_model
from ehdnas.spaces import get_space
from ehdnas.spaces.binary_ops import BinaryConv2d, binarize, memory_bits, reconstruction_loss
from ehdnas.supernets.darts import Supernet

SMALL = {"layers": 5, "channels": 8, "input_size": 16}


def test_sign_passes_gradients_straight_through_inside_the_unit_interval() -> None:
    x = torch.tensor([-2.0, -0.5, 0.25, 1.0, 3.0], requires_grad=True)
    y = binarize(x)
    y.backward(torch.ones_like(y))
    assert y.tolist() == [-1, -1, 1, 1, 1] and x.grad.tolist() == [0, 1, 1, 1, 0]


def test_binary_conv_is_the_scaled_xnor_of_signs_and_its_reconstruction_error() -> None:
    torch.manual_seed(0)
    conv = BinaryConv2d(4, 3, 3, padding=1, bias=False)
    x = torch.randn(2, 4, 5, 5)
    beta = conv.weight.abs().mean(dim=(1, 2, 3))
    expected = torch.nn.functional.conv2d(torch.sign(x), torch.sign(conv.weight), padding=1) * beta.view(1, 3, 1, 1)
    torch.testing.assert_close(conv(x), expected)
    residual = conv.weight - beta.view(3, 1, 1, 1) * torch.sign(conv.weight)
    torch.testing.assert_close(reconstruction_loss(conv), residual.pow(2).sum())
    reconstruction_loss(conv).backward()  # the reconstruction term trains the real weights
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert memory_bits(conv) == 4 * 3 * 9


def test_a_binary_conv_exports_exactly(tmp_path: Path) -> None:
    # Inputs kept away from 0, where float rounding could flip a sign (an untrained binary network's
    # outputs differ between float32 and float64 torch as much as from ONNX Runtime's).
    torch.manual_seed(0)
    module = torch.nn.Sequential(BinaryConv2d(4, 6, 3, padding=1, bias=False), torch.nn.BatchNorm2d(6)).eval()
    model = export_model(module, (1, 4, 6, 6), tmp_path / "conv.onnx")
    x = np.random.default_rng(0).choice([-1.5, -0.5, 0.5, 1.5], size=(1, 4, 6, 6)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ort.InferenceSession(str(model.path)).run(None, {"input": x})[0], expected, atol=1e-5)


def test_binary_space_binarizes_the_cells_and_keeps_stem_and_classifier_real() -> None:
    real, binary = get_space("darts", SMALL), get_space("darts", {**SMALL, "binary": True})
    arch = real.sample_many(1, 3)[0]
    net = build_seeded(binary, arch)
    convs = [m for m in net.cells.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, BinaryConv2d) for m in convs)
    assert not any(isinstance(m, BinaryConv2d) for m in [*net.stem.modules(), net.classifier])
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.cells.modules())  # sign is the non-linearity
    real_bits, binary_bits = memory_bits(build_seeded(real, arch)), memory_bits(net)
    assert real_bits > 6 * binary_bits and binary.config_dict()["binary"] is True
    assert float(reconstruction_loss(net)) > 0 and float(reconstruction_loss(build_seeded(real, arch))) == 0


def test_binary_networks_export_as_sign_then_conv_which_systolic_targets_cost_as_1_bit(tmp_path: Path) -> None:
    real, binary = get_space("darts", SMALL), get_space("darts", {**SMALL, "binary": True})
    arch = real.sample_many(1, 3)[0]
    model = export_arch(binary, arch, tmp_path / "binary.onnx")
    layers = [x for x in graph_layers(model.path, {"input": binary.input_shape}) if isinstance(x, ConvLayer)]
    assert not layers[0].binary and not layers[-1].binary  # the stem and the classifier
    assert all(layer.binary for layer in layers[1:-1])
    got = ort.InferenceSession(str(model.path)).run(None, model.fixed_inputs())[0]
    assert got.shape == (1, 10) and np.isfinite(got).all()
    runner = get_target("systolic-edge32")

    def gemm_totals(model: OnnxModel) -> tuple[int, int]:
        layers = [x for x in runner.measure(model, TimingProtocol()).layers if x["kind"] == "gemm"]
        return sum(x["compute_cycles"] for x in layers), sum(x["dram_read_bytes"] for x in layers)

    one_bit, full = gemm_totals(model), gemm_totals(export_arch(real, arch, tmp_path / "real.onnx"))
    # 1-bit channels packed eight to a word on edge32's binary lanes: fewer cycles and bytes, though at
    # 8 channels the array's fill and drain, not its MACs, set most of the cycles.
    assert one_bit[0] < full[0] and one_bit[1] < 0.95 * full[1]


def test_binary_supernet_trains_alpha_and_weights() -> None:
    space = get_space("darts", {"layers": 3, "channels": 4, "input_size": 8, "binary": True})
    supernet = Supernet(space, torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(supernet(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
    (loss + reconstruction_loss(supernet)).backward()
    assert supernet.alpha.grad.abs().sum() > 0
    assert all(p.grad is not None for p in supernet.weight_parameters() if p.requires_grad)
