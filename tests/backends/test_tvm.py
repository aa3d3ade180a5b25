"""Target `tvm-llvm`: real TVM builds, checked against ONNX Runtime, cached, tuned, and used end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from backends import TimingProtocol, get_target, load_model
from ehdnas.core.errors import UserError
from tests.conftest import FAST_WALL, LIGHT_MODELS, run_cli, tiny_conv_model

QUICK = TimingProtocol(warmup=1, min_repeats=5, min_time_s=0.0)
UNTUNED = ["mode=untuned"]  # a build in seconds: what every test that is not about the schedules uses


def random_conv_net(path: Path, op: str = "Relu") -> Path:
    """Conv, batch norm, `op`, max pool, depthwise conv, global pool and a dense layer, random weights."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)

    initializers = [
        weight("w1", 8, 3, 3, 3),
        weight("scale", 8),
        weight("bias", 8),
        weight("mean", 8),
        numpy_helper.from_array(rng.uniform(0.5, 2.0, 8).astype(np.float32), "var"),
        weight("w2", 8, 1, 3, 3),
        weight("fc", 8, 5),
        weight("fc_b", 5),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["bn"]),
        helper.make_node(op, ["bn"], ["a"]),
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fc_b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "random_conv_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_tvm_agrees_with_onnx_runtime(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = load_model(random_conv_net(tmp_path / "net.onnx"))
    feeds = model.fixed_inputs()
    expected = ort.InferenceSession(str(model.path)).run(None, feeds)[0]
    got = get_target("tvm-llvm", UNTUNED).compile(model).run(feeds)
    assert len(got) == 1 and got[0].shape == (1, 5)
    assert np.abs(expected).max() > 0.1  # a signal worth comparing, not a constant
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-4)


def test_each_mode_keys_only_the_settings_it_uses() -> None:
    untuned, sampled = get_target("tvm-llvm", UNTUNED), get_target("tvm-llvm", ["mode=sampled", "seed=3"])
    tuned = get_target("tvm-llvm", ["trials=8"])  # tuned is the default
    assert untuned.config_dict() == {"mode": "untuned", "threads": 1, "mcpu": "host"}
    assert sampled.config_dict() == {"mode": "sampled", "seed": 3, "threads": 1, "mcpu": "host"}
    assert tuned.config_dict() == {"mode": "tuned", "trials": 8, "threads": 1, "mcpu": "host"}
    with pytest.raises(UserError, match="'mode' must be one of tuned, sampled, untuned"):
        get_target("tvm-llvm", ["mode=fast"])
    with pytest.raises(UserError, match="'trials' must be at least 1"):
        get_target("tvm-llvm", ["trials=0"])
    with pytest.raises(UserError, match="does not know the CPU 'pentium9000'"):
        get_target("tvm-llvm", ["mcpu=pentium9000"]).target()


def test_measuring_again_reuses_the_build(tmp_path: Path) -> None:
    model = tiny_conv_model(tmp_path / "unique.onnx", opset=11)  # a file no other test builds
    first = get_target("tvm-llvm", UNTUNED).measure(model, QUICK)
    assert first.details["from_cache"] is False and first.details["compile_s"] > 0
    again = get_target("tvm-llvm", UNTUNED).measure(model, QUICK)  # a new runner: only the disk cache is shared
    assert again.details["from_cache"] is True and again.details["compile_s"] == first.details["compile_s"]
    assert again.latency_ms.n >= 5


def test_unsupported_operator_is_named(tmp_path: Path) -> None:
    path = random_conv_net(tmp_path / "celu.onnx", op="Celu")
    proc = run_cli("benchmark", "-t", "tvm-llvm", "--model", str(path), *FAST_WALL, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "TVM's ONNX frontend does not support the operator(s) Celu" in proc.stderr


def test_benchmark_a_third_party_opset9_classifier_json_says_untuned_is_unscheduled() -> None:
    path = LIGHT_MODELS / "light_squeezenet.onnx"
    args = ["benchmark", "-t", "tvm-llvm", "-o", "mode=untuned", "--model", str(path), *FAST_WALL]
    doc = json.loads(run_cli(*args, "--json").stdout)
    assert doc["target"] == "tvm-llvm" and doc["target_config"]["mode"] == "untuned"
    assert doc["host"]["libraries"]["apache-tvm"]
    (result,) = doc["results"]
    assert result["model"] == "light_squeezenet.onnx" and result["latency_ms"]["median"] > 0
    assert result["details"]["compile_s"] > 0 and result["details"]["mcpu"]
    assert result["details"]["note"] == "untuned: TVM's default CPU pipeline, no schedule; not representative of TVM"
    table = run_cli(*args).stdout  # the cached build, shown as a table
    assert "no schedule; not representative of TVM" in " ".join(table.split())
