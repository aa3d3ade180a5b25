"""The NNI bridge: its label maps here, and its checks inside NNI in the bridge's own environment (`make nni`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ehdnas.bridges.nni_labels import label_map
from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space

ROOT = Path(__file__).resolve().parents[2]
NNI_ENV = ROOT / ".venv-nni"  # `make nni`; ehdnas.ready is there once it is complete


@pytest.mark.slow
@pytest.mark.skipif(
    not (NNI_ENV / "ehdnas.ready").exists(), reason="no NNI environment: `make nni` (`make test`) makes it"
)
def test_the_bridge_passes_its_checks_inside_nni() -> None:
    # One thread: torch's default pool on a shared machine made the one-epoch run 40 s instead of 3 s.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    checks = ROOT / "tests" / "bridges" / "nni_env_checks.py"
    command = [str(NNI_ENV / "bin" / "python"), "-m", "pytest", "--noconftest", "-p", "no:cacheprovider", "-q"]
    command.append(str(checks))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


def test_importing_the_bridge_imports_no_nni() -> None:
    code = "import sys, ehdnas.bridges.nni; assert 'nni' not in sys.modules and 'pytorch_lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_ehdnas_architectures_map_to_nni_samples_and_back(space: str) -> None:
    labels = label_map(space)
    for arch in get_space(space).sample_many(50, seed=0):
        assert labels.to_arch(labels.to_sample(arch)) == arch


def test_nni_labels_of_the_darts_space_are_its_edges_with_the_node_first() -> None:
    labels, decisions = label_map("darts"), get_space("darts").decisions
    assert [(d.name, label) for d, label in zip(decisions, labels.labels)][:3] == [
        ("normal.0->2", "normal/2_0"),
        ("normal.1->2", "normal/2_1"),
        ("normal.0->3", "normal/3_0"),
    ]
    assert labels.labels[-1] == "reduce/5_4" and decisions[-1].name == "reduce.4->5"


def test_nnis_soft_darts_edge_with_none_last_becomes_ehdnas_none_first() -> None:
    nni_ops = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3"]
    nni_ops += ["dil_conv_5x5", "none"]  # a differentiable cell's op_names, then its zero op
    probs = {label: (torch.arange(8.0), nni_ops) for label in label_map("darts").labels}
    vectors = label_map("darts").soft(probs)
    assert len(vectors) == 28 and vectors[0].tolist() == [7, 0, 1, 2, 3, 4, 5, 6]


def test_nb201s_conv_names_map_to_nas_bench_201s() -> None:
    sample = {label: "conv_3x3" for label in label_map("nb201").labels} | {"cell/0_1": "conv_1x1"}
    arch = label_map("nb201").to_arch(sample)
    assert arch.ops == ("nor_conv_1x1",) + ("nor_conv_3x3",) * 5


def test_a_choice_list_that_differs_is_refused_naming_the_label() -> None:
    labels = label_map("nb201")
    names = ["none", "skip_connect", "conv_1x1", "conv_3x3", "max_pool_3x3"]
    probs = {label: (torch.ones(5) / 5, names) for label in labels.labels}
    with pytest.raises(UserError, match="NNI label 'cell/0_1': choices .*max_pool_3x3 are not ehdnas nb201's"):
        labels.soft(probs)


def test_a_missing_or_unknown_label_is_refused_naming_it() -> None:
    labels = label_map("nb201")
    sample = labels.to_sample(get_space("nb201").sample(np.random.default_rng(0)))
    with pytest.raises(UserError, match="NNI label 'cell/2_3' of ehdnas space 'nb201' is missing"):
        labels.to_arch({k: v for k, v in sample.items() if k != "cell/2_3"})
    with pytest.raises(UserError, match="NNI label 'width' has no counterpart in ehdnas space 'nb201'"):
        labels.to_arch(sample | {"width": 16})
    with pytest.raises(UserError, match="NNI label 'cell/0_1': op 'nor_conv_3x3' is none of NNI's"):
        labels.to_arch(sample | {"cell/0_1": "nor_conv_3x3"})


def test_a_darts_sample_with_an_out_of_range_input_is_refused_naming_the_label() -> None:
    labels = label_map("darts")
    sample = labels.to_sample(get_space("darts").sample(np.random.default_rng(0)))
    with pytest.raises(UserError, match="NNI label 'normal/input_3_1': input 3 out of range 0..2"):
        labels.to_arch(sample | {"normal/input_3_1": [3]})


def test_a_space_without_an_nni_counterpart_is_refused() -> None:
    with pytest.raises(UserError, match="unknown NNI label map 'flownas'; known: darts, nb201"):
        label_map("flownas")


def test_building_a_profiler_without_nni_says_how_to_get_it() -> None:
    code = (
        "from ehdnas.bridges.nni import predictor_profiler\n"
        "from ehdnas.core.errors import UserError\n"
        "from perf_models.baselines import LUTPredictor\n"
        "try:\n    predictor_profiler(LUTPredictor([5] * 6), 'nb201')\n"
        "except UserError as err:\n    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "make nni" in done.stdout
