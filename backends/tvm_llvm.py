"""Target `tvm-llvm`: Apache TVM (Relax) compiled with LLVM for this CPU: tuned, sampled or unscheduled.

The model goes through TVM's Relax ONNX frontend with its weights bound as
constants (as a deployment would), is lowered and built for `llvm` with the
host's `-mcpu`, and is timed on the Relax VM by TVM's own time evaluator.

- `mode=tuned` (the default): MetaSchedule tunes the model's compute kernels
  (convolution, matmul, pooling: the anchor ops of fused functions) with one
  budget of `trials` for the whole model, which its task scheduler shares out
  by expected gain, then builds with the best schedules. Records are matched by
  anchor block in one database per TVM target and version, shared by every
  model built later: kernels it holds are not tuned again, and a model whose
  kernels it partly holds spends that part of its budget less.
- `mode=sampled`: one MetaSchedule schedule per kernel drawn from `seed`, none
  measured: a minute of build time, a few times slower than tuned, for
  collections where the order of networks matters more than their speed.
- `mode=untuned`: TVM's default CPU pipeline, which schedules no convolution
  (the CPU dlight rules cover GEMV and reductions only): loops as legalized.
  Quick to build, tens of times slower than ONNX Runtime, not representative.

Executables are cached on disk by (model hash, TVM target, settings, TVM
version), so measuring a model again does not compile it again.

On a remote device (`-o remote=...`) the host cross-compiles for the device's
LLVM target and uploads the library; tuning times its candidates on the devices
of the key through the tracker (MetaSchedule's RPC runner), into a database of
that device kind's own: a device's records never mix with this machine's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import Availability, DeviceBuild, Runner, Timer, register_target, requires_extra
from backends.onnx_model import OnnxModel
from backends.output import redirected_output
from backends.protocol import TimingProtocol
from backends.remote.address import RemoteAddress
from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, no_events, tick
from ehdnas.core.host import fingerprint
from ehdnas.core.paths import cache_dir

MODES = ("tuned", "sampled", "untuned")
MATCH = "anchor-block"  # a fused conv+add+relu reuses the record of the same conv fused otherwise
TUNE_STAGE = "tvm-tune"  # the stage of tuning's ticks
UNSCHEDULED = "TVM's default CPU pipeline, no schedule; not representative of TVM"  # what untuned is, shown with it
ROUND_TRIALS = 8  # candidates one round of a kernel's search measures: its evolutionary search costs per round
POPULATION = 128  # the evolutionary search's population (TVM's default 512; a round's search is ~4x cheaper)
# The expected tuning time: SECONDS_PER_ROUND for each round's search plus SECONDS_PER_TRIAL to build and time
# each candidate, as SqueezeNet's first rounds took on 2 cores at load 6 (7 s of search, 12 s for 8 candidates).
SECONDS_PER_ROUND = 8.0
SECONDS_PER_TRIAL = 1.5
SAMPLE_DRAWS = 16  # draws of a kernel's schedule that mode=sampled tries before leaving it unscheduled
MS_LOGGER = "tvm.s_tir.meta_schedule"  # MetaSchedule's logger, which it reconfigures for every tuning
CANDIDATE_S = 30  # a tuning candidate's session on a remote device: upload, load and time (then it is killed)


@dataclass(frozen=True)
class TvmLlvmConfig:
    mode: str = "tuned"
    trials: int = 256  # MetaSchedule's budget for the whole model, shared out among its kernels (mode=tuned)
    seed: int = 0  # the draw of every kernel's schedule (mode=sampled)
    threads: int = 1  # TVM runtime threads; 1 keeps measurements comparable and quiet
    mcpu: str = "host"  # LLVM CPU to generate code for; "host" is the CPU this runs on (or the remote device's)
    mtriple: str = "host"  # LLVM target triple; "host": this machine's, or the remote device's (-o remote=...)

    def check(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"target 'tvm-llvm' option 'mode' must be one of {', '.join(MODES)}")
        if self.trials < 1:
            raise UserError("target 'tvm-llvm' option 'trials' must be at least 1")
        if self.threads < 1:
            raise UserError("target 'tvm-llvm' option 'threads' must be at least 1")


@dataclass
class Compiled:
    """A model built by TVM, loaded in a Relax VM, with how it was built."""

    vm: Any
    input_names: tuple[str, ...]
    info: dict[str, Any]

    def arguments(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        import tvm

        return [tvm.runtime.tensor(feeds[name], tvm.cpu()) for name in self.input_names]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import tvm

        out = self.vm["main"](*self.arguments(feeds))
        return [out.numpy()] if isinstance(out, tvm.runtime.Tensor) else [t.numpy() for t in out]


@register_target("tvm-llvm")
class TvmLlvmRunner(Runner):
    description = (
        "Apache TVM (Relax) built with LLVM for this CPU; mode=tuned: MetaSchedule, trials=N for the whole model, "
        "records shared by every model; mode=sampled: one unmeasured MetaSchedule sample per kernel (seed=N); "
        f"mode=untuned: {UNSCHEDULED}"
    )
    Config = TvmLlvmConfig
    clocks = ("wall",)  # TVM's time_evaluator times each run itself

    def __init__(self, config: TvmLlvmConfig | None = None, on_event: Events = no_events) -> None:
        super().__init__(config)
        self.on_event = on_event  # where tuning says how long it expects to take, then how far it is

    @classmethod
    def availability(cls) -> Availability:
        status = requires_extra("tvm", "tvm")
        if not status.available:
            return status
        try:
            import tvm
        except Exception as err:  # a broken native library raises anything
            return Availability(False, f"TVM does not load: {err}")
        if not tvm.runtime.enabled("llvm"):
            return Availability(False, "this TVM build has no LLVM backend")
        return Availability(True)

    def libraries(self) -> dict[str, str]:
        import tvm

        return {"apache-tvm": tvm.__version__}

    def config_dict(self) -> dict[str, Any]:
        config = super().config_dict()
        if self.config.mode != "tuned":
            del config["trials"]  # no tuning: the budget changes nothing measured
        if self.config.mode != "sampled":
            del config["seed"]  # only sampled schedules are drawn
        if self.config.mtriple == "host":
            del config["mtriple"]  # the machine that times is in the key already (and keys from before it stay)
        return config

    def target(self, device: dict[str, str] | None = None) -> Any:
        """The TVM target: LLVM for the host's CPU, or a remote device's (`device`: its report's `mtriple` and
        `mcpu`), unless `mcpu`/`mtriple` name others, with the configured core count."""
        import tvm

        codegen = tvm.target.codegen
        spec: dict[str, Any] = {"kind": "llvm", "num-cores": self.config.threads}
        here = codegen.llvm_get_system_triple()
        system = device or {"mtriple": here, "mcpu": codegen.llvm_get_system_cpu()}
        mtriple = system["mtriple"] if self.config.mtriple == "host" else self.config.mtriple
        # Only another machine's triple is named: naming this one's loses LLVM's host features (measured here:
        # a DARTS net ran 2.1x slower built for rocketlake with this triple named than without).
        if mtriple != here:
            spec["mtriple"] = mtriple
        mcpu = system["mcpu"] if self.config.mcpu == "host" else self.config.mcpu
        if mcpu and mcpu != "generic":
            if not codegen.llvm_is_valid_cpu(mcpu, mtriple):
                raise UserError(f"target 'tvm-llvm' option 'mcpu': LLVM does not know the CPU {mcpu!r}")
            spec["mcpu"] = mcpu
        return tvm.target.Target(spec)

    def tuning_dir(self, target: Any | None = None) -> Path:
        """The MetaSchedule database shared by every model built for this TVM target, on this machine or on the
        remote devices of one fingerprint."""
        import tvm

        return cache_dir("tvm", "tuning", fingerprint([str(target or self.target()), tvm.__version__, *self._where()]))

    def _where(self) -> list[dict[str, Any]]:
        """What keys a build besides its target: a remote device's fingerprint, since its records are its own
        (a device with this machine's CPU would otherwise share this machine's)."""
        return [self.host()] if self.remote is not None else []

    def device_build(self, model: OnnxModel, device: dict[str, Any]) -> DeviceBuild:
        """The library cross-compiled here for the remote device's CPU (cached like a local build), tuned on the
        devices of the key."""
        library, _, info = self._library(model, self.target(device["llvm"]))
        if library is None:
            raise UserError("target 'tvm-llvm': a library for a remote device needs a C toolchain here to link")
        return DeviceBuild(library, info)

    def _built_timer(self, model: OnnxModel, build: Path) -> Timer:
        os.environ["TVM_NUM_THREADS"] = str(self.config.threads)  # as `compile` does: the runtime pool's size
        names = tuple(spec.name for spec in model.inputs)
        return self._timed(Compiled(_load_vm(build), names, {"built_on_host": True}), model)

    def _timer(self, model: OnnxModel) -> Timer:
        return self._timed(self.compile(model), model)  # once: the retries of one measurement time one build

    def _timed(self, compiled: Compiled, model: OnnxModel) -> Timer:
        details = dict(compiled.info)
        if self.config.mode == "untuned":
            details["note"] = f"untuned: {UNSCHEDULED}"  # beside the figure wherever it is shown
        return Timer(lambda protocol: self._time(compiled, model, protocol), details)

    def _time(self, compiled: Compiled, model: OnnxModel, protocol: TimingProtocol) -> list[float]:
        import tvm

        with _affinity_kept():
            _use_threads(self.config.threads)
            args = compiled.arguments(model.fixed_inputs())
            evaluator = compiled.vm.time_evaluator
            warmup = evaluator("main", tvm.cpu(), number=max(protocol.warmup, 1), repeat=1)(*args)
            repeats = max(protocol.min_repeats, math.ceil(protocol.min_time_s / max(warmup.mean, 1e-9)))
            timed = evaluator("main", tvm.cpu(), number=1, repeat=min(repeats, protocol.max_repeats))(*args)
        return [float(seconds) * 1e3 for seconds in timed.results]

    def compile(self, model: OnnxModel) -> Compiled:
        """The model built for this configuration: from the disk cache, or built now."""
        os.environ["TVM_NUM_THREADS"] = str(self.config.threads)  # read by tuning's worker processes
        library, executable, info = self._library(model, self.target())
        # Loading the exported library costs no more than the JIT compile that running the
        # in-memory build would trigger (both about 1.5 s for a small DARTS net), so cache first.
        vm = _load_vm(library) if library is not None else _vm(executable)
        return Compiled(vm, tuple(spec.name for spec in model.inputs), info)

    def _library(self, model: OnnxModel, target: Any) -> tuple[Path | None, Any, dict[str, Any]]:
        """The model's library for `target` from the disk cache, or built now: its path (None when it cannot be
        linked here), the build made now (None from the cache) and how it was made."""
        library = cache_dir("tvm", "lib") / f"{self._key(model, target)}.so"
        info_file = library.with_suffix(".json")
        if library.is_file() and info_file.is_file():
            return library, None, {**json.loads(info_file.read_text()), "from_cache": True}
        start = time.perf_counter()
        executable, info = self._build(model, target)
        info["compile_s"] = round(time.perf_counter() - start - info.get("tune_s", 0.0), 3)  # tuning apart
        exported = _export(executable, library)
        if exported:
            info_file.write_text(json.dumps(info))
        return library if exported else None, executable, {**info, "from_cache": False}

    def _key(self, model: OnnxModel, target: Any | None = None) -> str:
        import tvm

        shapes = [list(spec.shape) for spec in model.inputs]
        target_text = str(target or self.target())
        return fingerprint([model.sha256, shapes, target_text, self.config_dict(), tvm.__version__, *self._where()])

    def _build(self, model: OnnxModel, target: Any | None = None) -> tuple[Any, dict[str, Any]]:
        target = target or self.target()
        fused = _fuse(_import_onnx(model), target)
        info: dict[str, Any] = {"mode": self.config.mode, "mcpu": str(target.attrs.get("mcpu", "generic"))}
        database = None
        if self.config.mode == "tuned":
            work_dir, runner = self.tuning_dir(target), self._tuning_runner()
            database, tuning = _tune(fused, target, work_dir, self.config.trials, runner, self.on_event)
            info.update(tuning)
        elif self.config.mode == "sampled":
            start = time.perf_counter()
            log = cache_dir("tvm") / "sampling.log"
            database, info["kernels"], info["kernels_sampled"] = _sample(fused, target, self.config.seed, log)
            info["sample_s"] = round(time.perf_counter() - start, 3)
        return _compile(fused, target, database), info

    def _tuning_runner(self) -> Any:
        """Where MetaSchedule times candidates, each 3 times over at least 10 ms: on this machine, or on the devices
        of the remote key, one candidate per device at a time, with the measurement's thread count."""
        from tvm.s_tir import meta_schedule as ms

        evaluator = ms.runner.EvaluatorConfig(number=1, repeat=3, min_repeat_ms=10)
        if self.remote is None:
            return ms.runner.LocalRunner(evaluator_config=evaluator)
        from backends.remote.client import device_count

        address = self.remote
        rpc = ms.runner.RPCConfig(address.host, address.port, address.key, session_timeout_sec=CANDIDATE_S)
        session = functools.partial(_candidate_session, address, self.config.threads)
        return ms.runner.RPCRunner(rpc, evaluator, f_create_session=session, max_workers=device_count(address))


