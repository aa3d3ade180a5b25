"""Contract tests over every registered target, then ort-cpu, model loading and the timing protocol."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backends import TimingProtocol, get_target, list_targets, load_model, parse_input_shapes
from backends.base import TARGETS
from backends.protocol import LatencyStats, time_runs
from ehdnas.core.errors import UserError
from ehdnas.pipeline.export import export_model
from tests.conftest import LIGHT_MODELS, ROOT, tiny_conv_model

QUICK = TimingProtocol(warmup=1, min_repeats=5, min_time_s=0.0)
NAMED = {"external": ["device=lab-board"]}  # targets of named instances: one of them
# The contract, not a target's schedules: tvm-llvm's default tunes (30 min for this model on a loaded host).
QUICK_SETTINGS = {"tvm-llvm": ["mode=untuned"]}


@pytest.mark.parametrize("name", TARGETS.names())
def test_every_target_measures_a_tiny_model_or_says_why_not(name: str, tmp_path: Path) -> None:
    # Exported from torch, with the module attached, as ehdnas's own networks are: LiteRT converts from it.
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
    tiny_model = export_model(module, (1, 3, 8, 8), tmp_path / "tiny.onnx")
    runner = get_target(name, NAMED.get(name, []) + QUICK_SETTINGS.get(name, []))
    if not runner.measures:  # a device measured elsewhere: its latencies are imported, never measured here
        with pytest.raises(UserError, match="cannot measure"):
            runner.measure(tiny_model, QUICK)
        return
    status = runner.availability()
    if not status.available:
        assert status.reason, "an unavailable target must say why"
        with pytest.raises(UserError, match="not available here"):
            runner.measure(tiny_model, QUICK)
        return
    m = runner.measure(tiny_model, QUICK)
    assert m.target == name and m.target_config == runner.config_dict()
    if runner.simulated:  # exact: one sample, and the host does not matter
        assert m.latency_ms.n == 1 and m.latency_ms.std == 0 and m.details["deterministic"]
        assert "cores" not in m.host
    else:
        assert m.latency_ms.n >= 5 and m.host["cores"] >= 1
    assert len(m.kept_samples()) == m.latency_ms.n and all(s > 0 for s in m.samples_ms)
    assert m.latency_ms.p10 <= m.latency_ms.median <= m.latency_ms.p90
    assert m.host["libraries"] and m.wall_s > 0
    assert m.model["inputs"] == [{"name": "input", "shape": [1, 3, 8, 8], "dtype": "float32"}]
    assert type(m).from_dict(m.to_dict()) == m


def test_list_targets_reports_availability() -> None:
    rows = {row["name"]: row for row in list_targets()}
    assert rows["ort-cpu"]["available"] is True and rows["ort-cpu"]["reason"] == ""
    # What a bare --target measures with, each setting a valid -o value: given back, it changes nothing.
    tvm_settings = {"mode": "tuned", "trials": 256, "seed": 0, "threads": 1, "mcpu": "host", "mtriple": "host"}
    assert rows["tvm-llvm"]["settings"] == tvm_settings
    for name, row in rows.items():
        options = [f"{key}={value}" for key, value in row["settings"].items() if value != ""] + NAMED.get(name, [])
        assert get_target(name, options).config == get_target(name, NAMED.get(name, [])).config, name


# The modules of the extras tvm, tflite and sim: a core-only install has none of them.
EXTRA_MODULES = ("tvm", "ai_edge_litert", "tflite_runtime", "ai_edge_quantizer", "litert_torch", "scalesim")
SERVER_MODULES = ("fastapi", "uvicorn", "pydantic_settings", "httpx")


def _check_rows_without_extras(rows: dict[str, dict]) -> None:
    assert rows["ort-cpu"]["available"] is True
    assert rows["tvm-llvm"]["available"] is False and "pip install 'ehdnas[tvm]'" in rows["tvm-llvm"]["reason"]
    for name in ("tflite-cpu", "edgetpu"):
        assert rows[name]["available"] is False and "pip install 'ehdnas[tflite]'" in rows[name]["reason"]
    systolic = [name for name in rows if name.startswith("systolic-")]
    assert systolic and all(rows[name]["available"] for name in systolic)  # the analytical engine needs no extra


def test_a_target_without_its_extra_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in EXTRA_MODULES:
        monkeypatch.setitem(sys.modules, module, None)  # import fails, find_spec finds nothing
    _check_rows_without_extras({row["name"]: row for row in list_targets()})
    get_target("systolic-edge32")  # the analytical engine
    with pytest.raises(
        UserError, match=re.escape("engine=scalesim needs SCALE-Sim: scalesim not installed: pip install 'ehdnas[sim]'")
    ):
        get_target("systolic-edge32", ["engine=scalesim"])


def _cli_without_extras(*args: str) -> subprocess.CompletedProcess:
    """The command line in a process where no extra (runtimes, the server) can be imported, as in the core alone."""
    hidden = (*EXTRA_MODULES, *SERVER_MODULES)
    code = (
        f"import sys\nfor m in {hidden!r}: sys.modules[m] = None\n"
        f"sys.argv = ['ehdnas', *{list(args)!r}]\nfrom ehdnas.cli import main\nmain()\n"
    )
    # this checkout, first on the path: `python -c` puts the cwd there
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_targets_json_without_the_extras() -> None:
    """`ehdnas targets --json` without the extras: a list, no traceback; `serve` says what to install."""
    proc = _cli_without_extras("targets", "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    _check_rows_without_extras({row["name"]: row for row in json.loads(proc.stdout)})
    serve = _cli_without_extras("serve")
    assert (
        serve.returncode == 2
        and serve.stderr == "error: ehdnas serve needs the server extra: pip install 'ehdnas[server]'\n"
    ), serve.stderr


def test_unknown_target_and_option_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown target 'gpu-magic'; known: .*ort-cpu"):
        get_target("gpu-magic")
    with pytest.raises(UserError, match="unknown target 'ort-cpu' option 'thread'"):
        get_target("ort-cpu", ["thread=2"])
    with pytest.raises(UserError, match="'threads' must be at least 1"):
        get_target("ort-cpu", ["threads=0"])
    with pytest.raises(UserError, match="is not KEY=VALUE"):
        get_target("ort-cpu", ["threads"])


def test_threads_are_part_of_the_configuration(tiny_model: Path) -> None:
    m = get_target("ort-cpu", {"threads": 2}).measure(tiny_model, QUICK)
    assert m.target_config == {"threads": 2, "optimization": "all", "provider": "CPUExecutionProvider"}


def test_protocol_meets_both_minimums() -> None:
    calls = []
    samples = time_runs(lambda: calls.append(1), TimingProtocol(warmup=3, min_repeats=7, min_time_s=0.0))
    assert len(samples) == 7 and len(calls) == 10
    samples = time_runs(lambda: None, TimingProtocol(warmup=0, min_repeats=1, min_time_s=0.05))
    assert len(samples) > 100  # a no-op call repeated for 50 ms
    assert len(time_runs(lambda: None, TimingProtocol(0, 1, 10.0, max_repeats=50))) == 50


def test_statistics_come_from_the_samples() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 10.0]
    s = LatencyStats.from_samples(x)
    assert (s.median, s.n) == (3.0, 5)
    assert s.mean == pytest.approx(np.mean(x)) and s.std == pytest.approx(np.std(x, ddof=1))
    assert s.p10 == pytest.approx(np.percentile(x, 10)) and s.p90 == pytest.approx(np.percentile(x, 90))
    assert s.cv == pytest.approx(s.std / s.mean)


@pytest.mark.parametrize(("name", "giga_macs"), [("light_resnet50", 4.09), ("light_vgg19", 19.63)])
def test_macs_match_the_published_counts(name: str, giga_macs: float) -> None:
    assert load_model(LIGHT_MODELS / f"{name}.onnx").macs / 1e9 == pytest.approx(giga_macs, abs=0.01)


def test_macs_follow_the_given_input_shape(tmp_path: Path) -> None:
    path = tiny_conv_model(tmp_path / "dyn.onnx", batch="N")
    one, four = (load_model(path, {"": (b, 3, 8, 8)}).macs for b in (1, 4))
    assert one == 8 * 8 * 4 * 27 and four == 4 * one  # (H, W, out channels, C*kh*kw)


def test_fixed_inputs_are_fixed_per_model(tmp_path: Path) -> None:
    a = load_model(tiny_conv_model(tmp_path / "a.onnx"))
    np.testing.assert_array_equal(a.fixed_inputs()["x"], a.fixed_inputs()["x"])
    b = load_model(tiny_conv_model(tmp_path / "b.onnx", opset=12))
    assert not np.array_equal(a.fixed_inputs()["x"], b.fixed_inputs()["x"])


def test_dynamic_shape_needs_an_input_shape(tmp_path: Path) -> None:
    path = tiny_conv_model(tmp_path / "dyn.onnx", batch="N")
    with pytest.raises(UserError, match=r"input 'x' has a dynamic shape \['N', 3, 8, 8\]; .*--input-shape"):
        load_model(path)
    model = load_model(path, parse_input_shapes(["4,3,8,8"]))
    assert model.inputs[0].shape == (4, 3, 8, 8)
    m = get_target("ort-cpu").measure(model, QUICK)
    assert m.model["inputs"][0]["shape"] == [4, 3, 8, 8]
    assert load_model(path, parse_input_shapes(["x=2,3,8,8"])).inputs[0].shape == (2, 3, 8, 8)
    with pytest.raises(UserError, match="'y', which is not an input"):
        load_model(path, parse_input_shapes(["y=2,3,8,8"]))
    with pytest.raises(UserError, match="comma-separated integers"):
        parse_input_shapes(["1,3,a"])


def test_missing_corrupt_and_unrunnable_files(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_model(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(UserError, match="not a valid ONNX model"):
        load_model(garbage)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(tiny_model.read_bytes()[:-40])
    with pytest.raises(UserError, match="not a valid ONNX model|cannot load the model"):
        get_target("ort-cpu").measure(truncated, QUICK)
