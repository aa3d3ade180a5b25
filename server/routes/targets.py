"""`/v1/targets`: what a job may name as its target."""

from functools import lru_cache
from typing import Any

from fastapi import APIRouter

router = APIRouter()


@router.get("/targets")
def targets() -> list[dict[str, Any]]:
    """Every target, whether it is usable on this server and why not, and its default settings."""
    return _targets()


@lru_cache(maxsize=1)
def _targets() -> list[dict[str, Any]]:
    from backends import list_targets

    return list_targets()
