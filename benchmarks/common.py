"""What the benchmark scripts share: the measured DARTS architectures they evaluate on."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from backends import TimingProtocol, get_target
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.measure import collect
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from perf_models.dataset import Dataset
from server.local import LocalServer, start_server

SERVER_TOKEN = "benchmark-token"


def measured_darts(
    db: str | None,
    samples: int,
    seed: int = 0,
    target: str = "ort-cpu",
    target_options: Sequence[str] = (),
    space_options: Sequence[str] = (),
) -> Dataset:
    """The first `samples` DARTS architectures of `seed` measured on `target`; collects what is missing."""
    runner, space, store = get_target(target, target_options), get_space("darts", space_options), Store(db)

    def progress(done: int, total: int, label: str) -> None:
        print(f"\r  collecting [{done}/{total}] {label[:40]}", end="", file=sys.stderr, flush=True)

    report = collect(runner, space, samples, seed, TimingProtocol(), store, progress)
    if report.measured:
        print(file=sys.stderr)
    data = load_dataset(store, space, MeasurementKey.of(runner, space))
    wanted = {space.to_text(a) for a in space.sample_many(samples, seed)}
    return data.subset([i for i, arch in enumerate(data.archs) if arch in wanted])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def private_server(tmp: str) -> LocalServer:
    """A real `ehdnas serve` with one worker, its store, data dir, cache and log under `tmp`."""
    env = {"EHDNAS_API_TOKEN": SERVER_TOKEN, "XDG_DATA_HOME": f"{tmp}/data", "EHDNAS_CACHE": f"{tmp}/cache"}
    return start_server(f"sqlite:///{tmp}/store.db", Path(tmp) / "serve.log", 1, env)
