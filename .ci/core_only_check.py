"""Checks of a core-only install (run by .ci/core_only.sh in its fresh environment, outside the checkout).

The checkout's root is the one argument: its README's predictor example is what runs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement  # matplotlib's dependency: in the core install already
from packaging.version import Version

# What the extras tvm, tflite, sim, server, postgres and ray add.
EXTRA_MODULES = ("tvm", "ai_edge_litert", "scalesim", "fastapi", "uvicorn", "psycopg", "ray")
EXTRAS = {"tvm", "tflite", "sim", "server", "postgres", "ray", "client", "test", "all"}


def main(root: Path) -> None:
    import torch

    import perf_models

    assert Path(perf_models.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), (
        f"perf_models comes from {perf_models.__file__}, not from the installed package"
    )
    assert torch.__version__.split("+")[0] == "2.13.0", f"installing ehdnas changed torch to {torch.__version__}"
    present = [module for module in EXTRA_MODULES if importlib.util.find_spec(module) is not None]
    assert not present, f"the core install pulled in {', '.join(present)}"

    metadata = importlib.metadata.metadata("ehdnas")
    core = [r for r in map(Requirement, metadata.get_all("Requires-Dist")) if not r.marker or r.marker.evaluate()]
    torch_spec = next(r.specifier for r in core if r.name == "torch")
    assert Version("2.4") in torch_spec and Version("2.13.0") in torch_spec, f"torch{torch_spec} in the core"
    assert EXTRAS <= set(metadata.get_all("Provides-Extra")), metadata.get_all("Provides-Extra")

    # The README's predictor example, found by the same heading as tests/perf_models/test_perf_models.py finds it.
    spec = importlib.util.spec_from_file_location("examples", root / "tests" / "examples.py")
    examples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(examples)
    with tempfile.TemporaryDirectory() as tmp:
        final_ms, uniform_ms = examples.run_loss_example(Path(tmp), root / "README.md")
    assert final_ms < uniform_ms, (final_ms, uniform_ms)

    # The store's migrations are package data: a new store is made by running them from the installed package.
    from ehdnas.pipeline.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        assert Store(f"sqlite:///{tmp}/store.db").count() == 0

    ehdnas = Path(sys.executable).parent / "ehdnas"
    listing = subprocess.run([ehdnas, "targets", "--json"], capture_output=True, text=True, check=True)
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["ort-cpu"]["available"], rows["ort-cpu"]
    assert "pip install 'ehdnas[tvm]'" in rows["tvm-llvm"]["reason"], rows["tvm-llvm"]
    assert "pip install 'ehdnas[tflite]'" in rows["tflite-cpu"]["reason"], rows["tflite-cpu"]
    print(f"core-only install: torch {torch.__version__}, torch{torch_spec} declared, README example ran")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
