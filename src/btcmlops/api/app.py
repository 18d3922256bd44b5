"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btcmlops import __version__
from btcmlops.api.error_handlers import install_error_handlers
from btcmlops.api.routers import (
    drift,
    drift_compare,
    market,
    predict,
    predictions,
    registry,
    retrain,
    root,
    scheduler,
)
from btcmlops.api.routers.prometheus import install_metrics
from btcmlops.api.schemas import ErrorResponse
from btcmlops.api.services import Services
from btcmlops.context import AppContext

MAX_BODY_BYTES = 64 * 1024  # every endpoint but one takes no more than a small JSON object
LARGE_BODY_BYTES = 16 * 1024 * 1024  # the two tables of POST /drift/compare
LARGE_BODIES = {("POST", "/drift/compare"): LARGE_BODY_BYTES}


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before anything reads them;
    ``larger`` raises the limit for the named (method, path) pairs."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get((scope["method"], scope["path"]), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(limit)(scope, receive, send)
            return
        received, exceeded, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # FastAPI turns any error while reading a body into its own 400: a body cut
            # short by the limit is answered with the 413 below instead
            if not exceeded:
                started = started or message["type"] == "http.response.start"
                await send(message)

        with suppress(BodyTooLargeError):  # raised where nothing else caught it
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await _too_large(limit)(scope, receive, send)


class BodyTooLargeError(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        status_code=413,
        content={
            "success": False,
            "error": "PayloadTooLarge",
            "detail": f"request bodies are limited to {limit} bytes",
        },
    )


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
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES, larger=LARGE_BODIES)
    install_error_handlers(app)
    routers = (
        root.router,
        predict.router,
        registry.router,
        predictions.router,
        drift.router,
        drift_compare.router,
        retrain.router,
        market.router,
        scheduler.router,
    )
    # Every route may answer 401 (with BTCMLOPS_PROTECT_READS) and 422 in our error shape.
    shared = {code: {"model": ErrorResponse} for code in (401, 422)}
    for router in routers:
        app.include_router(router, responses=shared)
    install_metrics(app)  # last: its middleware is the outermost and times whole requests
    return app