def _use_threads(threads: int) -> None:
    """Size TVM's runtime thread pool (starting it), resizing only when it differs."""
    import tvm

    if tvm.get_global_func("runtime.NumThreads")() != threads:
        tvm.get_global_func("runtime.config_threadpool")(0, threads)


@contextlib.contextmanager
def _affinity_kept() -> Iterator[None]:
    """Undo the pinning that TVM's thread pool applies to the calling thread when it starts.

    Left pinned, the process stays on one core afterwards: MetaSchedule's build
    workers (which inherit it) then share that core and time out, and training
    in the same process loses the other cores.
    """
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        yield
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)


@contextlib.contextmanager
def _frames_looked_up_cheaply() -> Iterator[None]:
    """Skip `inspect.getmodule`'s scan of every loaded module for code that has no file.

    MetaSchedule's first tuning context imports TVM's ~250 tensor intrinsics,
    and TVMScript's parser calls `inspect.stack()` for each; for every frame of
    the import system or of eval'd text (named like `<frozen ...>` or `<string>`)
    inspect scans all of `sys.modules` and finds nothing. With torch loaded that
    import took 315 s here, 10.6 s with the scan skipped. The answer is the same:
    no module for a frame that has no file.
    """
    import inspect
    from unittest import mock

    scan = inspect.getmodule

    def getmodule(obj: Any, _filename: str | None = None) -> Any:
        return None if _filename is not None and _filename.startswith("<") else scan(obj, _filename)

    with mock.patch.object(inspect, "getmodule", getmodule):
        yield


