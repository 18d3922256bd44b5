"""``/dashboard``: one HTML shell, its script modules, one stylesheet and the bundled plotly.js.

Everything is served by the app itself, so the dashboard works offline: the chart library is
the ``plotly.min.js`` that the installed ``plotly`` package ships, read with
``importlib.resources``. The page holds no data of its own; its script reads the HTTP API
(the same endpoints any client uses) and draws from that. The script is native ES modules
loaded by ``<script type="module">``, with no build step; ``static/main.js`` is the entry.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from btcmlops import __version__
from btcmlops.api.deps import ServicesDep
from btcmlops.api.services import Services
from btcmlops.errors import NotFoundError

router = APIRouter(prefix="/dashboard", include_in_schema=False)

# plotly.js is 4.8 MB and changes only with the plotly package; its URL carries that version.
_LONG_CACHE = "public, max-age=31536000, immutable"
# The page's own files are small: browsers revalidate them (ETag) so an upgrade shows at once.
_REVALIDATE = "no-cache"
# Defence in depth behind the page's rule of inserting API data as text only: scripts come
# from this server alone (no inline script, no eval), nothing is fetched from elsewhere, and
# the page cannot be framed. plotly.js sets inline styles on the charts it draws.
_PAGE_HEADERS = {
    "Cache-Control": _REVALIDATE,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Asset:
    """A static file held in memory with its gzip form and an ETag."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str
    cache_control: str


def _asset(body: bytes, media_type: str, cache_control: str) -> Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, gzip.compress(body, compresslevel=6), media_type, etag, cache_control)


def plotly_version() -> str:
    """The installed ``plotly`` package's version (it names the bundled plotly.js build)."""
    try:
        return version("plotly")
    except PackageNotFoundError:  # an unusual install: the file may still be there
        return "unknown"


@cache
def plotly_js_version() -> str:
    """The version of plotly.js itself, from the banner at the top of the bundled file."""
    source = resources.files("plotly") / "package_data" / "plotly.min.js"
    try:
        with source.open("rb") as bundle:
            banner = bundle.read(200).decode("ascii", errors="replace")
    except OSError:
        return "unknown"
    match = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", banner)
    return match.group(1) if match else "unknown"


@cache
def _plotly_js() -> Asset:
    source = resources.files("plotly") / "package_data" / "plotly.min.js"
    if not source.is_file():
        raise NotFoundError(
            "plotly.min.js is missing from the installed plotly package; reinstall it with "
            "`pip install --force-reinstall plotly`"
        )
    return _asset(source.read_bytes(), "text/javascript; charset=utf-8", _LONG_CACHE)


_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _static_folder() -> Traversable:
    return resources.files("btcmlops.dashboard") / "static"


@cache
def _own_files() -> frozenset[str]:
    """The page's script modules and stylesheet, as paths under ``static/``.

    The script is native ES modules (``main.js`` imports ``js/...``), so the list is read from
    the folder rather than written out here; nothing but ``.js`` and ``.css`` is ever served.
    """

    def walk(folder: Traversable, prefix: str) -> Iterator[str]:
        for entry in folder.iterdir():
            if entry.is_dir():
                yield from walk(entry, f"{prefix}{entry.name}/")
            elif Path(entry.name).suffix in _MEDIA_TYPES:
                yield prefix + entry.name

    return frozenset(walk(_static_folder(), ""))


@cache
def _own_file(name: str) -> Asset:
    data = _static_folder().joinpath(*name.split("/")).read_bytes()
    return _asset(data, _MEDIA_TYPES[Path(name).suffix], _REVALIDATE)


@cache
def _shell_template() -> Template:
    text = (resources.files("btcmlops.dashboard") / "templates" / "index.html").read_text("utf-8")
    return Template(text)


def _key_configured(services: Services) -> bool:
    key = services.settings.api_key
    return key is not None and bool(key.get_secret_value())


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, services: ServicesDep) -> HTMLResponse:
    """The page shell; every number on it is fetched from the API by the script."""
    api_base = request.scope.get("root_path", "").rstrip("/")
    values = {
        "api_base": api_base,
        "version": __version__,
        "plotly_version": plotly_version(),
        "plotly_js_version": plotly_js_version(),
        # Whether to ask for the key before an action (the API checks it either way).
        "key_required": "true" if _key_configured(services) else "false",
        "reads_protected": "true" if services.settings.protect_reads else "false",
    }
    page = _shell_template().substitute({k: html.escape(v, quote=True) for k, v in values.items()})
    return HTMLResponse(page, headers=_PAGE_HEADERS)


@router.get("/static/{name:path}")
def static_file(name: str, request: Request) -> Response:
    """``plotly.min.js`` and the page's own modules and stylesheet; nothing else."""
    if name == "plotly.min.js":
        asset = _plotly_js()
    elif name in _own_files():
        asset = _own_file(name)
    else:
        raise NotFoundError(
            f"no dashboard file {name!r}: expected plotly.min.js or one of "
            f"{', '.join(sorted(_own_files()))}"
        )
    headers = {
        "Cache-Control": asset.cache_control,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
