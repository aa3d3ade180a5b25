"""`/healthz`: liveness for a load balancer or a script; the one route without the token."""

from fastapi import APIRouter

from server.deps import JobsDep

router = APIRouter()


@router.get("/healthz")
async def healthz(jobs: JobsDep) -> dict[str, str]:
    """Liveness, with a database round trip; needs no token."""
    jobs.count()
    return {"status": "ok"}