@contextlib.contextmanager
def _only_meta_schedules_own_log_handlers() -> Iterator[None]:
    """Set aside, while MetaSchedule makes its task loggers, handlers it did not make on its logger.

    It reconfigures its logger with `dictConfig`, naming every handler already
    there, and fails on one it cannot name (`'NoneType' object has no attribute
    'format'`): pytest's log capture, or an application's own handler, put there.
    """
    logger = logging.getLogger(MS_LOGGER)
    foreign = [h for h in logger.handlers if not (h.get_name() or "").startswith(MS_LOGGER)]
    for handler in foreign:
        logger.removeHandler(handler)
    try:
        yield
    finally:
        for handler in foreign:
            logger.addHandler(handler)


def _import_onnx(model: OnnxModel) -> Any:
    """The model as a Relax module with static input shapes and its weights as constants."""
    import onnx
    import tvm
    import tvm.relax.frontend.onnx
    from tvm import relax

    proto = onnx.load(str(model.path))
    shapes = {spec.name: list(spec.shape) for spec in model.inputs}
    try:
        module = relax.frontend.onnx.from_onnx(proto, shape_dict=shapes, keep_params_in_input=False)
    except tvm.error.OpNotImplemented as err:
        ops = str(err).split(":", 1)[-1].strip().splitlines()[0]
        raise UserError(f"{model.path}: TVM's ONNX frontend does not support the operator(s) {ops}") from None
    except Exception as err:  # the frontend raises many types for models it cannot convert
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise UserError(f"{model.path}: TVM cannot import the model ({reason})") from None
    return relax.transform.DecomposeOpsForInference()(module)  # batch norm into arithmetic, as at inference


