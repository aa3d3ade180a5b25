"""`methods`, `search` (and its alias `sweep`): a registered method on a space, for a target."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from rich.table import Table

from ehdnas.cli.common import (
    AcceleratorOpt,
    DbOpt,
    JsonOpt,
    SpaceOptions,
    TargetOpt,
    TargetOptions,
    _check_paths,
    _escaped,
    _flags,
    _print_json,
    _status,
    _target_options,
    _with_flag,
    app,
    console,
    err,
)
from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, is_tick


def _ensure_predictor(
    runner: Any, space: Any, path: Path | None, auto: bool, samples: int, seed: int, db: str | None,
    option: list[str] | None, space_option: list[str] | None, on_event: Events,
) -> Any:  # fmt: skip
    """The search's predictor (`ensure_predictor`); without one, the commands that make it."""
    from ehdnas.pipeline.predictors import NoPredictor, ensure_predictor
    from ehdnas.pipeline.store import Store

    try:
        return ensure_predictor(runner, space, path, samples if auto else None, seed, Store(db), on_event)
    except NoPredictor:
        raise UserError(_what_to_run(space.name, runner.name, samples, option, space_option)) from None


def _what_to_run(
    space: str, target: str, samples: int, option: list[str] | None, space_option: list[str] | None
) -> str:
    """No predictor for this search: the commands that make one."""
    flags = _flags(option, space_option)
    return (
        f"no latency predictor for {space} on {target} with these settings; run `ehdnas collect --space {space} "
        f"--target {target} --samples {samples}{flags}` and `ehdnas train-predictor --space {space} --target {target}"
        f"{flags}`, or add --auto-predictor"
    )


