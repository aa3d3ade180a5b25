"""Measuring models and architectures on a target: the functions the CLI and the server both call."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ehdnas.tasks.images  # noqa: F401  (registers image data sets: int8 targets calibrate on them)
from backends import Measurement, Runner, TimingProtocol, load_model
from backends.onnx_model import Shape
from ehdnas.core.errors import UserError
from ehdnas.core.events import Progress, no_progress
from ehdnas.core.lifeline import die_with
from ehdnas.pipeline.dataset import load_dataset
from ehdnas.pipeline.export import export_arch
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace

_PER_WORKER = 50  # fewer networks than this per worker: starting the pool costs more than it saves


@dataclass(frozen=True)
class Result:
    """One measured model: an ONNX file or an architecture of a space."""

    model: str
    measurement: Measurement
    cached: bool = False  # taken from the store rather than measured now
    arch: str | None = None
    layers: list[dict[str, Any]] | None = None  # per-layer figures, from targets that break a model down

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "model": self.model,
            "arch": self.arch,
            "latency_ms": m.latency_ms.to_dict(),
            "cv": m.latency_ms.cv,
            "spread": m.spread(),
            "flagged": m.flagged,
            "cached": self.cached,
            "wall_s": m.wall_s,
            "inputs": m.model["inputs"],
            "created_at": m.created_at,
            "details": m.details,
            **({"layers": self.layers} if self.layers is not None else {}),
        }


def timing_protocol(
    repeats: int, min_time: float, warmup: int, max_spread: float, clock: str = TimingProtocol.clock
) -> TimingProtocol:
    """The protocol from the options users set (the CLI's flags, a job's spec), checked."""
    from ehdnas.core.options import make_config

    values = {
        "min_repeats": repeats, "min_time_s": min_time, "warmup": warmup, "max_spread": max_spread, "clock": clock
    }  # fmt: skip
    return make_config(TimingProtocol, values, "timing protocol")


def report(runner: Runner, protocol: TimingProtocol, results: Sequence[Result]) -> dict[str, Any]:
    """The benchmark document (`benchmark --json`) shared by the CLI's --json and the server."""
    return {
        "target": runner.name,
        "target_config": runner.config_dict(),
        "host": runner.host(),
        "protocol": protocol.to_dict(),
        "results": [r.to_dict() for r in results],
    }


def benchmark_files(
    runner: Runner,
    paths: Sequence[Path],
    protocol: TimingProtocol,
    input_shapes: dict[str, Shape] | None = None,
    on_progress: Progress = no_progress,
) -> list[Result]:
    """Measure ONNX files as given: always a fresh measurement, nothing stored."""
    models = [load_model(path, input_shapes) for path in paths]  # every file is checked before any is timed
    results = []
    for i, model in enumerate(models):
        measurement = runner.measure(model, protocol)
        results.append(Result(model=model.name, measurement=measurement, layers=measurement.layers))
        on_progress(i + 1, len(models), f"{model.name}: {results[-1].measurement.latency_ms.median:.3f} ms")
    return results


def _measure_arch(
    runner: Runner,
    space: SearchSpace,
    arch: Any,
    protocol: TimingProtocol,
    exporting: contextlib.AbstractContextManager = contextlib.nullcontext(),  # noqa: B008  (stateless)
) -> Measurement:
    """Export `arch` to a temporary ONNX file (holding `exporting`) and measure it (also a pool worker's work)."""
    with tempfile.TemporaryDirectory(prefix="ehdnas-") as tmp:
        with exporting:
            model = export_arch(space, arch, Path(tmp) / "arch.onnx")
        return runner.measure(model, protocol)


def _prepare_arch(runner: Runner, space: SearchSpace, arch: Any) -> None:
    """Export `arch` and have `runner` prepare it (the work of one pool worker)."""
    with tempfile.TemporaryDirectory(prefix="ehdnas-") as tmp:
        runner.prepare(export_arch(space, arch, Path(tmp) / "arch.onnx"))


