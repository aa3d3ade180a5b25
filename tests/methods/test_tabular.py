"""Tabular searches: evolution and random search read their fitness from an accuracy table the test makes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.tabular_search import synthetic_accuracy
from benchmarks.tabular_search import write_table as write_accuracy
from ehdnas.core.errors import UserError
from ehdnas.methods.accuracy_table import load_accuracy_table
from ehdnas.methods.registry import get_method
from ehdnas.methods.resolve import SettingErrors, resolve
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from ehdnas.spaces.nb201 import CELLS, OPS
from perf_models.baselines import fit_lut
from perf_models.dataset import Dataset
from tests.conftest import run_cli

SMALL = {"cells": 1, "channels": 4, "input_size": 8}  # the network measured at the end: built and exported fast
OP_MS = {"none": 0.0, "skip_connect": 0.01, "nor_conv_1x1": 0.1, "nor_conv_3x3": 0.4, "avg_pool_3x3": 0.05}


def law_predictor(space):
    """A LUT fitted to an additive latency law over nb201's ops: a predictor whose every answer is known."""
    archs = space.sample_many(200, seed=0)
    indices = np.array([space.encode(a) for a in archs])
    latency = 0.5 + np.array([OP_MS[op] for op in OPS])[indices].sum(1)
    meta = {"space": "nb201", "space_config": space.config_dict(),
            "decisions": [[d.name, list(d.choices)] for d in space.decisions]}  # fmt: skip
    data = Dataset(indices, latency, latency, latency, tuple(space.to_text(a) for a in archs), meta)
    predictor = fit_lut(data, data)
    predictor.meta = meta
    return predictor


def write_table(path: Path, space, seed: int) -> dict[int, float]:
    """The benchmark's synthetic table of all 15,625 cells by index (a seeded function of the ops), written."""
    accuracy = synthetic_accuracy(space, seed)
    write_accuracy(path, accuracy)
    return accuracy


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201", SMALL)


@pytest.fixture(scope="module")
def predicted_ms(nb201) -> dict[str, float]:
    """Every cell's latency as the law predictor says (what the searches hold to the budget)."""
    predictor = law_predictor(nb201)
    with torch.no_grad():
        return {nb201.to_text(a): float(predictor([torch.as_tensor(v) for v in nb201.one_hot(a)]))
                for a in (nb201.from_index(i) for i in range(CELLS))}  # fmt: skip


def _search(method: str, table: Path, budget_ms: float, tmp_path: Path, **values) -> dict:
    resolved = resolve("systolic-edge32", {}, "nb201", SMALL, method,
                       {"accuracy_table": str(table), "latency_budget_ms": budget_ms, **values})  # fmt: skip
    predictor = law_predictor(resolved.space)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    return resolved.method.run(resolved.settings, predictor, store, tmp_path / method, lambda event: None)


@pytest.mark.slow
def test_evolution_finds_the_best_cell_under_the_budget_on_a_table_it_has_never_seen(
    nb201, predicted_ms: dict[str, float], tmp_path: Path
) -> None:
    table = tmp_path / "accuracy.csv"
    accuracy = write_table(table, nb201, seed=7)
    budget_ms = float(np.median(list(predicted_ms.values())))
    by_text = {nb201.to_text(nb201.from_index(i)): a for i, a in accuracy.items()}
    best_text, best = max(((t, a) for t, a in by_text.items() if predicted_ms[t] <= budget_ms), key=lambda r: r[1])
    assert best < max(accuracy.values())  # the budget rules the unconstrained best out

    evolution = {"population": 30, "generations": 15, "parents": 10, "mutations": 20, "crossovers": 20,
                 "mutation_prob": 0.3}  # fmt: skip
    result = _search("evolution", table, budget_ms, tmp_path, evolution=evolution, seed=0)
    assert (result["arch"], result["accuracy"]) == (best_text, best)
    assert result["constraint_latency_ms"] <= budget_ms
    assert result["table_queries"] == result["evolution"]["evaluated"] < 30 + 14 * 40  # a repeat is not queried
    assert result["table"]["rows"] == CELLS and len(result["table"]["sha256"]) == 64
    assert json.loads((tmp_path / "evolution" / "result.json").read_text()) == result

    drawn = _search("random", table, budget_ms, tmp_path, samples=result["table_queries"], seed=0)
    assert drawn["table_queries"] <= result["table_queries"]  # the same number of draws; repeats are free
    assert drawn["accuracy"] <= best and predicted_ms[drawn["arch"]] <= budget_ms
    assert drawn["accuracy"] == by_text[drawn["arch"]]


