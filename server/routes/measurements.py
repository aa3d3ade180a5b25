"""`/v1/measurements`: the measurement store, newest first."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from ehdnas.pipeline.store import MeasurementRow
from server.deps import StoreDep

router = APIRouter()


@router.get("/measurements")
def measurements(
    store: StoreDep,
    target: str | None = None,
    space: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> list[dict[str, Any]]:
    """Stored measurements, newest first (the full record, raw samples included, is in the store)."""
    columns = (MeasurementRow.id, MeasurementRow.target, MeasurementRow.space, MeasurementRow.arch,
               MeasurementRow.median_ms, MeasurementRow.created_at, MeasurementRow.config_key,
               MeasurementRow.host_key)  # fmt: skip
    query = select(*columns).order_by(MeasurementRow.id.desc()).limit(limit).offset(offset)
    if target:
        query = query.where(MeasurementRow.target == target)
    if space:
        query = query.where(MeasurementRow.space == space)
    with store.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