def _prepared_then_timed(
    pool: ProcessPoolExecutor,
    batch: int,
    runner: Runner,
    space: SearchSpace,
    archs: Sequence[Any],
    protocol: TimingProtocol,
) -> Iterator[Measurement]:
    """Measurements of `archs`: `batch` prepared in parallel, then timed one by one with the pool idle, and so on."""
    for start in range(0, len(archs), batch):
        chunk = archs[start : start + batch]
        list(pool.map(_prepare_arch, [runner] * len(chunk), [space] * len(chunk), chunk))
        for arch in chunk:
            yield _measure_arch(runner, space, arch, protocol)


def _on_devices(
    runner: Runner, space: SearchSpace, archs: Sequence[Any], protocol: TimingProtocol, store: Store, replace: bool
) -> dict[str, Measurement]:
    """`archs` measured on every device of the runner's key, one in flight per device, each stored as it comes.

    The devices time; this process only exports and waits, so one thread per
    device suffices. A device lost mid-way stops the collection once the
    measurements in flight on the others are stored: nothing taken is lost,
    and the same command resumes from there.
    """
    from backends.remote.client import device_count

    exporting = threading.Lock()  # torch's exporter is not made for threads
    stored: dict[str, Measurement] = {}
    failure: UserError | None = None
    with ThreadPoolExecutor(device_count(runner.remote)) as pool:
        futures = {pool.submit(_measure_arch, runner, space, a, protocol, exporting): space.to_text(a) for a in archs}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            try:
                measurement = future.result()
            except UserError as err:
                failure = failure or err
                for pending in futures:
                    pending.cancel()
                continue
            text = futures[future]
            stored[text] = store.record(measurement, space.name, space.config_dict(), text, replace=replace)
    if failure is not None:
        raise failure
    return stored


def _pool_worker_init(parent: int) -> None:
    die_with(parent)  # a killed CLI or job process takes its pool along
    import torch

    torch.set_num_threads(1)  # one process per core already


def measure_archs(
    runner: Runner,
    space: SearchSpace,
    archs: Sequence[Any],
    protocol: TimingProtocol,
    store: Store,
    fresh: bool = False,
    on_progress: Progress = no_progress,
) -> list[Result]:
    """Measure architectures of `space`, reusing stored measurements unless `fresh`.

    Each new measurement is committed as soon as it is taken, so an interruption
    loses at most the ones in flight. A simulated target (`runner.simulated`)
    is measured on every core at once, since its figures cannot disturb each other;
    a timed one, one network at a time, after preparing a batch of them on every
    core when the runner needs preparation (`runner.prepares`).
    """
    key = MeasurementKey.of(runner, space)
    texts = [space.to_text(arch) for arch in archs]
    stored = {} if fresh else store.lookup_many(key, texts)
    todo = [arch for arch, text in zip(archs, texts, strict=True) if text not in stored]
    cores = os.cpu_count() or 1
    if runner.simulated:
        workers = min(cores, len(todo) // _PER_WORKER)
    else:
        workers = min(cores, len(todo)) if runner.prepares and runner.remote is None else 0
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_pool_worker_init,
                    initargs=(os.getpid(),),
                )
            )
        if workers > 1 and runner.simulated:
            fresh_measurements = pool.map(
                _measure_arch, *zip(*[(runner, space, a, protocol) for a in todo]), chunksize=8
            )
        elif workers > 1:
            fresh_measurements = _prepared_then_timed(pool, workers, runner, space, todo, protocol)
        elif runner.remote is not None:  # a farm: stored as each device finishes, in any order
            farmed = _on_devices(runner, space, todo, protocol, store, fresh)
            fresh_measurements = iter(farmed[space.to_text(arch)] for arch in todo)
        else:
            fresh_measurements = (_measure_arch(runner, space, arch, protocol) for arch in todo)
        results = []
        for i, text in enumerate(texts):
            name = f"{space.name}#{i}"
            if text in stored:
                result = Result(model=name, measurement=stored[text], cached=True, arch=text)
            elif runner.remote is not None:
                result = Result(model=name, measurement=next(fresh_measurements), arch=text)
            else:
                measurement = store.record(next(fresh_measurements), space.name, key.space_config, text, replace=fresh)
                result = Result(model=name, measurement=measurement, arch=text)
            results.append(result)
            on_progress(i + 1, len(archs), f"{name}: {result.measurement.latency_ms.median:.3f} ms")
    return results


