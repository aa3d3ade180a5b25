"""`targets`, `spaces`, `benchmark`, `collect`, `import-measurements`, `train-predictor`: measurements, and
predictors learned from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ehdnas.cli.common import (
    DEFAULT_PROTOCOL,
    AcceleratorOpt,
    ClockOpt,
    DbOpt,
    JsonOpt,
    MaxSpreadOpt,
    MinTimeOpt,
    RepeatsOpt,
    SpaceOptions,
    TargetOpt,
    TargetOptions,
    WarmupOpt,
    _check_paths,
    _checked,
    _flags,
    _print_json,
    _progress,
    _status,
    _target_options,
    app,
    console,
    err,
    tick_lines,
)
from ehdnas.core.errors import UserError


@app.command()
def targets(as_json: JsonOpt = False) -> None:
    """List every target, whether it is usable on this machine, and why not."""
    from backends import list_targets

    rows = list_targets()
    if as_json:
        _print_json(rows)
        return
    table = Table("target", "available", "reason", "description", "defaults (-o NAME=VALUE)")
    for row in rows:
        defaults = " ".join(f"{name}={value}" for name, value in row["settings"].items())
        table.add_row(row["name"], "yes" if row["available"] else "no", Text(row["reason"]), Text(row["description"]),
                      Text(defaults))  # fmt: skip
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
    for column in ("model", "input", "MMACs", "median", "mean", "std", "p10", "p90", "n", "cv %", "spread %", "source"):
        table.add_column(column, justify="left" if column in ("model", "input", "source") else "right")
    for r in results:
        s, model = r.measurement.latency_ms, r.measurement.model
        shape = " ".join("x".join(map(str, i["shape"])) for i in model["inputs"])
        macs = "?" if model.get("macs") is None else f"{model['macs'] / 1e6:.1f}"
        spread = f"{100 * r.measurement.spread():.1f}" + (" !" if r.measurement.flagged else "")
        table.add_row(
            r.model, shape, macs, f"{s.median:.3f}", f"{s.mean:.3f}", f"{s.std:.3f}", f"{s.p10:.3f}", f"{s.p90:.3f}",
            str(s.n), f"{100 * s.cv:.1f}", spread, _source(r),
        )  # fmt: skip
    captions = sorted({r.measurement.details["note"] for r in results if "note" in r.measurement.details})
    if any(r.measurement.flagged for r in results):
        captions.append(
            "! flagged: kept rounds further apart than --max-spread after retries; not used for training; "
            "use a quieter machine"
        )
    table.caption = "\n".join(captions) or None
    return table


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


def _report_ticks(runner: Any) -> None:
    """Show the ticks of a runner that reports on its own long work (tvm-llvm's tuning: its expected time,
    then how far it is), as lines above the bar of measured models."""
    if hasattr(runner, "on_event"):
        runner.on_event = tick_lines()


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
    max_spread: MaxSpreadOpt = DEFAULT_PROTOCOL.max_spread,
    clock: ClockOpt = DEFAULT_PROTOCOL.clock,
    fresh: Annotated[bool, typer.Option("--fresh", help="Measure again even if the store has it.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure ONNX files (--model) or architectures of a space (--space) on a target."""
    _check_paths(db, store=bool(space))
    from backends import parse_input_shapes
    from ehdnas.methods.requests import check_files, check_measure
    from ehdnas.pipeline import measure
    from ehdnas.pipeline.store import Store

    if bool(model) == bool(space):
        raise UserError("give either --model FILE.onnx or --space NAME")
    if model and (samples is not None or arch or space_option):
        raise UserError("--samples, --arch and --space-option go with --space, not --model")
    if space and input_shape:
        raise UserError("--input-shape goes with --model; a space's input shape is set by --space-option")
    target_options = _target_options(target, option, accelerator)
    timing = {"repeats": repeats, "min_time": min_time, "warmup": warmup, "max_spread": max_spread, "clock": clock}
    if model:
        shapes = parse_input_shapes(input_shape or [])
        runner, protocol = _checked(check_files, target, target_options, timing, shapes)
        _report_ticks(runner)
        with _progress(len(model), "measured") as progress:
            results = measure.benchmark_files(runner, model, protocol, shapes, progress)
    else:
        assert space is not None
        checked = _checked(check_measure, target, target_options, space, space_option or [], timing, archs=arch or [],
                           samples=samples, seed=seed)  # fmt: skip
        runner, the_space, protocol = checked.runner, checked.space, checked.protocol
        _report_ticks(runner)
        archs = list(checked.archs)
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
    max_spread: MaxSpreadOpt = DEFAULT_PROTOCOL.max_spread,
    clock: ClockOpt = DEFAULT_PROTOCOL.clock,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure sampled architectures into the store; rerun the same command to resume."""
    _check_paths(db)
    from ehdnas.methods.requests import check_measure
    from ehdnas.pipeline import measure
    from ehdnas.pipeline.store import Store

    timing = {"repeats": repeats, "min_time": min_time, "warmup": warmup, "max_spread": max_spread, "clock": clock}
    checked = _checked(check_measure, target, _target_options(target, option, accelerator), space, space_option or [],
                       timing, samples=samples, seed=seed, strategy=strategy)  # fmt: skip
    runner, the_space, protocol = checked.runner, checked.space, checked.protocol
    _report_ticks(runner)
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
    _check_paths(db, file=out, cache=False)
    from ehdnas.methods.requests import check_train
    from ehdnas.pipeline.store import Store
    from perf_models.kinds import kind_names

    kind_list = [k.strip() for k in kinds.split(",") if k.strip()] if kinds is not None else kind_names()
    runner, the_space = _checked(check_train, target, _target_options(target, option, accelerator), space,
                                 space_option or [], kind_list, seed)  # fmt: skip
    store = Store(db)
    report, data, out = _train_and_save(runner, the_space, store, out, kind_list, seed, option, space_option)
    if as_json:
        selection = {"validation": report.validation, "reason": report.reason}
        _print_json({**report.metrics, "best": report.best, **selection, "split": report.sizes, "out": str(out)})
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
    console.print(f"chose {report.reason}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"saved the {report.best} predictor to {out}", markup=False, highlight=False, soft_wrap=True)


@app.command("import-measurements")
def import_measurements(
    file: Annotated[
        Path,
        typer.Argument(help="A .csv file with a header, or a .json list of objects: arch or index, latency, unit."),
    ],
    space: Annotated[str, typer.Option("--space", help="Search space of the architectures.")],
    device: Annotated[str, typer.Option("--device", help="The device's name: the target becomes external:NAME.")],
    space_option: SpaceOptions = None,
    value_column: Annotated[str, typer.Option("--value-column", help="The column of the latencies.")] = "latency",
    unit: Annotated[str, typer.Option("--unit", help="Unit of rows without a unit column: ms, us or s.")] = "ms",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the device's stored figures of the same architectures.")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store latencies measured elsewhere (HW-NAS-Bench-style tables) under target external:NAME, with provenance;
    train-predictor and search then take --target external:NAME."""
    _check_paths(db)
    from ehdnas.pipeline import imports
    from ehdnas.pipeline.store import Store
    from ehdnas.spaces import get_space

    the_space = get_space(space, space_option or [])
    summary = imports.import_measurements(Store(db), the_space, device, file, value_column, unit, replace)
    if as_json:
        _print_json(summary)
        return
    console.print(
        f"{summary['stored']} stored, {summary['already_stored']} already stored (--replace replaces them), "
        f"{summary['rows']} rows of {file} (sha256 {summary['sha256'][:12]}) as {space} on {summary['target']} in "
        f"{summary['db']}; next: ehdnas train-predictor --space {space} --target {summary['target']}"
        f"{_flags(None, space_option)}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


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
        with _status() as status:
            return train_and_save(store, space, MeasurementKey.of(runner, space), out, kinds, seed, status)
    except TooFewMeasurements as short:
        flags = _flags(option, space_option)
        if not runner.measures:  # a device measured elsewhere: only more of its figures help
            raise UserError(
                f"only {short.have} imported measurements of {space.name} on {runner.name} with these settings in "
                f"{store.url}; {short.missing} more are needed: import them (ehdnas import-measurements)"
            ) from None
        raise UserError(
            f"only {short.have} measurements of {space.name} on {runner.name} for this host and settings in "
            f"{store.url}; {short.missing} more are needed: run "
            f"`ehdnas collect --space {space.name} --target {runner.name} --samples 200{flags}`{short.noisy()}"
        ) from None
