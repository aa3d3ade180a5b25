"""Shared fixtures: a store per test, tiny ONNX models made here, the real `ehdnas` command, a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx
import psutil
import pytest
from onnx import TensorProto, helper

from server.local import LocalServer, start_server

pytest_plugins = ("tests.postgres",)  # the PostgreSQL fixtures: `postgres`, `postgres_url`, `store_url`

# Classic ImageNet classifiers at opset 9 that the onnx package ships (weights made by ConstantOfShape).
ROOT = Path(__file__).resolve().parent.parent  # this checkout
LIGHT_MODELS = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
EHDNAS = [str(Path(sys.executable).parent / "ehdnas")]  # the installed console script
# A quick protocol for tests of bookkeeping, not of timing: never flagged, even on a loaded host (spread bound 10; the
# CPU clock, which asks no CPU share). FAST_WALL for the targets that time on the wall clock alone.
FAST_WALL = ["--warmup", "1", "--repeats", "3", "--min-time", "0", "--max-spread", "10"]
FAST = [*FAST_WALL, "--clock", "cpu"]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Builds and tuning records go to one folder per test session, never the user's cache."""
    os.environ["EHDNAS_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file where a path wants a folder (or as a store that is no database); tests check it is kept."""
    path = tmp_path / "a-file"
    path.write_text("kept\n")
    return path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def tiny_conv_model(path: Path, batch: int | str = 1, opset: int = 13) -> Path:
    """Conv + Relu + global pool on a (batch, 3, 8, 8) input; `batch` may be a symbolic dim."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.1] * 108)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 1, 1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return tiny_conv_model(tmp_path / "tiny.onnx")


def run_cli(*args: str, db: str | None = None, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess, as a user would."""
    env = dict(os.environ)
    if db:
        env["EHDNAS_DB"] = db
    proc = subprocess.run([*EHDNAS, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ehdnas {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def run_main(*args: str, db: str | None = None) -> subprocess.CompletedProcess:
    """The console entry point called in this process, its output captured: what `run_cli` checks, without the
    4 s a new process spends importing torch (for many cases of one refusal; some tests still run processes)."""
    import contextlib
    import io
    from unittest import mock

    from ehdnas.cli import main

    stdout, stderr, env = io.StringIO(), io.StringIO(), {"EHDNAS_DB": db} if db else {}
    with mock.patch.object(sys, "argv", ["ehdnas", *args]), mock.patch.dict(os.environ, env):
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit:
            main()
    code = exit.value.code if isinstance(exit.value.code, int) else 0
    return subprocess.CompletedProcess(["ehdnas", *args], code, stdout.getvalue(), stderr.getvalue())


SEARCH_SPACE = ["--space-option", "layers=3", "--space-option", "channels=4", "--space-option", "input_size=8"]


def search_end_to_end(target: str, out: Path, db: str, *extra: str) -> dict:
    """The smallest search on `target`: 50 networks collected for its predictor (`--auto-predictor`, unless `extra`
    names a --predictor), 1 epoch; its result document."""
    args = ["search", "-t", target, "--out", str(out), *SEARCH_SPACE]
    args += [] if "--predictor" in extra else ["--auto-predictor", "--auto-samples", "50"]
    args += ["--epochs", "1", "--retrain-epochs", "1", "--batch-size", "256", "--json", *extra]
    result = json.loads(run_cli(*args, db=db).stdout)
    assert result["target"] == target and result["measured_latency_ms"]["median"] > 0
    assert (out / "model.onnx").is_file()
    return result


def stored_predictor(target: list[str], db: str, out: Path, space: list[str] = SEARCH_SPACE) -> Path:
    """A predictor for the target (`-t NAME -o ...` flags) trained on 50 latencies stored as if measured there: for
    tests of a search's end on a target where collecting would build or convert 50 networks for minutes (a
    predictor made for another target is refused)."""
    from backends import get_target
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space
    from tests.pipeline.test_predictors import store_latencies

    options = [value for flag, value in zip(target[2::2], target[3::2]) if flag == "-o"]
    the_space = get_space("darts", [value for flag, value in zip(space[::2], space[1::2]) if flag == "--space-option"])
    store_latencies(Store(db), get_target(target[1], options), the_space, the_space.sample_many(50, 0))
    run_cli("train-predictor", *target, "--space", "darts", *space, "--kinds", "lut", "--out", str(out), db=db)
    return out


TOKEN = "test-token-0123456789"  # the API token of the servers `launch` starts


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """Start servers on one store; each is stopped with SIGTERM at the end and must leave no process behind."""
    started: list[LocalServer] = []
    env = {"EHDNAS_API_TOKEN": TOKEN, "XDG_DATA_HOME": str(tmp_path / "data")}

    def launch(workers: int = 1, **kwargs) -> LocalServer:
        server = start_server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "serve.log", workers, env, **kwargs)
        started.append(server)
        return server

    yield launch
    for server in started:
        if server.process.poll() is None:
            tree = psutil.Process(server.process.pid).children(recursive=True)
            assert server.stop() == 0, (tmp_path / "serve.log").read_text()
            _, alive = psutil.wait_procs(tree, timeout=20)
            assert not alive, f"left running: {alive}"
