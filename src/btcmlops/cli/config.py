"""``btcmlops config``: the effective settings."""

from __future__ import annotations

import typer
from rich.table import Table

from btcmlops.cli.output import console, emit_json
from btcmlops.cli.state import state

app = typer.Typer(help="Show configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the effective settings (environment, .env and defaults) with secrets masked."""
    settings = state(ctx).settings()
    shown = settings.masked()
    if as_json:
        emit_json(shown)
        return
    table = Table(title="btcmlops settings", show_lines=False)
    table.add_column("setting (BTCMLOPS_...)")
    table.add_column("value")
    for name, value in shown.items():
        table.add_row(name.upper(), "" if value is None else str(value))
    console.print(table)
