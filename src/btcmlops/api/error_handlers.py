"""Errors to HTTP answers, in one place: a status code and a JSON body, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from btcmlops.errors import BtcmlopsError

log = logging.getLogger(__name__)


def error_body(status: int, error: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"success": False, "error": error, "detail": detail, **extra},
    )


def _field_path(location: tuple | list) -> str:
    parts = [str(p) for p in location if p not in ("query", "body", "path")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BtcmlopsError)
    async def domain_error(_: Request, exc: BtcmlopsError) -> JSONResponse:
        extra = getattr(exc, "extra", None) or {}
        return error_body(exc.http_status, type(exc).__name__, str(exc), **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field_path(e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_body(422, "InvalidInputError", "; ".join(problems) or "invalid request")

    @app.exception_handler(DataError)
    async def unstorable_value(_: Request, exc: DataError) -> JSONResponse:
        # e.g. a NUL character PostgreSQL text cannot hold: the caller's value, not our fault
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return error_body(422, "InvalidInputError", f"a value cannot be stored: {reason}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI answers a body that is not UTF-8 with a bare 400; it is bad input
            # like any other malformed JSON, which is a 422 everywhere else
            return error_body(
                422, "InvalidInputError", "the request body is not JSON: it is not UTF-8 text"
            )
        return error_body(exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_body(
            500, "InternalError", f"unexpected {type(exc).__name__}; see the server log"
        )
