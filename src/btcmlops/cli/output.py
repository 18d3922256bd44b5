"""Console output shared by commands: rich tables for people, JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from btcmlops.jsonable import jsonable

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def json_leaf(value: Any) -> Any:
    """What the terminal's JSON prints for a value json cannot write itself (instants, numpy
    scalars, paths; anything else as its text)."""
    return jsonable(value, fallback=str)


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (no rich markup, so it pipes cleanly)."""
    print(json.dumps(payload, default=json_leaf, indent=2, allow_nan=False))


@contextmanager
def progress_bar(description: str, *, unit: str = "rows") -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields the ``progress(done, total)`` callback."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def print_rejections(rejections: Iterable[Any], *, limit: int = 20) -> None:
    """List rejected rows (line and reason) on stderr, at most ``limit`` of them."""
    rejections = list(rejections)
    for rejection in rejections[:limit]:
        err_console.print(
            f"  rejected line {rejection.line}: {rejection.reason}", highlight=False, markup=False
        )
    if len(rejections) > limit:
        err_console.print(f"  ... and {len(rejections) - limit} more rejected rows")


# How a replay's events look beside its progress bars (``btcmlops demo`` and ``backtest``).
EVENT_STYLES = {
    "drift": "yellow",
    "retrain": "cyan",
    "deployed": "bold green",
    "kept": "dim",
    "rollback": "bold red",
    "fallback": "bold yellow",
    "market": "bold magenta",
    "finbert": "dim",
    "stopped": "bold red",
}


def replay_progress() -> Progress:
    """Progress bars for a replay: a task per stage, the replay clock's time beside it
    (each task's ``when`` field)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[when]}"),
        TimeElapsedColumn(),
        console=err_console,
    )


def replay_events(progress: Progress, now: Callable[[], datetime]) -> Callable[[str, str], None]:
    """The events callback of a replay: one line per event above the bars, stamped with the
    replay clock's time ``now()``."""

    def event(kind: str, message: str) -> None:
        style = EVENT_STYLES.get(kind, "default")
        progress.console.print(
            f"[dim]{now():%Y-%m-%d %H:%M}[/] [{style}]{kind:>8}[/] {message}", highlight=False
        )

    return event
