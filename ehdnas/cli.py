"""The `ehdnas` command: a thin face over the library functions the server also calls."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from backends.protocol import TimingProtocol
from ehdnas.core.errors import UserError

app = typer.Typer(
    help="Hardware-aware neural architecture search: measure, model and search for a target.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)
if not console.is_terminal:  # piped or logged: don't squeeze tables into 80 columns
    console.width = 160

# Options shared by the commands that measure.
TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Target name (see `ehdnas targets`).")]
TargetOptions = Annotated[
    list[str] | None, typer.Option("--option", "-o", help="Target setting KEY=VALUE, e.g. threads=2.")
]
AcceleratorOpt = Annotated[
    Path | None,
    typer.Option("--accelerator", help="A TOML accelerator description for a systolic-* target (see README)."),
]
SpaceOptions = Annotated[
    list[str] | None, typer.Option("--space-option", help="Space setting KEY=VALUE, e.g. layers=5.")
]
RepeatsOpt = Annotated[int, typer.Option("--repeats", help="Minimum timed runs per model.")]
MinTimeOpt = Annotated[float, typer.Option("--min-time", help="Minimum total timed seconds per model.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Untimed warm-up runs per model.")]
MaxCvOpt = Annotated[
    float, typer.Option("--max-cv", help="Time a model again (twice at most) while its cv (std/mean) is above this.")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the measurement store (default: env EHDNAS_DB, else a file in the user data dir).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]


DEFAULT_PROTOCOL = TimingProtocol()
NOISY_CV = 0.10  # coefficient of variation above which the table flags a measurement


@contextmanager
def _progress(total: int, what: str) -> Iterator[Any]:
    """A progress callback: a live bar on a terminal, one line per item otherwise (logs, CI)."""
    if not err.is_terminal:

        def line(done: int, total_: int, label: str) -> None:
            err.print(f"[{done}/{total_}] {what} {label}", markup=False, highlight=False, soft_wrap=True)

        yield line
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done, total_, label: bar.update(task, completed=done)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


@app.command()
def targets(as_json: JsonOpt = False) -> None:
    """List every target, whether it is usable on this machine, and why not."""
    from backends import list_targets

    rows = list_targets()
    if as_json:
        _print_json(rows)
        return
    table = Table("target", "available", "reason", "description")
    for row in rows:
        table.add_row(row["name"], "yes" if row["available"] else "no", row["reason"], row["description"])
    console.print(table)


@app.command()
def spaces(as_json: JsonOpt = False) -> None:
    """List every search space with its decisions and default settings."""
    from ehdnas.spaces import get_space, list_spaces

    rows = []
    for name in list_spaces():
        space = get_space(name)
        rows.append(
            {
                "name": name,
                "decisions": len(space.decisions),
                "choices": {d.name: list(d.choices) for d in space.decisions},  # each decision's own list
                "settings": space.config_dict(),
            }
        )
    if as_json:
        _print_json(rows)
        return
    table = Table("space", "decisions", "default settings")
    for row in rows:
        table.add_row(row["name"], str(row["decisions"]), " ".join(f"{k}={v}" for k, v in row["settings"].items()))
    console.print(table)


def _results_table(target: str, results: list[Any]) -> Table:
    table = Table(title=f"latency on {target} (ms)")
    for column in ("model", "input", "MMACs", "median", "mean", "std", "p10", "p90", "n", "cv %", "source"):
        table.add_column(column, justify="left" if column in ("model", "input", "source") else "right")
    for r in results:
        s, model = r.measurement.latency_ms, r.measurement.model
        shape = " ".join("x".join(map(str, i["shape"])) for i in model["inputs"])
        macs = "?" if model.get("macs") is None else f"{model['macs'] / 1e6:.1f}"
        table.add_row(
            r.model, shape, macs, f"{s.median:.3f}", f"{s.mean:.3f}", f"{s.std:.3f}", f"{s.p10:.3f}", f"{s.p90:.3f}",
            str(s.n), f"{100 * s.cv:.1f}" + (" !" if s.cv > NOISY_CV else ""), _source(r),
        )  # fmt: skip
    if any(r.measurement.latency_ms.cv > NOISY_CV for r in results):
        table.caption = f"! cv above {NOISY_CV:.0%}: noisy; use a quieter machine or more --repeats / --min-time"
    return table


def _runner(target: str, options: list[str] | None, accelerator: Path | None) -> Any:
    """The target's runner; `--accelerator FILE` is the systolic targets' `accelerator` setting."""
    from backends import get_target

    if accelerator is not None and not target.startswith("systolic-"):
        raise UserError(f"--accelerator goes with a systolic-* target, not {target!r}")
    return get_target(target, [*(options or []), *([f"accelerator={accelerator}"] if accelerator else [])])


def _layers_table(result: Any) -> Table:
    table = Table(title=f"{result.model}: per layer")
    for column in ("layer", "kind", "cycles", "compute", "stall", "util %", "DRAM KB"):
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for layer in result.layers:
        table.add_row(
            layer["name"], layer["kind"], f"{layer['cycles']:,}", f"{layer['compute_cycles']:,}",
            f"{layer['stall_cycles']:,}", f"{100 * layer['utilization']:.1f}",
            f"{(layer['dram_read_bytes'] + layer['dram_write_bytes']) / 1024:.1f}",
        )  # fmt: skip
    details = result.measurement.details
    table.caption = (
        f"total {details['cycles']:,} cycles ({details['stall_cycles']:,} stalled), array utilisation "
        f"{100 * details['utilization']:.1f}%, {details['dram_bytes'] / 2**20:.2f} MiB DRAM traffic; "
        f"simulated ({details['engine']}): deterministic, spread 0"
    )
    return table


def _source(result: Any) -> str:
    """Where a figure came from, with the build or conversion cost of compiled targets."""
    details = result.measurement.details
    text = "store" if result.cached else "measured"
    if "compile_s" in details:
        text += f"; built in {details['compile_s']:.1f} s" + (" (cached build)" if details.get("from_cache") else "")
    if "convert_s" in details:
        text += (
            f"; converted in {details['convert_s']:.1f} s"
            + (f", quantized in {details['quantize_s']:.1f} s" if "quantize_s" in details else "")
            + (" (cached)" if details.get("from_cache") else "")
        )
    if "ops_on_edgetpu" in details:
        stop = details.get("stops_mapping")
        text += f"; {details['ops_on_edgetpu']}/{details['ops_total']} ops on the Edge TPU" + (
            f", stopped by {stop['op']} ({stop['status']})" if stop else ""
        )
    if details.get("deterministic"):
        text += f"; simulated, {details['cycles']:,} cycles, spread 0"
    if details.get("kernels_tuned_now"):
        text += f"; tuned {details['kernels_tuned_now']} kernels in {details['tune_s']:.0f} s"
    return text


@app.command()
def benchmark(
    target: TargetOpt,
    model: Annotated[list[Path] | None, typer.Option("--model", "-m", help="ONNX file(s) to measure.")] = None,
    space: Annotated[str | None, typer.Option("--space", help="Measure architectures of this space.")] = None,
    samples: Annotated[int | None, typer.Option("--samples", help="Sampled architectures [1].")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the architecture sample.")] = 0,
    arch: Annotated[
        list[str] | None, typer.Option("--arch", help="An architecture of --space, text or JSON form.")
    ] = None,
    input_shape: Annotated[
        list[str] | None, typer.Option("--input-shape", help="Static input shape: 1,3,224,224 or NAME=1,3,224,224.")
    ] = None,
    option: TargetOptions = None,
    accelerator: AcceleratorOpt = None,
    space_option: SpaceOptions = None,
    repeats: RepeatsOpt = DEFAULT_PROTOCOL.min_repeats,
    min_time: MinTimeOpt = DEFAULT_PROTOCOL.min_time_s,
    warmup: WarmupOpt = DEFAULT_PROTOCOL.warmup,
    max_cv: MaxCvOpt = DEFAULT_PROTOCOL.max_cv,
    fresh: Annotated[bool, typer.Option("--fresh", help="Measure again even if the store has it.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure ONNX files (--model) or architectures of a space (--space) on a target."""
    from backends import parse_input_shapes
    from ehdnas.pipeline import measure
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space

    if bool(model) == bool(space):
        raise UserError("give either --model FILE.onnx or --space NAME")
    if model and (samples is not None or arch or space_option):
        raise UserError("--samples, --arch and --space-option go with --space, not --model")
    if space and input_shape:
        raise UserError("--input-shape goes with --model; a space's input shape is set by --space-option")
    runner = _runner(target, option, accelerator)
    protocol = measure.timing_protocol(repeats, min_time, warmup, max_cv)
    if model:
        shapes = parse_input_shapes(input_shape or [])
        with _progress(len(model), "measured") as progress:
            results = measure.benchmark_files(runner, model, protocol, shapes, progress)
    else:
        assert space is not None
        the_space = get_space(space, space_option or [])
        if samples is not None and samples < 1:
            raise UserError("--samples must be at least 1")
        archs = [the_space.parse(text) for text in arch or []]
        if samples is not None or not archs:
            archs += the_space.sample_many(samples or 1, seed)
        store = Store(db)
        with _progress(len(archs), "measured") as progress:
            results = measure.measure_archs(runner, the_space, archs, protocol, store, fresh, progress)
    if as_json:
        _print_json(measure.report(runner, protocol, results))
        return
    for r in results:
        if r.layers:
            console.print(_layers_table(r))
    console.print(_results_table(runner.name, results))
    for r in results:
        if r.arch:
            console.print(f"{r.model}: {r.arch}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def collect(
    space: Annotated[str, typer.Option("--space", help="Search space to sample.")],
    target: TargetOpt,
    samples: Annotated[int, typer.Option("--samples", help="Size of the seeded sample set to have measured.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample set.")] = 0,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="uniform: the first N of the seeded sample; uncertain: grow the store to N measurements, "
            "measuring what a predictor ensemble is least sure of.",
        ),
    ] = "uniform",
    option: TargetOptions = None,
    accelerator: AcceleratorOpt = None,
    space_option: SpaceOptions = None,
    repeats: RepeatsOpt = DEFAULT_PROTOCOL.min_repeats,
    min_time: MinTimeOpt = DEFAULT_PROTOCOL.min_time_s,
    warmup: WarmupOpt = DEFAULT_PROTOCOL.warmup,
    max_cv: MaxCvOpt = DEFAULT_PROTOCOL.max_cv,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure sampled architectures into the store; rerun the same command to resume."""
    from ehdnas.pipeline import measure
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space

    if samples < 1:
        raise UserError("--samples must be at least 1")
    if strategy not in measure.STRATEGIES:
        raise UserError(f"unknown --strategy {strategy!r}; known: {', '.join(measure.STRATEGIES)}")
    runner = _runner(target, option, accelerator)
    the_space = get_space(space, space_option or [])
    protocol = measure.timing_protocol(repeats, min_time, warmup, max_cv)
    store = Store(db)
    done = 0

    def track(count: int, total: int, label: str) -> None:
        nonlocal done
        done = count
        progress(count, total, label)

    try:
        with _progress(samples, "measured") as progress:
            result = measure.STRATEGIES[strategy](runner, the_space, samples, seed, protocol, store, track)
    except KeyboardInterrupt:
        err.print(f"interrupted: {done} new measurements are stored; run the same command again to resume")
        raise typer.Exit(130) from None
    summary = {"space": space, "target": runner.name, "strategy": strategy, **result.to_dict(), "db": store.url}
    if as_json:
        _print_json(summary)
    else:
        console.print(
            f"{result.measured} measured ({result.remeasured} of them again: too noisy before), "
            f"{result.already_stored} already stored, "
            f"{result.samples} architectures of {space} on {runner.name} in {store.url}",
            markup=False,
            highlight=False,
        )


@app.command("train-predictor")
def train_predictor(
    space: Annotated[str, typer.Option("--space", help="Search space of the measurements.")],
    target: TargetOpt,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to save the best differentiable predictor [the user data dir, where search looks]."
        ),
    ] = None,
    kinds: Annotated[
        str | None, typer.Option("--kinds", help="Comma-separated kinds to train [every kind: mlp,lut,flops,xgboost].")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and of the initialisations.")] = 0,
    option: TargetOptions = None,
    accelerator: AcceleratorOpt = None,
    space_option: SpaceOptions = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train every predictor kind on the stored measurements, compare them on a held-out split, save the best."""
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space

    runner = _runner(target, option, accelerator)
    the_space = get_space(space, space_option or [])
    store = Store(db)
    from perf_models.kinds import kind_names

    kind_list = [k.strip() for k in kinds.split(",") if k.strip()] if kinds is not None else kind_names()
    report, data, out = _train_and_save(runner, the_space, store, out, kind_list, seed, option, space_option)
    if as_json:
        _print_json({**report.metrics, "best": report.best, "split": report.sizes, "out": str(out)})
        return
    table = Table(title=f"{space} on {runner.name}: held-out {report.sizes['test']} of {len(data)} measurements")
    for column in ("kind", "MAPE %", "RMSE ms", "±5%", "±10%", "Kendall τ", "Spearman ρ", "fit s", ""):
        table.add_column(column, justify="left" if column in ("kind", "") else "right")
    for kind, m in report.metrics.items():
        table.add_row(
            kind, f"{m['mape']:.2f}", f"{m['rmse_ms']:.4f}", f"{100 * m['acc5']:.1f}", f"{100 * m['acc10']:.1f}",
            f"{m['kendall_tau']:.3f}", f"{m['spearman_rho']:.3f}", f"{m['fit_s']:.1f}",
            "saved" if kind == report.best else "",
        )  # fmt: skip
    console.print(table)
    console.print(f"saved the {report.best} predictor to {out}", markup=False, highlight=False, soft_wrap=True)


