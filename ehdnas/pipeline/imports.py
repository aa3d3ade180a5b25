"""Latencies measured elsewhere into the store, under a named external device (target `external:NAME`).

A table in the manner of HW-NAS-Bench's (a CSV file with a header, or a JSON
list of objects): one row per architecture, in the space's text form (column
`arch`) or by the index a benchmark numbers it with (column `index`, e.g.
NAS-Bench-201's), its latency in a value column (`latency` unless named), and
its unit, ms, us or s (column `unit`, else one unit for the file). Every row is
checked before any is stored, and a bad one is refused in one line naming it.
Each stored measurement carries its provenance: the file's name and SHA-256,
when it was imported, the columns read, and its row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backends import LatencyStats, Measurement, get_target
from ehdnas.core.errors import UserError
from ehdnas.core.options import MAX_DIGITS, brief
from ehdnas.pipeline.store import Store
from ehdnas.spaces import SearchSpace

UNITS_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}  # one value in each unit, in ms
ARCH_COLUMNS = ("arch", "index")  # the architecture's text form, or its benchmark index
VALUE_COLUMN = "latency"
UNIT_COLUMN = "unit"


@dataclass(frozen=True)
class Row:
    """One checked row: the architecture's canonical text, its latency in ms, and where it came from."""

    number: int  # 1-based, among the data rows
    arch: str
    latency_ms: float
    value: float
    unit: str


def _read(path: Path, data: bytes) -> list[dict[str, Any]]:
    """The file's rows as objects: a CSV file with a header, or a JSON list of objects."""
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(data)
        except (ValueError, RecursionError) as err:
            raise UserError(f"{path.name}: invalid JSON ({err})") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UserError(f"{path.name}: expected a JSON list of objects, one per architecture")
        return rows
    if path.suffix.lower() != ".csv":
        raise UserError(f"{path.name}: expected a .csv or .json file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path.name}: not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    for number, row in enumerate(rows, start=1):
        if None in row or None in row.values():  # more or fewer cells than the header names
            raise UserError(f"{path.name} row {number} (line {number + 1}): not as many cells as the header's columns")
    return rows


def _columns(path: Path, rows: list[dict[str, Any]], value_column: str) -> dict[str, str | None]:
    """Which columns hold the architecture, the value and the unit."""
    if not rows:
        raise UserError(f"{path.name}: no rows")
    names = list(rows[0])
    arch = next((c for c in ARCH_COLUMNS if c in names), None)
    if arch is None:
        raise UserError(f"{path.name}: no architecture column: name one 'arch' (text form) or 'index'; has {names}")
    if value_column not in names:
        raise UserError(f"{path.name}: no value column {value_column!r} (--value-column names another); has {names}")
    return {"arch": arch, "value": value_column, "unit": UNIT_COLUMN if UNIT_COLUMN in names else None}


def _index(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) <= MAX_DIGITS:
        return int(value)
    raise UserError(f"index {brief(value)} is not a whole number")


def _value(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise UserError(f"latency {brief(value)} is not a positive number")
    return number


def check_rows(
    space: SearchSpace, path: Path, rows: list[dict[str, Any]], columns: dict[str, str | None], unit: str
) -> list[Row]:
    """Every row checked and read, or a UserError naming the first bad one (and the row it repeats)."""
    checked: list[Row] = []
    first: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{path.name} row {number}" + (f" (line {number + 1})" if path.suffix.lower() == ".csv" else "")
        try:
            given = row[columns["arch"]]
            if columns["arch"] == "index":
                arch = space.from_index(_index(given))
            elif isinstance(given, str):
                arch = space.parse(given)
            else:
                raise UserError(f"arch {brief(given)} is not text")
            text = space.to_text(arch)
            row_unit = row.get(columns["unit"] or "") or unit
            if row_unit not in UNITS_MS:
                raise UserError(f"unit {brief(row_unit)} is not one of {', '.join(UNITS_MS)}")
            value = _value(row[columns["value"]])
        except (UserError, KeyError) as err:
            message = str(err) if isinstance(err, UserError) else f"no {err} value"
            raise UserError(f"{where}: {message}") from None
        if text in first:
            raise UserError(f"{where}: the same architecture as row {first[text]} ({text})")
        first[text] = number
        checked.append(Row(number, text, value * UNITS_MS[row_unit], value, row_unit))
    return checked


def import_measurements(
    store: Store,
    space: SearchSpace,
    device: str,
    path: Path,
    value_column: str = VALUE_COLUMN,
    unit: str = "ms",
    replace: bool = False,
) -> dict[str, Any]:
    """Store the latencies of `path` under target `external:<device>` and `space` (its settings); what was done.

    An architecture already stored for the device keeps its figure unless `replace`.
    """
    if unit not in UNITS_MS:
        raise UserError(f"unit {unit!r} is not one of {', '.join(UNITS_MS)}")
    runner = get_target(f"external:{device}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: {err.strerror or err}") from None
    rows = _read(path, data)
    columns = _columns(path, rows, value_column)
    checked = check_rows(space, path, rows, columns, unit)
    provenance = {
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "columns": columns,
        "default_unit": unit,
    }
    macs_model = space.choice_macs()
    inputs = [{"name": "input", "shape": list(space.input_shape), "dtype": "float32"}]
    stored = kept = 0
    for row in checked:
        macs = None
        if macs_model is not None:  # the space's exact MACs: a predictor's graph feature, as measured rows have
            table, rest = macs_model
            encoding = space.encode(space.parse(row.arch))
            macs = int(rest + table[np.arange(len(encoding)), encoding].sum())
        measurement = Measurement(
            target=runner.name,
            target_config=runner.config_dict(),
            host=runner.host(),
            model={"arch": row.arch, "macs": macs, "inputs": inputs},
            latency_ms=LatencyStats.from_samples([row.latency_ms]),
            samples_ms=(row.latency_ms,),
            protocol={"imported": True},
            wall_s=0.0,
            created_at=provenance["imported_at"],
            details={"imported": {**provenance, "row": row.number, "value": row.value, "unit": row.unit}},
        )
        if store.record(measurement, space.name, space.config_dict(), row.arch, replace=replace) is measurement:
            stored += 1
        else:
            kept += 1
    return {
        "target": runner.name,
        "space": space.name,
        "space_config": space.config_dict(),
        "rows": len(checked),
        "stored": stored,
        "already_stored": kept,
        **{key: provenance[key] for key in ("file", "sha256", "imported_at", "columns")},
        "db": store.url,
    }
