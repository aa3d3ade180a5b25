"""The API's documents, defined once for both sides: the server answers with them, the client reads into them.

Pydantic only (no FastAPI, no store), so a machine with just the client installed can import them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]  # queued -> running -> one of the last 3
STATUSES: tuple[str, ...] = get_args(Status)
FINISHED: tuple[str, ...] = STATUSES[2:]


class JobOut(BaseModel):
    """A job as `GET /v1/jobs/{id}` shows it."""

    id: int
    kind: str
    status: Status
    progress: float = Field(ge=0, le=1)
    message: str
    spec: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: str | None
    result: Any = None
    artifacts: list[str] | None = None  # in the single-job view

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int


class Event(BaseModel):
    id: int
    at: datetime
    data: dict[str, Any]
