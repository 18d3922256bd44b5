"""``btcmlops serve``: the HTTP API (and, later, the dashboard and the scheduler)."""

from __future__ import annotations

import ipaddress
import os

import typer

from btcmlops.cli.output import err_console
from btcmlops.cli.state import state
from btcmlops.errors import ConfigurationError


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, max=32, help="Worker processes."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback host without BTCMLOPS_API_KEY."
    ),
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Do not run the scheduler in the server processes."
    ),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    context = state(ctx).context()
    settings = context.settings
    has_key = settings.api_key is not None and bool(settings.api_key.get_secret_value())
    if not _is_loopback(host) and not has_key and not insecure:
        raise ConfigurationError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could "
            "retrain, promote or roll back models. Set BTCMLOPS_API_KEY, or pass --insecure."
        )
    _ = context.store  # opening it migrates the schema once, before any worker starts
    err_console.print(f"btcmlops API on http://{host}:{port} (docs at /docs)", highlight=False)
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers == 1:
        from btcmlops.server import build_app

        uvicorn.run(build_app(context, with_scheduler=not no_scheduler), **options)
        return
    # Several workers each build their own context from the environment.
    if settings.now is not None:
        os.environ["BTCMLOPS_NOW"] = settings.now.isoformat()
    os.environ["BTCMLOPS_SERVE_SCHEDULER"] = "false" if no_scheduler else "true"
    # Each worker counts its requests and predictions in files there; whichever worker
    # answers GET /metrics adds them up. Emptied here, so counts start with the server.
    from btcmlops.api.prometheus import MULTIPROCESS_ENV, prepare_multiprocess_dir

    os.environ[MULTIPROCESS_ENV] = str(prepare_multiprocess_dir(settings.home))
    uvicorn.run("btcmlops.server:app", workers=workers, **options)
