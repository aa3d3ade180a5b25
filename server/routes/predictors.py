"""`/v1/predictors`: the latency predictors a search can use."""

import stat
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter

router = APIRouter()


@router.get("/predictors")
def predictors() -> list[dict[str, Any]]:
    """The predictors saved where searches look for them, with what each was trained on and how well."""
    from ehdnas.core.paths import predictors_dir

    return [_predictor_info(path, mtime) for path, mtime in _files(predictors_dir())]


def _files(folder: Path) -> Iterator[tuple[Path, float]]:
    """The `*.pt` files in `folder` with their modification times: a dangling symlink, a folder, or a file removed
    since the listing is no predictor a search could load, so it is left out rather than failing the list."""
    for path in sorted(folder.glob("*.pt")):
        try:
            status = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(status.st_mode):
            yield path, status.st_mtime


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