def _fuse(module: Any, target: Any) -> Any:
    """Legalize every operator to TIR and fuse: the functions that tuning and building both see."""
    import tvm
    from tvm.relax.backend.cpu_generic import pipeline

    with target:
        passes = pipeline.library_dispatch_passes(target) + pipeline.legalize_passes(target)
        return tvm.transform.Sequential(passes)(module)


def _compile(fused: Any, target: Any, database: Any | None) -> Any:
    """Schedule (tuning records first, then the CPU dlight rules), lower and build for the VM."""
    import tvm
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline
    from tvm.s_tir import dlight

    @tvm.transform.module_pass(opt_level=3)
    def lower(module: Any, _context: Any) -> Any:
        if database is not None:
            module = relax.transform.MetaScheduleApplyDatabase()(module)
        module = _where_they_apply(dlight.ApplyDefaultSchedule(dlight.cpu.GEMV(), dlight.cpu.Reduction()), module)
        finish = pipeline.dataflow_lower_passes(target) + pipeline.finalize_passes(target)
        return tvm.transform.Sequential(finish)(module)

    with target, database or contextlib.nullcontext(), tvm.transform.PassContext(opt_level=3):
        return relax.build(fused, target=target, relax_pipeline=lower)


def _where_they_apply(rules: Any, module: Any) -> Any:
    """Apply dlight `rules` function by function, leaving a function as it was when they fail on it.

    TVM 0.27's CPU reduction rule raises on some legalized functions (AlexNet's dense layers).
    """
    import tvm

    for name, function in module.functions_items():
        if isinstance(function, tvm.tirx.PrimFunc):
            try:
                module[name] = rules(tvm.IRModule({name: function}))[name]
            except RuntimeError:  # ScheduleError and the FFI errors derive from it
                continue
    return module


