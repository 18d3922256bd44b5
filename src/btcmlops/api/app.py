"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware

from btcmlops import __version__
from btcmlops.api.errors import install_error_handlers
from btcmlops.api.routers import (
    drift,
    market,
    models,
    predict,
    predictions,
    retrain,
    root,
    scheduler,
)
from btcmlops.api.services import Services
from btcmlops.context import AppContext


def create_app(
    context: AppContext, *, services: Services | None = None, with_scheduler: bool = False
) -> FastAPI:
    """Build the app for ``context``. Services (and the scheduler, if asked for) start with
    the app and stop with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = services or Services(context, with_scheduler=with_scheduler)
        app.state.services = running.start()
        try:
            yield
        finally:
            running.close()

    app = FastAPI(
        title="btcmlops",
        version=__version__,
        description=(
            "Hourly Bitcoin direction predictions with their own MLOps loop: prediction "
            "logging, outcomes, drift detection, retraining, deployment and rollback."
        ),
        lifespan=lifespan,
        # Operation ids are the route functions' names: readable in clients and in GET /.
        generate_unique_id_function=lambda route: route.name,
    )
    if context.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=context.settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        )
    # Chart data is JSON of a few hundred KB; small answers (/predict) stay uncompressed.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    install_error_handlers(app)
    routers = (
        root.router,
        predict.router,
        models.router,
        predictions.router,
        drift.router,
        retrain.router,
        market.router,
        scheduler.router,
    )
    for router in routers:
        app.include_router(router)
    return app
