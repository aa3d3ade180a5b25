"""The routes, one module per resource; `api` gathers the token-guarded `/v1` ones."""

from fastapi import APIRouter

from server.deps import RequireToken
from server.routes import jobs, measurements, methods, predictors, targets

api = APIRouter(prefix="/v1", dependencies=[RequireToken])
api.include_router(jobs.router)
api.include_router(targets.router)
api.include_router(methods.router)
api.include_router(measurements.router)
api.include_router(predictors.router)