def _kernels(fused: Any, target: Any) -> list[Any]:
    """The model's MetaSchedule tasks worth scheduling, one per distinct anchor block.

    Functions built around a reduction (convolution, matmul, pooling, with what was fused into them) hold
    nearly all the time; element-wise functions keep their default schedules.
    """
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.analysis import find_anchor_sblock

    tasks = ms.relax_integration.extract_tasks(fused, target, module_equality=MATCH)
    return [t for t in tasks if find_anchor_sblock(t.dispatched[0]) is not None]


def _sample(fused: Any, target: Any, seed: int, log: Path) -> tuple[Any, int, int]:
    """One MetaSchedule schedule per kernel, its decisions drawn from `seed`, none measured: a memory database
    of them, the kernels and how many got one.

    Each kernel's design space comes from the post-order-apply generator (the rules tuning starts from); one
    of its sketches is replayed with every decision sampled afresh, and the target's postprocessors applied;
    a draw they reject (a loop too long to unroll, say) is drawn again, and a kernel with no accepted draw
    keeps its default schedule.
    """
    from tvm import s_tir
    from tvm.s_tir import meta_schedule as ms

    rng = np.random.default_rng(seed)
    kernels = _kernels(fused, target)
    database = ms.database.MemoryDatabase(module_equality=MATCH)
    sampled = 0
    with redirected_output(log), _frames_looked_up_cheaply():  # the first context imports the tensor intrinsics
        for task in kernels:
            module = task.dispatched[0]
            context = ms.TuneContext(
                mod=module, target=target, space_generator="post-order-apply", rand_state=_draw(rng), num_threads=1
            )
            sketches, postprocs = context.generate_design_space(), context.space_generator.postprocs
            for _ in range(SAMPLE_DRAWS):
                schedule = s_tir.Schedule(module, seed=_draw(rng))
                sketches[rng.integers(len(sketches))].trace.apply_to_schedule(
                    schedule, remove_postproc=True, decision_provider=lambda *_: None
                )
                if all(postproc.apply(schedule) for postproc in postprocs):
                    workload = database.commit_workload(module)
                    args = ms.arg_info.ArgInfo.from_prim_func(module["main"])
                    record = ms.database.TuningRecord(schedule.trace, workload, [1.0], target, args)
                    database.commit_tuning_record(record)
                    sampled += 1
                    break
    return database, len(kernels), sampled


def _draw(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 2**31 - 1))


def _candidate_session(address: RemoteAddress, threads: int, _config: Any) -> Any:
    """A session on a free device of the key for one tuning candidate, waited for with the client's bound (TVM's
    own request waits forever), its runtime pool sized as a measurement's (in a tuning worker process)."""
    from backends.remote.client import Tracker

    with Tracker(address.tracker) as tracker:
        session = tracker.request(address.key)
    session.get_function("runtime.config_threadpool")(0, threads)
    return session


