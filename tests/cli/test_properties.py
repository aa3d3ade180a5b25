"""Property-based: `ehdnas benchmark --arch` given a wrong architecture of any shape exits with status 2 and one
`error:` line on stderr, never a traceback (issue 21). In process, through the console entry point: a process per
example would take minutes; tests/cli/test_cli.py runs a few of the same cases as real processes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space, list_spaces
from tests.conftest import run_main
from tests.spaces.test_parse_properties import architectures


def _wrong(name: str, text: str) -> bool:
    try:
        get_space(name).parse(text)
    except UserError:
        return True
    return False  # a valid one would be measured: not what this test is about


@pytest.mark.parametrize("name", list_spaces())
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_wrong_architecture_is_exit_status_2_and_one_line(name: str, data: st.DataObject) -> None:
    text = data.draw(architectures(name).filter(lambda text: _wrong(name, text)), label="architecture")
    proc = run_main("benchmark", "-t", "ort-cpu", "--space", name, f"--arch={text}")  # '=': a text like '-x' too
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "", "x", "0x10", "9" * 40, "1,nan", "-0"]),
)
# A search's numbers, and the target and space settings every command takes: refused or accepted in one second by
# the up-front check, whatever the number (a dry run runs nothing after it).
NUMBER_FLAGS = [
    "--epochs", "--lambda", "--seed", "--arch-lr", "--warmup", "--gumbel-tau", "--retrain-epochs", "--batch-size",
    "--follow-neighbours", "--auto-samples", "--skip-cap", "-o threads=", "--space-option channels=",
    "--space-option layers=", "--space-option input_size=", "--space-option batch=",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(flag=st.sampled_from(NUMBER_FLAGS), value=NUMBERS)
def test_any_number_is_accepted_or_refused_in_one_line_before_any_work(flag: str, value: str) -> None:
    option = [flag.split()[0], flag.split()[1] + value] if " " in flag else [f"{flag}={value}"]
    proc = run_main("search", "-t", "ort-cpu", "--dry-run", "--auto-predictor", "--json", *option)
    lines = proc.stderr.splitlines()
    refused = proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert refused or (proc.returncode == 0 and '"settings"' in proc.stdout), proc.stderr
