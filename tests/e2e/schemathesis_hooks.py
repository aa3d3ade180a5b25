"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS) for the second run of tests/e2e/test_server.py: every
generated request body with one value in it swapped for NaN, an infinity, lists nested hundreds deep or JSON of any
type, written as Python's JSON writer writes it. Schemathesis itself generates only finite numbers, and the writer
it sends with refuses NaN, while the server's reader takes it: the input of issue 21's 500s."""

from __future__ import annotations

import json
import math
from typing import Any

import schemathesis
from hypothesis import strategies as st

from tests.strategies import JSON, NESTED, swapped

WRONG = st.sampled_from([math.nan, math.inf, -math.inf]) | NESTED | JSON


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    return swapped(body, WRONG)


@schemathesis.serializer("application/json")
def python_json(context: schemathesis.SerializationContext, value: Any) -> bytes:
    return json.dumps(value).encode()
