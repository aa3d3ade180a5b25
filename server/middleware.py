"""What every request passes through: the request-body bound, and the 422 answer to a request that fails validation."""

from __future__ import annotations

import math
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehdnas.core.options import brief


def json_safe(value: Any, depth: int = 8) -> Any:
    """`value` as a JSON writer takes it: a NaN or an infinity as its repr ('nan', 'inf'), since Python's JSON reader
    accepts them and no writer may write them back; what is nested deeper than `depth` as a short repr, since an
    encoder recurses and a request may nest as deep as its reader goes."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict | list | tuple) and depth == 0:
        return brief(value)
    if isinstance(value, dict):
        return {key: json_safe(item, depth - 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, depth - 1) for item in value]
    return value


async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 answer, made JSON-safe: each error echoes its input, which may hold a NaN or nest deeply."""
    return JSONResponse({"detail": jsonable_encoder(json_safe(exc.errors()))}, status_code=422)


class BodyLimit:
    """Refuse request bodies above `limit` bytes with 413, before the route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        chunks: list[bytes] = []
        size, more = 0, not too_big
        while more:  # bounded: at most `limit` bytes are ever held
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False) and size <= self.limit
        if too_big or size > self.limit:
            response = JSONResponse({"detail": f"request body over {self.limit} bytes"}, status_code=413)
            return await response(scope, receive, send)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
