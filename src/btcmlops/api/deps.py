"""Dependencies routes receive through ``Depends``: the services and the API-key check.

Routes take the services as a ``services: ServicesDep`` parameter and guard themselves with
``dependencies=[Depends(require_read_access)]`` or ``[Depends(require_api_key)]``.

The dependency functions are ``async`` on purpose: they do no I/O, and a plain ``def``
dependency costs a round-trip through the thread pool on every request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from btcmlops.api.services import Services
from btcmlops.errors import BtcmlopsError


class AuthenticationError(BtcmlopsError):
    http_status = 401


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
_PresentedApiKey = Annotated[str | None, Depends(_api_key_header)]
_PresentedBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _presented_key(api_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    if api_key:
        return api_key
    if bearer is not None and bearer.scheme.lower() == "bearer":
        return bearer.credentials
    return None


def _check_key(services: Services, presented: str | None) -> None:
    configured = services.settings.api_key
    if configured is None or not configured.get_secret_value():
        return
    expected = configured.get_secret_value().encode()
    if presented is None or not hmac.compare_digest(presented.encode(), expected):
        raise AuthenticationError(
            "this action needs the API key: send it as the X-API-Key header or as "
            "'Authorization: Bearer <key>'"
        )


async def require_api_key(
    services: ServicesDep, api_key: _PresentedApiKey, bearer: _PresentedBearer
) -> None:
    """Guard for state-changing endpoints when ``BTCMLOPS_API_KEY`` is set."""
    _check_key(services, _presented_key(api_key, bearer))


async def require_read_access(
    services: ServicesDep, api_key: _PresentedApiKey, bearer: _PresentedBearer
) -> None:
    """Guard for read endpoints: open unless ``BTCMLOPS_PROTECT_READS`` is true."""
    if services.settings.protect_reads:
        _check_key(services, _presented_key(api_key, bearer))