@dataclass(frozen=True)
class CollectReport:
    samples: int  # size of the seeded sample set
    already_stored: int
    measured: int
    remeasured: int = 0  # of `measured`: stored before, but flagged or noisier than the protocol's max_spread

    def to_dict(self) -> dict[str, int]:
        return {
            "samples": self.samples,
            "already_stored": self.already_stored,
            "measured": self.measured,
            "remeasured_noisy": self.remeasured,
        }


def collect(
    runner: Runner,
    space: SearchSpace,
    samples: int,
    seed: int,
    protocol: TimingProtocol,
    store: Store,
    on_progress: Progress = no_progress,
) -> CollectReport:
    """Make sure the first `samples` architectures drawn with `seed` are in the store.

    The sample set is a pure function of (space, samples, seed), so running the
    same command again after an interruption measures only what is missing.
    """
    archs = list({space.to_text(a): a for a in space.sample_many(samples, seed)}.values())
    stored = store.measurements(MeasurementKey.of(runner, space))
    stored_spread = {arch: math.inf if m.flagged else m.spread() for arch, m in stored}
    # A stored measurement flagged, or noisier than this protocol allows, counts as missing: it is taken again.
    todo = [a for a in archs if stored_spread.get(space.to_text(a), math.inf) > protocol.max_spread]
    noisy = sum(space.to_text(a) in stored_spread for a in todo)
    measure_archs(runner, space, todo, protocol, store, fresh=noisy > 0, on_progress=on_progress)
    return CollectReport(
        samples=len(archs), already_stored=len(archs) - len(todo), measured=len(todo), remeasured=noisy
    )


def collect_uncertain(
    runner: Runner,
    space: SearchSpace,
    samples: int,
    seed: int,
    protocol: TimingProtocol,
    store: Store,
    on_progress: Progress = no_progress,
    pool_factor: int = 3,  # measured: 3 matches uniform sampling, 20 (the most extreme picks) does worse
) -> CollectReport:
    """Grow the store to `samples` measurements of this key, choosing what the predictor is least sure of.

    Until a predictor can be trained, the seeded uniform sample fills the store.
    Then, round after round, an ensemble is fitted on everything measured, a pool
    of fresh candidates is drawn, and the batch it disagrees on most is measured.
    The state is the store itself, so an interrupted run resumes where it stopped.
    """
    from perf_models.active import fit_for_selection, most_uncertain
    from perf_models.train import MIN_MEASUREMENTS

    key = MeasurementKey.of(runner, space)
    start = len(store.stored_archs(key))
    if start < min(samples, MIN_MEASUREMENTS):
        collect(runner, space, min(samples, MIN_MEASUREMENTS), seed, protocol, store, on_progress)
    while (have := len(stored := store.stored_archs(key))) < samples:
        batch_size = min(max(10, have // 5), samples - have)
        predictor = fit_for_selection(load_dataset(store, space, key), seed + have)
        pool = [a for a in space.sample_many(pool_factor * batch_size, seed + have) if space.to_text(a) not in stored]
        chosen = most_uncertain(predictor, np.array([space.encode(a) for a in pool]), batch_size)
        measure_archs(
            runner,
            space,
            [pool[i] for i in chosen],
            protocol,
            store,
            on_progress=lambda n, _, label, base=have - start: on_progress(base + n, samples - start, label),
        )
    return CollectReport(samples=samples, already_stored=min(start, samples), measured=max(0, samples - start))


STRATEGIES = {"uniform": collect, "uncertain": collect_uncertain}  # how `collect` chooses what to measure
