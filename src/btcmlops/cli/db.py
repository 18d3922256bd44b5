"""``btcmlops db``: the store's schema."""

from __future__ import annotations

import typer

from btcmlops.cli.output import console, emit_json
from btcmlops.cli.state import state
from btcmlops.config import mask_url
from btcmlops.db import migrate
from btcmlops.db.engine import check_connection, make_engine

app = typer.Typer(help="Database schema: upgrade and status.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create or upgrade the database schema to this version of btcmlops (safe to repeat)."""
    url = state(ctx).settings().effective_database_url
    engine = make_engine(url)
    try:
        check_connection(engine)
        before, after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        console.print(f"database {mask_url(url)} already at revision {after}; nothing to do")
    else:
        console.print(f"database {mask_url(url)} upgraded from {before or 'empty'} to {after}")


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the database URL, its schema revision and this code's head revision."""
    url = state(ctx).settings().effective_database_url
    engine = make_engine(url)
    try:
        check_connection(engine)
        report = {
            "database_url": mask_url(url),
            "revision": migrate.current_revision(engine),
            "head": migrate.head_revision(),
            "status": migrate.schema_status(engine),
        }
    finally:
        engine.dispose()
    if as_json:
        emit_json(report)
    else:
        for key, value in report.items():
            console.print(f"{key:>13}: {value}")
