"""``GET /`` and ``GET /health``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from btcmlops import __version__
from btcmlops.api.deps import ServicesDep
from btcmlops.api.schemas.service import HealthResponse, RootResponse

router = APIRouter(tags=["service"])


@router.get("/", response_model=RootResponse, summary="What this service is and where things are")
def root(request: Request) -> RootResponse:
    endpoints = {
        operation["operationId"]: path
        for path, operations in request.app.openapi()["paths"].items()
        for operation in operations.values()
    }
    endpoints.update(getattr(request.app.state, "extra_endpoints", {}))
    return RootResponse(name="btcmlops", version=__version__, status="running", endpoints=endpoints)


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Real checks of the store, the prediction writer and the loaded models",
)
async def health(services: ServicesDep) -> HealthResponse:
    report = await run_in_threadpool(services.health)
    return HealthResponse(timestamp=services.clock.now(), **report)
