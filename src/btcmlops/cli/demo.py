"""``btcmlops demo``: the whole loop on a simulated market, then the API and dashboard."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta

import typer
from rich.table import Table

from btcmlops.cli.output import console, replay_events, replay_progress
from btcmlops.cli.state import state
from btcmlops.clock import ManualClock, floor_hour
from btcmlops.context import AppContext
from btcmlops.errors import ConfigurationError

HOME_FILES = ("btcmlops.db", "btcmlops.db-wal", "btcmlops.db-shm", "simulation.json")
HOME_FOLDERS = ("models", "spool")


def demo(
    ctx: typer.Context,
    days: int = typer.Option(120, "--days", min=40, max=730, help="Days of simulated market."),
    seed: int = typer.Option(42, "--seed", help="The simulated market's seed."),
    regime_change_day: int | None = typer.Option(
        None, "--regime-change-day", help="Day of the regime change (default: 5/8 of the days)."
    ),
    warm_days: int | None = typer.Option(
        None, "--warm-days", help="Days loaded before the replay (default: 3/8 of the days)."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port of the API at the end."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API and dashboard."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Delete this home's database, models and spool first."
    ),
) -> None:
    """Simulate a market with a regime change and replay it hour by hour through the live jobs:
    predictions logged and scored, drift found, retraining triggered, models deployed. Then
    serve the API and the dashboard on http://127.0.0.1:PORT/dashboard."""
    from btcmlops.mlops.runtime import Runtime
    from btcmlops.replay.demo import Replay, ReplayPlan, summarise

    cli_state = state(ctx)
    settings = cli_state.settings()
    _prepare_home(settings, fresh)
    # The world ends at midnight UTC, so the change (a whole number of days after the start)
    # happens at midnight and the daily checks see whole days of the new market.
    end = floor_hour(settings.make_clock().now()).replace(hour=0)
    change = regime_change_day if regime_change_day is not None else round(days * 5 / 8)
    warm = warm_days if warm_days is not None else round(days * 3 / 8)
    if not warm + 2 <= change < days:
        raise ConfigurationError(
            f"the regime change (day {change}) must come after the warm-up ({warm} days) and "
            f"before the end (day {days})"
        )
    plan = ReplayPlan(days=days, seed=seed, regime_change_day=change, warm_days=warm)
    clock = ManualClock(end - timedelta(days=days))
    context = AppContext(settings=settings, clock=clock)
    runtime = Runtime(context).start()
    started = time.perf_counter()
    try:
        with replay_progress() as progress:
            event = replay_events(progress, clock.now)
            replay = Replay(runtime, plan, events=event)
            setup = progress.add_task(f"loading the first {warm} days", total=None, when="")
            result = replay.prepare(end)
            progress.update(setup, total=1, completed=1)
            task = progress.add_task("replaying hour by hour", total=None, when="")

            def advance(done: int, total: int) -> None:
                progress.update(
                    task, completed=done, total=total, when=f"{clock.now():%Y-%m-%d %H:%M} UTC"
                )

            replay.run(result, progress=advance)
        summary = summarise(runtime, result)
    finally:
        runtime.close()
    _print_summary(summary, result, time.perf_counter() - started, settings)
    if serve:
        _serve(settings, clock, port)


def _prepare_home(settings, fresh: bool) -> None:  # type: ignore[no-untyped-def]
    home = settings.home
    default_db = settings.database_url is None
    existing = [home / name for name in HOME_FILES + HOME_FOLDERS if (home / name).exists()]
    if fresh:
        if not default_db:
            raise ConfigurationError(
                "--fresh only clears the default SQLite home; with BTCMLOPS_DATABASE_URL set, "
                "point the demo at an empty database instead"
            )
        for path in existing:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return
    if (home / "simulation.json").exists() or (home / "models").exists():
        raise ConfigurationError(
            f"{home} already holds a btcmlops home; run the demo with --fresh to start over "
            "(deletes its database, models and spool), or set BTCMLOPS_HOME to a new folder"
        )


def _print_summary(summary, result, seconds: float, settings) -> None:  # type: ignore[no-untyped-def]
    table = Table(
        title=f"demo summary ({seconds:.0f} s; regime change {result.change_at:%Y-%m-%d})"
    )
    for column in (
        "feature set",
        "predictions",
        "accuracy before change",
        "accuracy after change",
        "drift alarms",
        "retrainings",
        "deployed",
    ):
        table.add_column(column)
    for feature_set, row in summary.items():
        table.add_row(
            feature_set,
            str(row["predictions"]),
            _accuracy_cell(row["before_change"]),
            _accuracy_cell(row["after_change"]),
            str(row["drift_alarms"]),
            str(row["retrainings"]["runs"]),
            str(row["retrainings"]["deployed"]),
        )
    console.print(table)
    for feature_set, row in summary.items():
        for deployment in row["deployments_after_change"]:
            new, old = deployment["new_model"], deployment["old_champion_same_hours"]
            console.print(
                f"{feature_set}: {deployment['new_version']} deployed "
                f"{deployment['deployed_at']:%Y-%m-%d %H:%M}: realised accuracy "
                f"{_accuracy_cell(new)} on its {deployment['hours']} hours; the replaced champion "
                f"would have scored {_accuracy_cell(old)} on the same hours",
                highlight=False,
            )
    for feature_set, row in summary.items():
        console.print(f"[bold]{feature_set}: every change of champion and its evidence[/]")
        for decision in row["decisions"]:
            console.print(
                f"  {decision['at']:%Y-%m-%d %H:%M} {decision['action']:>13} "
                f"{decision['version']}: {decision['reason']}",
                highlight=False,
            )
    if "finbert" not in summary:
        console.print(
            "FinBERT was not available, so only the VADER feature set ran. To include it: "
            "`make install-finbert` and set BTCMLOPS_FINBERT_MODEL to a folder with the "
            "ProsusAI/finbert weights.",
            style="dim",
        )


def _accuracy_cell(rate: dict) -> str:  # type: ignore[type-arg]
    if not rate["n"]:
        return "-"
    low, high = rate["interval"]
    return f"{rate['accuracy']:.3f} [{low:.3f}-{high:.3f}] (n={rate['n']})"


def _serve(settings, clock, port: int) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from btcmlops.server import build_app

    context = AppContext(settings=settings, clock=clock)
    console.print(
        f"serving the API on http://127.0.0.1:{port} and the dashboard on "
        f"http://127.0.0.1:{port}/dashboard (Ctrl-C to stop)"
    )
    uvicorn.run(build_app(context), host="127.0.0.1", port=port, log_level="warning")
