"""``btcmlops demo``: the main job on the embedded default (grows with each layer)."""

from __future__ import annotations

import typer

from btcmlops.cli.output import console
from btcmlops.cli.state import state
from btcmlops.config import mask_url
from btcmlops.db import migrate


def demo(ctx: typer.Context) -> None:
    """Run the whole system on a simulated market in a fresh or given BTCMLOPS_HOME."""
    context = state(ctx).context()
    store = context.store
    console.print(
        f"store ready at {mask_url(context.settings.effective_database_url)} "
        f"(schema {migrate.current_revision(store.engine)})"
    )
