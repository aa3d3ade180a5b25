"""Property-based: whatever a user passes as an architecture (JSON of any shape, a valid architecture with one value
swapped for anything, any text), every registered space answers with an architecture or one UserError line, never
another exception (issue 21: numbers, nulls and nested lists in a genotype were TypeErrors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space, list_spaces
from tests.strategies import JSON, swapped


def architectures(space_name: str) -> st.SearchStrategy[str]:
    """What a user may pass as an architecture of the space, right or (nearly always) wrong: JSON of any shape, a
    valid architecture's JSON with one value swapped for any JSON (past the first level of checks), any text."""
    space = get_space(space_name)
    valid = st.integers(0, 2**32 - 1).map(lambda seed: space.to_dict(space.sample(np.random.default_rng(seed))))
    return st.one_of(JSON, valid.flatmap(swapped)).map(json.dumps) | st.text()


def assert_one_line(error: UserError) -> None:
    message = str(error)
    assert message and "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize("name", list_spaces())
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_input_is_an_architecture_or_one_user_error_line(name: str, data: st.DataObject) -> None:
    space = get_space(name)
    try:
        arch = space.parse(data.draw(architectures(name), label="architecture"))
    except UserError as error:
        assert_one_line(error)
    else:
        assert space.parse(space.to_text(arch)) == arch == space.parse(json.dumps(space.to_dict(arch)))


DEEP = "[" * 100_000 + "]" * 100_000
CELL = [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4
DARTS = json.dumps({"normal": CELL, "reduce": CELL})
SIX = json.dumps({"stages": [{"kernel": 3, "width": 56, "depth": 1, "expand": 1}] * 6})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("darts", '{"normal": 1, "reduce": 2}', "darts genotype normal: expected a list of [op, input] pairs, got 1"),
        ("darts", '{"normal": null, "reduce": null}', "darts genotype normal: expected a list of [op, input] pairs"),
        ("darts", '{"normal": [[[[[[[[0]]]]]]]], "reduce": []}', "normal cell: expected 8 edges"),
        ("darts", '{"normal": "sep_conv_3x3(0)", "reduce": {}}', "got 'sep_conv_3x3(0)'"),
        ("darts", DARTS.replace("0]", "NaN]", 1), "normal cell node 2: input nan out of range 0..1"),
        ("darts", DARTS.replace('"sep_conv_3x3"', "-Infinity", 1), "normal cell node 2: unknown op -inf; known: max_"),
        ("darts", '{"normal": ' + DEEP + "}", "invalid JSON (maximum recursion depth exceeded"),
        ("darts", '{"normal": ' + "1" * 5000 + "}", "invalid JSON (Exceeds the limit (4300 digits)"),
        ("darts", "normal=sep_conv_3x3(" + "1" * 5000 + ")", "edge 'sep_conv_3x3...111111111111)' is not op(input)"),
        ("darts", "Genotype(normal=[{{}: 1}], reduce=[])", "cannot read the normal list '[{{}: 1}]'"),
        ("darts", "Genotype(normal=[" + "(" * 100_000 + "], reduce=[])", "cannot read the normal list"),
        ("flownas", '{"stages": null}', "flownas encoder stages: expected a list of 6 objects"),
        ("flownas", '{"stages": [1, [2]]}', "stage 1: expected an object with the keys ['kernel', 'width', 'depth'"),
        ("flownas", SIX.replace('"kernel": 3', '"kernel": NaN', 1), "stage 1: kernel nan is not one of 3, 5"),
        ("flownas", SIX.replace('"width": 56', '"width": Infinity', 1), "stage 1: width inf is not one of 56, 64"),
        ("flownas", SIX.replace('"depth": 1', '"depth": [[[[[[[[1]]]]]]]]', 1), "depth [[[[[[[...]]]]]]] is not"),
        ("flownas", "k3w" + "6" * 5000 + "d1e1|" * 5 + "k3w56d1e1", "stage 1: 'k3w666666666...666666666d1e1' is not"),
    ],
    ids=lambda value: value[:40],
)
def test_wrong_shapes_and_extreme_values_are_one_line_naming_them(name: str, text: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        get_space(name).parse(text)
    assert message in str(error.value)
    assert_one_line(error.value)