def _flags(option: list[str] | None, space_option: list[str] | None) -> str:
    """The settings flags to repeat in a command we suggest."""
    return "".join(f" --space-option {o}" for o in space_option or []) + "".join(f" -o {o}" for o in option or [])


def _train_and_save(
    runner: Any,
    space: Any,
    store: Any,
    out: Path | None,
    kinds: list[str],
    seed: int,
    option: list[str] | None,
    space_option: list[str] | None,
) -> tuple[Any, Any, Path]:
    """ehdnas.pipeline.predictors.train_and_save with progress, and the collect command to run when data is short."""
    from ehdnas.pipeline.key import MeasurementKey
    from ehdnas.pipeline.predictors import train_and_save
    from perf_models.train import TooFewMeasurements

    try:
        with _progress(len(kinds), "trained") as progress:
            return train_and_save(store, space, MeasurementKey.of(runner, space), out, kinds, seed, progress)
    except TooFewMeasurements as short:
        flags = _flags(option, space_option)
        raise UserError(
            f"only {short.have} measurements of {space.name} on {runner.name} for this host and settings in "
            f"{store.url}; {short.missing} more are needed: run "
            f"`ehdnas collect --space {space.name} --target {runner.name} --samples 200{flags}`"
        ) from None


def _ensure_predictor(
    runner: Any, space: Any, path: Path | None, auto: bool, samples: int, seed: int, db: str | None,
    option: list[str] | None, space_option: list[str] | None,
) -> Any:  # fmt: skip
    """The search's predictor (`ensure_predictor`); without one, the commands that make it."""
    from ehdnas.pipeline.predictors import NoPredictor, ensure_predictor
    from ehdnas.pipeline.store import Store

    try:
        with _progress(samples, "measured") as progress:
            return ensure_predictor(runner, space, path, samples if auto else None, seed, Store(db), progress)
    except NoPredictor as missing:
        flags = _flags(option, space_option)
        raise UserError(
            f"{missing}; run `ehdnas collect --space {space.name} --target {runner.name} --samples {samples}{flags}` "
            f"and `ehdnas train-predictor --space {space.name} --target {runner.name}{flags}`, or add --auto-predictor"
        ) from None


