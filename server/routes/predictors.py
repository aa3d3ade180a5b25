"""`/v1/predictors`: the latency predictors a search can use."""

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter

router = APIRouter()


@router.get("/predictors")
def predictors() -> list[dict[str, Any]]:
    """The predictors saved where searches look for them, with what each was trained on and how well."""
    from ehdnas.core.paths import predictors_dir

    return [_predictor_info(path, path.stat().st_mtime) for path in sorted(predictors_dir().glob("*.pt"))]


@lru_cache(maxsize=64)
def _predictor_info(path: Path, mtime: float) -> dict[str, Any]:
    from ehdnas.core.errors import UserError
    from perf_models import load_predictor

    try:
        meta = load_predictor(path).meta
    except UserError as err:
        return {"file": path.name, "error": str(err)}
    keep = ("kind", "space", "space_config", "target", "target_config", "measurements", "metrics", "created_at")
    return {"file": path.name, **{k: meta.get(k) for k in keep}}
