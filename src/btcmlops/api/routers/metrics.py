"""``GET /metrics``: Prometheus metrics of this process (or of every worker) and the store."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from btcmlops.api.deps import require_read_access
from btcmlops.api.metrics import AppMetrics, metrics_lifespan

router = APIRouter(tags=["service"], lifespan=metrics_lifespan)


@router.get(
    "/metrics",
    include_in_schema=False,
    dependencies=[Depends(require_read_access)],
    summary="Prometheus metrics (text exposition format, or OpenMetrics when asked for)",
)
async def metrics(request: Request) -> Response:
    exposition: AppMetrics = request.app.state.metrics
    # Store readings may touch the database: off the event loop.
    body, content_type = await run_in_threadpool(exposition.render, request.headers.get("accept"))
    return Response(content=body, media_type=content_type)
