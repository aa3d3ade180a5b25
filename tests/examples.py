"""Latencies with a known law, and the README's python examples run against them.

Imports no pytest and nothing from the test suite: `.ci/core_only.sh` loads this
file by path in a fresh environment holding only the installed core package, to
run the README's predictor example there just as tests/perf_models/test_perf_models.py does.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ehdnas.spaces import get_space
from perf_models.baselines import fit_lut
from perf_models.dataset import Dataset

README = Path(__file__).resolve().parent.parent / "README.md"
LOSS_EXAMPLE = "## The latency predictor as a loss term"  # the heading of the section whose python block runs


def synthetic(n: int, seed: int = 0, interaction: float = 0.0) -> Dataset:
    """DARTS architectures whose latency follows a known law: per-choice costs, optionally an interaction."""
    space = get_space("darts")
    rng = np.random.default_rng(seed)
    archs = space.sample_many(n, seed)
    indices = np.array([space.encode(a) for a in archs])
    costs = np.random.default_rng(42).uniform(0.0, 0.1, size=(28, 8))  # the same law for every seed
    additive = 1.0 + costs[np.arange(28), indices].sum(1)
    both_sep = (indices[:, 0] == 4) & (indices[:, 1] == 4)  # normal cell node 2: two sep_conv_3x3
    latency = additive * (1 + interaction * both_sep) * rng.normal(1.0, 0.002, n)
    macs = 1e6 * additive
    meta = {
        "space": "darts",
        "space_config": space.config_dict(),
        "decisions": [[d.name, list(d.choices)] for d in space.decisions],
    }
    return Dataset(indices, latency, macs, np.full(n, 1e5), tuple(space.to_text(a) for a in archs), meta)


def python_block(heading: str, readme: Path = README) -> str:
    """The first python code block after `heading` in the README."""
    section = readme.read_text().split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def run_loss_example(workdir: Path, readme: Path = README) -> tuple[float, float]:
    """Run the README's loss-term example in `workdir`, on the predictor file it loads (`ort-cpu.pt`, fitted
    here to `synthetic` latencies); the latency predicted for its final alpha and for a uniform one, in ms."""
    code = python_block(LOSS_EXAMPLE, readme)
    data = synthetic(100)
    fit_lut(data, data).save(workdir / "ort-cpu.pt", {**data.meta, "target": "ort-cpu"})
    namespace: dict = {}
    with contextlib.chdir(workdir):
        exec(compile(code, str(readme), "exec"), namespace)
    predictor, alpha = namespace["predictor"], namespace["alpha"]
    with torch.no_grad():
        return predictor(torch.softmax(alpha, -1)).item(), predictor(torch.full((28, 8), 1 / 8)).item()
