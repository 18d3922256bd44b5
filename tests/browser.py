"""Headless Chromium for the dashboard tests: find (or install) it, serve the app, watch pages.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright through
``executable_path``; nothing is ever downloaded by Playwright (never ``playwright install``).
When Chromium is missing, the set-up installs the ``chromium`` and ``chromium-driver``
packages with apt-get (one process at a time: xdist workers and other test runs wait on a lock
file, then find it installed); if that fails the tests fail in CI and are skipped elsewhere,
with the reason.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from btcmlops.context import AppContext
from btcmlops.server import build_app

CHROMIUM = Path("/usr/bin/chromium")
# Machine-wide, not per test run: apt-get refuses to run twice at once.
CHROMIUM_INSTALL_LOCK = Path("/tmp/btcmlops-chromium-install.lock")
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
VIEWPORT = {"width": 1400, "height": 900}


def _give_up(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _say(config: pytest.Config, message: str) -> None:
    """Print past pytest's output capture, so a slow install is not a silent pause."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(message)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n{message}", flush=True)


def ensure_chromium(config: pytest.Config) -> Path:
    """``/usr/bin/chromium``, installing the Debian packages first when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    with CHROMIUM_INSTALL_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if CHROMIUM.exists():  # another worker installed it while this one waited
            return CHROMIUM
        return _install_chromium(config)


def _install_chromium(config: pytest.Config) -> Path:
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        _give_up(f"{CHROMIUM} is missing and apt-get is not available to install it")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    packages = " ".join(CHROMIUM_PACKAGES)
    _say(
        config,
        f"browser tests: {CHROMIUM} is missing; installing the Debian packages {packages} "
        "(apt-get update && apt-get install -y ...), this takes a minute",
    )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [*prefix, apt_get, "update"],
        [*prefix, apt_get, "install", "-y", *CHROMIUM_PACKAGES],
    ):
        try:
            subprocess.run(
                command, check=True, capture_output=True, text=True, env=environment, timeout=900
            )
        except (OSError, subprocess.SubprocessError) as exc:
            output = getattr(exc, "stderr", None) or ""
            _give_up(
                f"headless Chromium is missing and `{' '.join(command)}` failed ({exc}) "
                f"{output.strip()[-400:]}; install it with: sudo apt-get install -y {packages}"
            )
    if not CHROMIUM.exists():
        _give_up(f"apt-get installed {packages} but {CHROMIUM} is still missing")
    return CHROMIUM


# ------------------------------------------------------------------------------ the server


def dashboard_app(context: AppContext) -> FastAPI:
    """The app exactly as ``btcmlops serve`` builds it: the API with the dashboard."""
    return build_app(context)


@contextmanager
def serve_in_thread(app: FastAPI, timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:  # a condition, polled: uvicorn offers no event to wait on
        if not thread.is_alive():
            raise RuntimeError("the dashboard server stopped while starting; see the log above")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dashboard server did not start within {timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# ------------------------------------------------------------------------------ pages


@dataclass
class WatchedPage:
    """A page and every console error and uncaught exception it produced."""

    page: object  # playwright.sync_api.Page (imported lazily: playwright is a dev extra)
    errors: list[str] = field(default_factory=list)

    def goto_view(self, base_url: str, view: str, timeout_ms: float = 60_000) -> None:
        """Open ``view`` and wait until its first refresh has drawn everything."""
        self.page.goto(f"{base_url}/dashboard#{view}")
        self.wait_until_ready(view, timeout_ms)

    def wait_until_ready(self, view: str, timeout_ms: float = 60_000) -> None:
        self.page.wait_for_function(
            "view => document.body.dataset.ready === view", arg=view, timeout=timeout_ms
        )

    def refreshes(self) -> int:
        return int(self.page.evaluate("Number(document.body.dataset.refreshes || 0)"))

    def wait_for_refreshes(self, view: str, more_than: int, timeout_ms: float = 60_000) -> None:
        """Wait until ``view`` has finished more than ``more_than`` refreshes in all."""
        self.page.wait_for_function(
            "([view, done]) => document.body.dataset.ready === view && "
            "Number(document.body.dataset.refreshes) > done",
            arg=[view, more_than],
            timeout=timeout_ms,
        )

    def chart_points(self, chart_id: str) -> int:
        """Points drawn in a plotly chart: 0 unless its SVG exists and a trace has data."""
        return int(
            self.page.evaluate(
                """id => {
                    const box = document.getElementById(id);
                    if (!box || !box.querySelector('.main-svg') || !box.data) return 0;
                    return box.data.reduce(
                        (sum, trace) => sum + (trace.x || trace.y || []).filter(
                            v => v !== null && v !== undefined).length, 0);
                }""",
                chart_id,
            )
        )

    def banner_text(self) -> str:
        banner = self.page.locator("#banner")
        return banner.inner_text() if banner.is_visible() else ""


def watch(page) -> WatchedPage:  # type: ignore[no-untyped-def]
    watched = WatchedPage(page)
    page.on(
        "console",
        lambda message: (
            watched.errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))
    return watched