def test_a_table_row_that_is_bad_is_one_error_naming_the_row(nb201, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    text = nb201.to_text(nb201.from_index(3))
    for body, message in [
        ("arch,acc\n3,0.5\n", "needs a header row with the columns arch and accuracy"),
        (f"arch,accuracy\n{text},0.5\n3,high\n", r"t.csv:3: accuracy 'high' is not a number"),
        (f"arch,accuracy\n{text},0.5\n3,0.6\n", r"t.csv:3: a second accuracy for .* \(0.6; .*t.csv:2 gave 0.5\)"),
        ("arch,accuracy\n15625,0.5\n", "t.csv:2: nb201 index 15625 out of range"),
        ("arch,accuracy\n", "has no rows"),
    ]:
        table.write_text(body)
        with pytest.raises(UserError, match=message):
            load_accuracy_table(table, nb201)
    table.write_text(f"arch,accuracy\n{text},0.5\n3,0.5\n")  # one cell, spelled twice, one value
    assert load_accuracy_table(table, nb201).accuracy == {text: 0.5}


def test_json_tables_and_their_refusals(tmp_path: Path) -> None:
    darts = get_space("darts", {})
    genotype = darts.sample(np.random.default_rng(0))
    table = tmp_path / "t.json"
    table.write_text(json.dumps([{"arch": genotype.to_text(), "accuracy": 0.9}]))
    loaded = load_accuracy_table(table, darts)
    assert loaded(genotype) == 0.9 and loaded.queries == 1
    other = darts.sample(np.random.default_rng(1))
    with pytest.raises(UserError, match=r"no accuracy for darts architecture normal=.* \(the table has 1 rows\)"):
        loaded(other)
    table.write_text(json.dumps({"7": 0.5}))
    with pytest.raises(UserError, match="space 'darts' has no architecture index"):
        load_accuracy_table(table, darts)
    table.write_text(json.dumps([[genotype.to_text(), 0.9]]))
    with pytest.raises(UserError, match="row 0: expected an object with the keys arch and accuracy"):
        load_accuracy_table(table, darts)
    with pytest.raises(UserError, match="a .csv or .json file"):
        load_accuracy_table(tmp_path / "t.txt", darts)


def test_a_tabular_search_needs_its_table_and_budget_and_says_which_field(tmp_path: Path) -> None:
    with pytest.raises(SettingErrors) as refused:
        resolve("systolic-edge32", {}, "nb201", SMALL, "random", {"latency_budget_ms": 1.0})
    assert refused.value.problems[0].field == ("accuracy_table",)
    with pytest.raises(SettingErrors) as refused:
        resolve("systolic-edge32", {}, "nb201", SMALL, "evolution", {"accuracy_table": str(tmp_path / "none.csv"),
                                                                     "latency_budget_ms": 1.0})  # fmt: skip
    assert refused.value.problems[0].field == ("accuracy_table",)
    assert "cannot read the accuracy table" in refused.value.problems[0].message
    assert refused.value.problems[0].unquoted == "the accuracy table is unreadable or a row is bad"
    assert get_method("random").stages(resolve_random(tmp_path).settings) == ({"sample": 1}, 1)


def resolve_random(tmp_path: Path):
    table = tmp_path / "one.csv"
    table.write_text("arch,accuracy\n0,0.5\n")
    return resolve("systolic-edge32", {}, "nb201", SMALL, "random", {"accuracy_table": str(table),
                                                                     "latency_budget_ms": 1.0})  # fmt: skip


@pytest.mark.slow
def test_the_cli_runs_a_random_search_on_a_table_with_measured_latency(nb201, tmp_path: Path) -> None:
    table = tmp_path / "accuracy.csv"
    write_table(table, nb201, seed=3)

    def flags(table: Path, out: str) -> list[str]:
        return ["search", "-t", "systolic-edge32", "--method", "random", "--space", "nb201",
                *[item for k, v in SMALL.items() for item in ("--space-option", f"{k}={v}")],
                "--accuracy-table", str(table), "--latency-budget", "10", "--latency-from", "measured",
                "--samples", "3", "--out", str(tmp_path / out)]  # fmt: skip

    proc = run_cli(*flags(table, "out"), db=f"sqlite:///{tmp_path / 'store.db'}")
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert f"architecture: {result['arch']}" in proc.stdout
    assert f"from the table, {result['table_queries']} queries" in proc.stdout and result["table_queries"] <= 3
    assert result["meets_budget_measured"]
    assert result["constraint_latency_ms"] == result["measured_latency_ms"]["median"]  # measured once, stored
    (tmp_path / "bad.csv").write_text("arch,accuracy\nnot-a-cell,1\n")
    proc = run_cli(*flags(tmp_path / "bad.csv", "out2"), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "bad.csv:2" in proc.stderr, proc.stderr