def _show_flow(event: dict[str, Any]) -> None:
    """One line per finished stage of a flownas search."""
    stage = event["stage"]
    if stage in ("flow-train", "supernet"):
        what = "teacher" if stage == "flow-train" else "supernet"
        extra = f", val EPE {event['val_epe']:.3f} px" if "val_epe" in event else ""
        line = f"{what} {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}{extra}, {event['epoch_s']:.1f} s"
    elif stage == "evolution":
        line = (
            f"evolution {event['generation']}/{event['generations']}: best fitness {event['best_fitness']:.3f} "
            f"at {event['best_latency_ms']:.3f} ms"
        )
    elif stage == "resume":
        line = f"resumed: the {event['what']} of this folder"
    else:
        return
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _flow_search(
    runner: Any, space_option: list[str] | None, data: str | None, pairs: str | None, budget_ms: float,
    latency_from: str, epochs: int, teacher_epochs: int, batch_size: int, evolution: list[str] | None, seed: int,
    predictor: tuple[Path | None, bool, int], db: str | None, option: list[str] | None, out: Path, as_json: bool,
) -> None:  # fmt: skip
    """`search --space flownas`: teacher, supernet, evolution under the budget; the chosen encoder measured."""
    from ehdnas.methods.flownas import flow_search_settings, run_flow_search
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space

    space = get_space("flownas", space_option or [])
    try:
        counts = [int(n) for n in pairs.split(",")] if pairs else []
    except ValueError:
        raise UserError(f"--pairs {pairs!r}: expected three counts like 320,48,48") from None
    settings = flow_search_settings(
        runner, space, data, budget_ms, latency_from, epochs, teacher_epochs, batch_size, evolution or [], seed, counts
    )
    the_predictor = None
    if settings.latency == "predictor":
        path, auto, samples = predictor
        the_predictor = _ensure_predictor(runner, space, path, auto, samples, seed, db, option, space_option)
    result = run_flow_search(settings, the_predictor, Store(db), out, _show_flow)
    if as_json:
        _print_json(result)
        return
    measured, teacher = result["measured_latency_ms"]["median"], result["teacher"]
    console.print(
        f"encoder: {result['encoder']}\ntest EPE {result['test_epe']:.3f} px (teacher {teacher['test_epe']:.3f}); "
        f"latency on {runner.name}: measured {measured:.3f} ms, budget {budget_ms:g} ms "
        f"{'met' if result['meets_budget_measured'] else 'NOT met'} (teacher {teacher['measured_latency_ms']:.3f} ms); "
        f"{100 * result['evolution']['rejected_share']:.0f}% of the candidates drawn were over the budget; "
        f"results in {out}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


@app.command()
def search(
    target: TargetOpt,
    out: Annotated[Path, typer.Option("--out", help="Result folder (resumes the search it holds).")],
    space: Annotated[str, typer.Option("--space", help="Search space: darts (EH-DNAS, DCP-NAS) or flownas.")] = "darts",
    lambdas: Annotated[
        str,
        typer.Option(
            "--lambda",
            "--lambdas",
            help="Weight of the hardware term (0 = plain DARTS); several, comma-separated, run a sweep.",
        ),
    ] = "0.5",
    loss_form: Annotated[
        str, typer.Option("--loss-form", help="eh-dnas, add#linear, mul#log or hinge (see perf_models.loss).")
    ] = "eh-dnas",
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="darts: digits, cifar10:DIR or folder:DIR; flownas: photos, chairs:DIR, sintel:DIR."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Search epochs (flownas: supernet training).")] = 25,
    retrain_epochs: Annotated[int, typer.Option("--retrain-epochs", help="Epochs to retrain the result.")] = 30,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    arch_lr: Annotated[
        float, typer.Option("--arch-lr", help="Adam learning rate of alpha (DARTS: 3e-4; raise it for short searches).")
    ] = 3e-4,
    gumbel_tau: Annotated[float, typer.Option("--gumbel-tau", help="> 0: Gumbel-softmax at this temperature.")] = 0.0,
    target_ms: Annotated[float, typer.Option("--target-ms", help="Latency budget of the hinge form (ms).")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    method: Annotated[
        str,
        typer.Option(
            "--method", help="eh-dnas, or dcp-nas: a 1-bit child under a real-valued parent (the binary space)."
        ),
    ] = "eh-dnas",
    dcp_lambda: Annotated[
        float, typer.Option("--dcp-lambda", help="DCP-NAS: tangent-propagation weight; 0 is CP-NAS.")
    ] = 5e-3,
    dcp_mu: Annotated[float, typer.Option("--dcp-mu", help="1-bit weights' reconstruction-loss weight.")] = 0.2,
    latency_budget: Annotated[
        float, typer.Option("--latency-budget", help="flownas: the encoder's latency budget on the target (ms).")
    ] = 0.0,
    latency_from: Annotated[
        str, typer.Option("--latency-from", help="flownas: check the budget by 'predictor' or 'measured' latency.")
    ] = "predictor",
    teacher_epochs: Annotated[int, typer.Option("--teacher-epochs", help="flownas: teacher training epochs.")] = 10,
    pairs: Annotated[
        str | None, typer.Option("--pairs", help="flownas: TRAIN,VAL,TEST pairs of the flow data [320,48,48].")
    ] = None,
    evolution: Annotated[
        list[str] | None,
        typer.Option("--evolution", help="flownas: evolution setting KEY=VALUE, e.g. population=50, generations=20."),
    ] = None,
    predictor: Annotated[
        Path | None, typer.Option("--predictor", help="Predictor file [the one train-predictor saved by default].")
    ] = None,
    auto_predictor: Annotated[
        bool, typer.Option("--auto-predictor", help="Without a predictor: collect measurements and train one first.")
    ] = False,
    auto_samples: Annotated[int, typer.Option("--auto-samples", help="Measurements --auto-predictor collects.")] = 200,
    option: TargetOptions = None,
    accelerator: AcceleratorOpt = None,
    space_option: SpaceOptions = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """EH-DNAS (or DCP-NAS, --method dcp-nas): search with a latency predictor for the target, retrain, export
    and measure the result. --space flownas: FlowNAS's encoder search under --latency-budget on the target.

    With several lambdas (`ehdnas sweep --lambdas 0.25,0.5,1 ...`) it runs one search per lambda, the lambda-0
    DARTS baseline included, into DIR/lambda-<L>, and plots accuracy against measured latency in DIR/pareto.png.
    """
    from ehdnas.methods.darts import run_search, run_sweep, search_settings, search_space

    try:
        lam_values = [float(v) for v in lambdas.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--lambda {lambdas!r}: expected numbers like 0.5 or 0,0.5,1") from None
    if not lam_values:
        raise UserError("--lambda needs at least one value")
    runner = _runner(target, option, accelerator)
    if space == "flownas":  # FlowNAS: an encoder under a latency budget, by evolution over a supernet
        _flow_search(
            runner, space_option, data, pairs, latency_budget, latency_from, epochs, teacher_epochs, batch_size,
            evolution, seed, (predictor, auto_predictor, auto_samples), db, option, out, as_json,
        )  # fmt: skip
        return
    the_space = search_space(method, space, space_option or [])
    settings = search_settings(
        runner, the_space, lam_values[0], data or "digits", loss_form, epochs, retrain_epochs, batch_size, arch_lr,
        gumbel_tau, target_ms, seed, method, dcp_lambda, dcp_mu,
    )  # fmt: skip
    the_predictor = _ensure_predictor(
        runner, the_space, predictor, auto_predictor, auto_samples, seed, db, option, space_option
    )

    def show(event: dict[str, Any]) -> None:
        if event["stage"] == "search":
            err.print(
                f"search {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}, "
                f"val acc {event['val_acc']:.3f}, predicted {event['predicted_ms_soft']:.3f} ms "
                f"(derived {event['predicted_ms_derived']:.3f} ms), {event['epoch_s']:.1f} s",
                markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip
        elif event["stage"] == "sweep":
            err.print(f"sweep {event['index']}/{event['count']}: lambda {event['lambda']:g}")
        elif event["stage"] in ("retrain", "resume"):
            err.print(f"{event['stage']} {event['epoch']}/{event.get('epochs', epochs)}", markup=False, highlight=False)

    if len(lam_values) > 1:
        sweep = run_sweep(settings, lam_values, the_predictor, out, show)
        if as_json:
            _print_json(sweep)
            return
        table = Table("λ", "test accuracy", "measured ms", "predicted ms", "speed-up vs λ=0", title=f"sweep in {out}")
        for row in sweep["runs"]:
            table.add_row(
                f"{row['lambda']:g}", f"{row['test_accuracy']:.4f}", f"{row['measured_ms']:.3f}",
                f"{row['predicted_ms']:.3f}", f"{row['speedup_vs_lambda0']:.2f}x",
            )  # fmt: skip
        console.print(table)
        return
    result = run_search(settings, the_predictor, out, show)
    if as_json:
        _print_json(result)
        return
    measured = result["measured_latency_ms"]["median"]
    on_target = result.get("on_target")
    accuracy = f"test accuracy {result['test_accuracy']:.4f}" + (
        f" (float32), {on_target['test_accuracy']:.4f} in {on_target['precision']} on the target" if on_target else ""
    )
    if "memory_mbits" in result:
        ratio = result["real_memory_mbits"] / result["memory_mbits"]
        accuracy += f" (1-bit network: {result['memory_mbits']:.3f} Mbit, {ratio:.1f}x less than real-valued)"
    console.print(
        f"genotype: {result['genotype']}\n{accuracy}; latency on {runner.name}: "
        f"measured {measured:.3f} ms, predicted {result['predicted_latency_ms']:.3f} ms "
        f"({100 * result['prediction_error']:+.1f}%); results in {out}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


app.command("sweep", help="Alias of search, for several --lambdas: one search each, and the Pareto plot.")(search)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes running jobs (0: API only).")] = 1,
    jobs_dir: Annotated[
        Path | None, typer.Option("--jobs-dir", help="Where job folders go [beside a SQLite store].")
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option("--limit", help="Raise or lower a bound on what one job may ask, e.g. epochs=500 (see README)."),
    ] = None,
    db: DbOpt = None,
) -> None:
    """The job server: the HTTP API (DESIGN.md section 3), its status page at /, and the workers."""
    from ehdnas.core.options import make_config, parse_pairs
    from ehdnas.core.paths import default_db_url
    from server.serve import serve as run_server
    from server.specs import Limits

    limits = make_config(Limits, parse_pairs(limit or [], "--limit"), "--limit")
    say = lambda text: err.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    run_server(host, port, db or default_db_url(), workers, jobs_dir, limits, say)


def main() -> None:
    """Console entry point: a user error is one line on stderr and exit status 2."""
    try:
        app()
    except UserError as error:
        err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
