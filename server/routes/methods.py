"""`/v1/methods`: the search methods a search job may name, with their spaces and options."""

from typing import Any

from fastapi import APIRouter

router = APIRouter()


@router.get("/methods")
def methods() -> list[dict[str, Any]]:
    """Every search method: the spaces it searches, its options with their defaults and bounds (`ehdnas methods`)."""
    from ehdnas.methods.registry import describe, method_names

    return [describe(name) for name in method_names()]