def _tune(
    fused: Any, target: Any, work_dir: Path, budget: int, runner: Any, on_event: Events
) -> tuple[Any, dict[str, Any]]:
    """Tune the kernels the database lacks, with their share of the model's `budget`; the database and what was
    done.

    The model's kernels share `budget` trials; those the database holds already had their share, so a model
    whose kernels are all known tunes nothing. MetaSchedule's gradient task scheduler gives every new kernel
    one round of trials, then the rest to the kernels whose latency it expects to fall most (by weight and
    recent gain), each capped at a few times its even share.
    """
    from tvm.s_tir import meta_schedule as ms

    kernels = _kernels(fused, target)
    database = ms.database.JSONDatabase(work_dir=str(work_dir), module_equality=MATCH)
    new = [t for t in kernels if database.query_tuning_record(t.dispatched[0], target, "main") is None]
    trials = math.ceil(budget * len(new) / len(kernels)) if new else 0
    per_round = min(ROUND_TRIALS, max(1, trials // max(len(new), 1)))  # every new kernel gets a first round
    expected_s = round(SECONDS_PER_ROUND * math.ceil(trials / per_round) + SECONDS_PER_TRIAL * trials)
    start, spent = time.perf_counter(), 0
    if new:
        on_event(tick(TUNE_STAGE, 0, trials, _tuning_line(0, trials, len(new), expected_s), lasting=True))

        search = ms.search_strategy.EvolutionarySearch(population_size=POPULATION)
        logging.getLogger(MS_LOGGER).setLevel(logging.WARNING)  # it logs every trial
        with redirected_output(work_dir / "tuning.log") as aside:

            def measured(count: int) -> None:
                nonlocal spent
                spent += count
                left = max(expected_s - (time.perf_counter() - start), 0)
                with aside():  # the line is the user's, not the log's
                    on_event(tick(TUNE_STAGE, spent, trials, _tuning_line(spent, trials, len(new), left)))

            # the first context imports the tensor intrinsics
            with _frames_looked_up_cheaply(), _only_meta_schedules_own_log_handlers():
                contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
                    new, str(work_dir), strategy=search, num_threads=os.cpu_count() or 1, seed=0
                )
            ms.tune.tune_tasks(
                tasks=contexts,
                task_weights=weights,
                work_dir=str(work_dir),
                max_trials_global=trials,
                max_trials_per_task=max(per_round, math.ceil(4 * trials / len(new))),
                num_trials_per_iter=per_round,
                database=database,
                builder=ms.builder.LocalBuilder(f_build=_build_candidate, f_export=_export_candidate),
                runner=runner,
                measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), _counting(measured)],
                module_equality=MATCH,
            )
    return database, {
        "kernels": len(kernels),
        "kernels_from_database": len(kernels) - len(new),
        "kernels_tuned_now": len(new),
        "trials": budget,
        "trials_spent": spent,
        "expected_tune_s": expected_s,
        "tune_s": round(time.perf_counter() - start, 3),
        "tuning_dir": str(work_dir),
    }


def _tuning_line(done: int, trials: int, kernels: int, left_s: float) -> str:
    return f"tuning {kernels} kernels: {done}/{trials} trials, about {_duration(left_s)} left"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _counting(measured: Callable[[int], None]) -> Any:
    """A MetaSchedule measure callback that hands `measured` the number of candidates of each batch."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class Counting(PyMeasureCallback):
        def apply(self, task_scheduler: Any, task_id: int, candidates: Any, builds: Any, runs: Any) -> None:
            measured(len(candidates))

    return Counting()


def _build_candidate(module: Any, target: Any, _params: Any) -> Any:
    """MetaSchedule's default candidate build, less its import of every tensor intrinsic.

    That import takes about 20 s, and MetaSchedule pays it in fresh worker
    processes for every batch of candidates; float32 CPU schedules use none.
    """
    from tvm.driver import build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(module), target=target)


def _export_candidate(module: Any) -> str:
    """A candidate's build linked here into a shared library (TVM's default is a tar the runner links): a remote
    device then needs no C toolchain."""
    path = os.path.join(tempfile.mkdtemp(prefix="ehdnas-candidate-"), "candidate.so")
    module.export_library(path)
    return path


def _vm(executable: Any) -> Any:
    import tvm
    from tvm import relax

    return relax.VirtualMachine(executable, tvm.cpu())


def _load_vm(library: Path) -> Any:
    import tvm

    return _vm(tvm.runtime.load_module(str(library)))


def _export(executable: Any, library: Path) -> bool:
    """Write the built library (under a temporary name, then renamed); False if it cannot be linked here."""
    partial = library.with_name(f"{library.stem}.{os.getpid()}.partial.so")
    try:
        with redirected_output(os.devnull):
            executable.export_library(str(partial))
    except Exception:  # no C toolchain to link the library: the in-memory build serves this process
        partial.unlink(missing_ok=True)
        return False
    os.replace(partial, library)
    return True
