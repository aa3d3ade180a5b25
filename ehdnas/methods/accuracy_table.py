"""An accuracy table: the fitness of a tabular search, read from a file instead of trained, every query counted.

The field compares search strategies on tables of architectures with their
trained accuracy (NAS-Bench-101/201/301 and the like): a strategy's cost is
the number of table queries it makes, its quality the regret of what it finds.
A table here is a CSV file with a header row holding the columns `arch` and
`accuracy`, or a JSON file (a list of `{"arch": ..., "accuracy": ...}` objects,
or one object mapping each architecture to its accuracy). `arch` is the space's
text form, or an index for a space that numbers its architectures (`nb201`).
Higher accuracy is better; the unit (fraction or percent) is the table's own.

Each architecture is keyed by its canonical text, so two spellings of one
architecture are one row (a second value for it is an error naming both rows).
The table must cover every architecture the search may draw, as a benchmark
table covers its space: an architecture missing from it is an error that names
the architecture, never a guess.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehdnas.core.errors import UserError
from ehdnas.core.options import brief
from ehdnas.spaces.base import SearchSpace

COLUMNS = ("arch", "accuracy")
SUFFIXES = (".csv", ".json")


@dataclass
class AccuracyTable:
    """Accuracy by canonical architecture text; called on an architecture, it answers one query and counts it."""

    space: SearchSpace
    accuracy: dict[str, float]
    path: Path
    sha256: str
    queries: int = 0

    def __call__(self, arch: Any) -> float:
        key = self.space.to_text(arch)
        if key not in self.accuracy:
            raise UserError(
                f"{self.path}: no accuracy for {self.space.name} architecture {key} (the table has "
                f"{len(self.accuracy)} rows); a tabular search needs every architecture it may draw in the table"
            )
        self.queries += 1
        return self.accuracy[key]

    def best(self, admissible: Callable[[Any], bool] = lambda arch: True) -> tuple[str, float]:
        """The table's most accurate architecture (text, accuracy) among the admissible ones; no query counted."""
        ranked = sorted(self.accuracy.items(), key=lambda row: -row[1])
        found = next((row for row in ranked if admissible(self.space.from_text(row[0]))), None)
        if found is None:
            raise UserError(f"{self.path}: no architecture of the table is admissible (e.g. within the budget)")
        return found

    def provenance(self) -> dict[str, Any]:
        """What a result records of the table it read."""
        return {"path": str(self.path), "sha256": self.sha256, "rows": len(self.accuracy)}


def _rows(path: Path, text: str) -> Iterator[tuple[str, Any, Any]]:
    """(where, arch, accuracy) of every row of a table file's text."""
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: a CSV accuracy table needs a header row with the columns arch and accuracy "
                            f"(missing: {', '.join(missing)})")  # fmt: skip
        for row in reader:
            yield f"{path}:{reader.line_num}", row["arch"], row["accuracy"]
        return
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}: invalid JSON ({err})") from None
    if isinstance(data, dict):
        yield from ((f"{path}: {brief(arch)}", arch, value) for arch, value in data.items())
    elif isinstance(data, list):
        for i, row in enumerate(data):
            if not isinstance(row, dict) or set(row) != set(COLUMNS):
                accepted = "an object with the keys arch and accuracy"
                raise UserError(f"{path}: row {i}: expected {accepted}, got {brief(row)}")
            yield f"{path}: row {i}", row["arch"], row["accuracy"]
    else:
        raise UserError(f"{path}: expected a list of rows or an object of architecture to accuracy, got {brief(data)}")


def _arch(space: SearchSpace, value: Any) -> Any:
    """An architecture from a table's `arch` cell: the space's text form, or its index where the space has one."""
    text = str(value).strip()
    if isinstance(value, int) or text.isdigit():
        return space.from_index(int(text))  # a UserError for a space without an index
    return space.parse(text)


def _accuracy(value: Any) -> float:
    try:
        accuracy = float(value)
    except (TypeError, ValueError):
        raise UserError(f"accuracy {brief(value)} is not a number") from None
    if not math.isfinite(accuracy):
        raise UserError(f"accuracy {brief(value)} is not finite")
    return accuracy


def load_accuracy_table(path: Path | str, space: SearchSpace) -> AccuracyTable:
    """The table in `path` for `space`; a bad file or row is one UserError naming it."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise UserError(f"{path}: an accuracy table is a .csv or .json file")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the accuracy table ({type(err).__name__})") from None
    accuracy: dict[str, float] = {}
    where_of: dict[str, str] = {}
    for where, cell, value in _rows(path, text):
        try:
            key, score = space.to_text(_arch(space, cell)), _accuracy(value)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        if key in accuracy and accuracy[key] != score:
            raise UserError(f"{where}: a second accuracy for {key} ({score:g}; {where_of[key]} gave {accuracy[key]:g})")
        accuracy[key], where_of[key] = score, where
    if not accuracy:
        raise UserError(f"{path}: the accuracy table has no rows")
    return AccuracyTable(space, accuracy, path, hashlib.sha256(raw).hexdigest())
