"""Property-based: `ehdnas benchmark --arch` given a wrong architecture of any shape exits with status 2 and one
`error:` line on stderr, never a traceback (issue 21). In process, through the console entry point: a process per
example would take minutes; tests/cli/test_cli.py runs a few of the same cases as real processes."""

from __future__ import annotations

import contextlib
import io
import sys
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehdnas.cli import main
from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space, list_spaces
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
    argv = ["ehdnas", "benchmark", "-t", "ort-cpu", "--space", name, f"--arch={text}"]  # '=': a text like '-x' too
    stderr = io.StringIO()
    with mock.patch.object(sys, "argv", argv), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit:
        main()
    lines = stderr.getvalue().splitlines()
    assert exit.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr.getvalue()