def _show_flow(event: dict[str, Any]) -> None:
    """One line per finished stage of a flownas search."""
    stage = event["stage"]
    if stage in ("flow-train", "supernet"):
        what = "teacher" if stage == "flow-train" else "supernet"
        extra = f", val EPE {event['val_epe']:.3f} px" if "val_epe" in event else ""
        line = f"{what} {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}{extra}, {event['epoch_s']:.1f} s"
    elif stage in ("evolution", "sample"):
        best = (f"best accuracy {event['best_accuracy']:.4g}" if "best_accuracy" in event  # a tabular search
                else f"best fitness {event['best_fitness']:.3f}")  # fmt: skip
        line = f"{stage} {event['generation']}/{event['generations']}: {best} at {event['best_latency_ms']:.3f} ms"
    elif stage == "resume":
        line = f"resumed: the {event['what']} of this folder"
    else:
        return
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _show(event: dict[str, Any]) -> None:
    """One line per finished epoch or stage of any method's search (and of making its predictor)."""
    if event["stage"] == "predictor":
        err.print(
            f"predictor: {event['kind']} trained on {event['measurements']} measurements, test MAPE "
            f"{event['test_mape']:.1f}%, saved to {event['path']}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    elif event["stage"] == "search":
        measured = f", measured {event['follow_measured_ms']:.3f} ms" if "follow_measured_ms" in event else ""
        err.print(
            f"search {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}, "
            f"val acc {event['val_acc']:.3f}, alpha max {event['alpha_max']:.2f}; derived network predicted "
            f"{event['predicted_ms_derived']:.3f} ms{measured}; {event['epoch_s']:.1f} s",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    elif event["stage"] == "sweep":
        err.print(f"sweep {event['index']}/{event['count']}: lambda {event['lambda']:g}")
    elif event["stage"] == "retrain" or (event["stage"] == "resume" and "epoch" in event):
        err.print(f"{event['stage']} {event['epoch']}/{event.get('epochs', '?')}", markup=False, highlight=False)
    else:
        _show_flow(event)


@app.command()
def methods(as_json: JsonOpt = False) -> None:
    """List every search method, the spaces it searches and its options with their defaults."""
    from ehdnas.methods.registry import describe, method_names

    rows = [describe(name) for name in method_names()]
    if as_json:
        _print_json(rows)
        return
    table = Table("method", "spaces", "options", "summary")
    for row in rows:
        table.add_row(row["name"], ", ".join(row["spaces"]), ", ".join(row["options"]), row["summary"])
    console.print(table)


def _flag_kind(kind: Any) -> Any:
    """The CLI type of an option of declared type `kind`: lists as comma-separated text, dicts as KEY=VALUE items."""
    origin = get_origin(kind)
    if origin is list:
        return str
    if origin is dict:
        return list[str]
    members = [k for k in get_args(kind) if k is not type(None)]
    return members[0] if origin in (Union, UnionType) else kind


def _cli_value(text: Any, kind: Any, flag: str) -> Any:
    """A flag's value in the form the resolver takes."""
    from ehdnas.core.options import parse_pairs

    origin = get_origin(kind)
    if origin is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if origin is dict:
        return parse_pairs(text, flag)
    return text


def _search(
    target: str, out: Path | None, method: str | None, space: str | None, option: list[str] | None,
    accelerator: Path | None, space_option: list[str] | None, db: str | None, as_json: bool, dry_run: bool,
    **values: Any,
) -> None:  # fmt: skip
    """Resolve and check the method's settings from the flags set, then run it (or, with --dry-run, print them)."""
    if not dry_run:
        from ehdnas.methods.saved import check_saved

        _check_paths(db, folder=out)
        if out is not None:
            check_saved(out)  # what a resume would read, read now
    from ehdnas.core.limits import Limits
    from ehdnas.methods.registry import DEFAULT_METHOD, get_method
    from ehdnas.methods.requests import check_search
    from ehdnas.methods.resolve import SettingErrors, face_options

    kinds = {o.name: o for o, _ in face_options()}
    given = {name: _cli_value(v, kinds[name].kind, kinds[name].flag) for name, v in values.items() if v is not None}
    target_options = _target_options(target, option, accelerator)
    try:
        resolved = check_search(target, target_options, space, space_option or [], method, given, Limits.from_env())
    except SettingErrors as errors:
        first = errors.problems[0]
        if first.field == ("auto_predictor",):  # no predictor: the commands that make one
            samples = given.get("auto_samples", kinds["auto_samples"].default)
            searched = space or get_method(method or DEFAULT_METHOD).spaces[0]
            raise UserError(_what_to_run(searched, target, samples, option, space_option)) from None
        raise UserError(_with_flag(first)) from None
    for note in resolved.notes:
        err.print(f"warning: {note}", markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        if as_json:
            _print_json(resolved.document())
        else:
            console.print_json(data=resolved.document())
        return
    if out is None:
        raise UserError("--out DIR is needed to run a search (the result folder; --dry-run runs nothing)")
    from ehdnas.pipeline.store import Store

    choice, the_predictor = resolved.predictor, None
    with _status() as status:

        def on_event(event: dict[str, Any]) -> None:
            if is_tick(event):
                status(event)
            else:
                _show(event)

        if choice is not None:
            path = Path(choice.predictor) if choice.predictor else None
            the_predictor = _ensure_predictor(
                resolved.runner, resolved.space, path, choice.auto_predictor, choice.auto_samples,
                resolved.settings.seed, db, option, space_option, on_event,
            )  # fmt: skip
        result = resolved.method.run(resolved.settings, the_predictor, Store(db), out, on_event)
    if as_json:
        _print_json(result)
    elif "runs" in result:
        _print_sweep(result, out)
    elif "encoder" in result:
        _print_flow(result, resolved.runner.name, out)
    elif "table_queries" in result:
        _print_tabular(result, resolved.runner.name, out)
    else:
        _print_darts(result, resolved.runner.name, out)


def _print_sweep(sweep: dict[str, Any], out: Path) -> None:
    table = Table("λ", "test accuracy", "measured ms", "predicted ms", "speed-up vs λ=0", title=f"sweep in {out}")
    for row in sweep["runs"]:
        table.add_row(
            f"{row['lambda']:g}", f"{row['test_accuracy']:.4f}", f"{row['measured_ms']:.3f}",
            f"{row['predicted_ms']:.3f} ({100 * row['prediction_error']:+.1f}%)", f"{row['speedup_vs_lambda0']:.2f}x",
        )  # fmt: skip
    console.print(table)
    for row in sweep["runs"]:
        console.print(f"λ={row['lambda']:g}: {row['genotype']}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"accuracy against measured latency: {out / 'pareto.png'}", markup=False, highlight=False)


def _print_flow(result: dict[str, Any], target: str, out: Path) -> None:
    measured, teacher, budget_ms = (
        result["measured_latency_ms"]["median"],
        result["teacher"],
        result["latency_budget_ms"],
    )
    console.print(
        f"encoder: {result['encoder']}\ntest EPE {result['test_epe']:.3f} px (teacher {teacher['test_epe']:.3f}); "
        f"latency on {target}: measured {measured:.3f} ms, budget {budget_ms:g} ms "
        f"{'met' if result['meets_budget_measured'] else 'NOT met'} (teacher {teacher['measured_latency_ms']:.3f} ms); "
        f"{100 * result['evolution']['rejected_share']:.0f}% of the candidates drawn were over the budget; "
        f"results in {out}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _print_tabular(result: dict[str, Any], target: str, out: Path) -> None:
    measured, budget_ms = result["measured_latency_ms"]["median"], result["latency_budget_ms"]
    console.print(
        f"architecture: {result['arch']}\naccuracy {result['accuracy']:.4g} (from the table, "
        f"{result['table_queries']} queries); latency on {target}: measured {measured:.3f} ms, budget "
        f"{budget_ms:g} ms {'met' if result['meets_budget_measured'] else 'NOT met'}; "
        f"{100 * result['evolution']['rejected_share']:.0f}% of the candidates drawn were over the budget; "
        f"results in {out}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _print_darts(result: dict[str, Any], target: str, out: Path) -> None:
    on_target = result.get("on_target")
    accuracy = f"test accuracy {result['test_accuracy']:.4f}" + (
        f" (float32), {on_target['test_accuracy']:.4f} in {on_target['precision']} on the target" if on_target else ""
    )
    if "memory_mbits" in result:
        ratio = result["real_memory_mbits"] / result["memory_mbits"]
        accuracy += f" (1-bit network: {result['memory_mbits']:.3f} Mbit, {ratio:.1f}x less than real-valued)"
    frozen = (
        f"; the predictor as trained said {result['frozen_predicted_latency_ms']:.3f} ms, "
        f"{100 * result['frozen_prediction_error']:+.1f}%, before it followed the search"
        if result.get("followed") else ""
    )  # fmt: skip
    if result["measured_latency_ms"] is None:  # a device measured elsewhere: its predictor is all there is
        latency = f"predicted {result['predicted_latency_ms']:.3f} ms, not measured ({result['note']})"
    else:
        latency = (
            f"measured {result['measured_latency_ms']['median']:.3f} ms, predicted "
            f"{result['predicted_latency_ms']:.3f} ms ({100 * result['prediction_error']:+.1f}%{frozen})"
        )
    console.print(
        f"genotype: {result['genotype']}\n{accuracy}; latency on {target}: {latency}; results in {out}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _search_signature() -> tuple[list[inspect.Parameter], dict[str, Any]]:
    """`search`'s parameters: the fixed ones, then one flag per method option, from the settings classes."""
    from ehdnas.methods.registry import DEFAULT_METHOD

    keyword = inspect.Parameter.KEYWORD_ONLY
    fixed: list[tuple[str, Any, Any]] = [
        ("target", TargetOpt, inspect.Parameter.empty),
        ("out", Annotated[Path | None, typer.Option("--out", help="Result folder (resumes the search it holds).")],
         None),
        ("method", Annotated[str | None, typer.Option("--method", help=_escaped(
            f"Search method (see `ehdnas methods`) [{DEFAULT_METHOD}].", ))], None),
        ("space", Annotated[str | None, typer.Option("--space", help=_escaped("Space to search [the method's "
                                                                           "first]."))], None),
        ("option", TargetOptions, None),
        ("accelerator", AcceleratorOpt, None),
        ("space_option", SpaceOptions, None),
        ("db", DbOpt, None),
        ("as_json", JsonOpt, False),
        ("dry_run", Annotated[bool, typer.Option("--dry-run", help="Print the fully resolved settings; run nothing.")],
         False),
    ]  # fmt: skip
    params = [inspect.Parameter(name, keyword, annotation=kind, default=default) for name, kind, default in fixed]
    from ehdnas.methods.resolve import face_options

    for option, defaults in face_options():
        flags = [option.flag] + ([f"--{option.name.replace('_', '-')}"] if option.flag != f"--{option.name}" and
                                 option.flag != f"--{option.name.replace('_', '-')}" else [])  # fmt: skip
        if option.kind is bool:  # a switch either way: --follow / --no-follow
            flags = [f"{flag}/--no-{flag.removeprefix('--')}" for flag in flags]
        kind = Annotated[
            _flag_kind(option.kind) | None, typer.Option(*flags, help=_escaped(f"{option.help} [{defaults}]"))
        ]
        params.append(inspect.Parameter(option.name, keyword, annotation=kind, default=None))
    return params, {p.name: p.annotation for p in params}


def search(**kwargs: Any) -> None:
    """Search with a registered method (`ehdnas methods`) for the target: EH-DNAS (default) and DCP-NAS on darts,
    FlowNAS (--method flownas) under --latency-budget; the result is retrained, exported and measured.

    Flags of another method than the chosen one are refused. With several lambdas (`--lambda 0.25,0.5,1`) an
    EH-DNAS or DCP-NAS search runs once per lambda, lambda 0 included, into DIR/lambda-<L>, and plots accuracy
    against measured latency in DIR/pareto.png.
    """
    _search(**kwargs)


_params, _annotations = _search_signature()
search.__signature__ = inspect.Signature(_params)  # type: ignore[attr-defined]
search.__annotations__ = {**_annotations, "return": None}
app.command()(search)
app.command("sweep", help="Alias of search, for several --lambda values: one search each, and the Pareto plot.")(search)
