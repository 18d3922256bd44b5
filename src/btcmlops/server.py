"""The served application: the HTTP API with the dashboard mounted beside it.

The dashboard sits above the API in the layering (its pages read the API), so the two are
put together here, at the top, rather than by the API importing its own consumer. This is
what ``btcmlops serve``, ``btcmlops demo`` and ``uvicorn btcmlops.server:app`` run.
"""

from __future__ import annotations

from fastapi import FastAPI

from btcmlops.api.app import create_app
from btcmlops.api.services import Services
from btcmlops.context import AppContext
from btcmlops.dashboard.routes import router as dashboard_router


def build_app(
    context: AppContext, *, services: Services | None = None, with_scheduler: bool = False
) -> FastAPI:
    app = create_app(context, services=services, with_scheduler=with_scheduler)
    app.include_router(dashboard_router)
    app.state.extra_endpoints = {"dashboard": "/dashboard", "metrics": "/metrics"}
    return app


def _from_environment() -> FastAPI:
    """The app of one worker process, configured from ``BTCMLOPS_*`` (several workers)."""
    from btcmlops.config import Settings

    settings = Settings()
    return build_app(AppContext.from_settings(settings), with_scheduler=settings.serve_scheduler)


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn btcmlops.server:app`` builds the app on first access, not at import time.
    if name == "app":
        return _from_environment()
    raise AttributeError(name)
