"""``GET /metrics``: Prometheus metrics of this process (or of every worker) and the store.

The metrics themselves are in :mod:`btcmlops.api.prometheus` (and the ``process_metrics`` and
``scrape_metrics`` modules it assembles); this module only declares the route and installs it,
with its request middleware, on an app.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool

from btcmlops.api.deps import require_read_access
from btcmlops.api.process_metrics import RequestMetrics
from btcmlops.api.prometheus import AppMetrics, metrics_lifespan

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


def install_metrics(app: FastAPI) -> None:
    """Add the request middleware and ``GET /metrics`` to ``app`` (before it starts).

    Installing twice is harmless: the second call does nothing.
    """
    if getattr(app.state, "metrics_installed", False):
        return
    app.add_middleware(RequestMetrics)
    app.include_router(router)
    app.state.metrics_installed = True
