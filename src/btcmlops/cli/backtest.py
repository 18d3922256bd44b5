"""``btcmlops backtest``: what the service's policy would have done on real history."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table

from btcmlops.cli.output import console, emit_json, replay_events, replay_progress
from btcmlops.cli.state import state
from btcmlops.clock import ManualClock, parse_utc
from btcmlops.errors import ConfigurationError, InvalidInputError
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE

HOME_MARKERS = ("btcmlops.db", "models", "simulation.json")


def backtest(
    ctx: typer.Context,
    prices: Path = typer.Option(..., "--prices", help="Hourly price CSV (as `ingest prices`)."),
    news: Path | None = typer.Option(None, "--news", help="News CSV (as `ingest news`)."),
    start: str = typer.Option(..., "--start", help="First day replayed (UTC date)."),
    end: str = typer.Option(..., "--end", help="Last day replayed, inclusive (UTC date)."),
    warm_days: int = typer.Option(
        60, "--warm-days", help="Days before --start the first champion trains on."
    ),
    feature_set: str = typer.Option("vader", "--feature-set", help="vader or finbert."),
    model_type: str = typer.Option(DEFAULT_MODEL_TYPE, "--model-type", help="Model type."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report."),
    home: Path | None = typer.Option(
        None, "--home", help="Keep the replay's store and models in this new folder."
    ),
) -> None:
    """Replay real history hour by hour through the service's own jobs (features,
    predictions, outcomes, drift checks, retraining, deployment and rollback as configured)
    and set the policy beside the first champion never replaced, a weekly retraining and the
    naive rules, on the same hours, with paired tests. Ctrl-C stops with what was done."""
    from btcmlops.context import AppContext
    from btcmlops.mlops.runtime import Runtime
    from btcmlops.modeling.model_types import validate_model_type
    from btcmlops.replay.backtest import Backtest, BacktestPlan
    from btcmlops.replay.policies import WeeklyTrainer, evaluate
    from btcmlops.replay.report import document

    for path, option in ((prices, "--prices"), (news, "--news")):
        if path is not None and not path.is_file():
            raise InvalidInputError(f"{option} {path}: no such file")
    first_day, last_day = _day(start, "--start"), _day(end, "--end")
    if last_day < first_day:
        raise InvalidInputError(f"--end {end} is before --start {start}")
    plan = BacktestPlan(
        prices=prices,
        news=news,
        start=first_day,
        end=last_day + timedelta(days=1),
        warm_days=warm_days,
        feature_set=feature_set,
        model_type=validate_model_type(model_type),
    )
    base = state(ctx).settings()
    folder, throwaway = _home(home)
    # The replay's own SQLite store in its own home: a backtest never writes into the
    # configured database, whatever BTCMLOPS_DATABASE_URL says.
    settings = base.model_copy(update={"home": folder, "database_url": None})
    started = time.perf_counter()
    context = AppContext(settings=settings, clock=ManualClock(plan.start))
    runtime = Runtime(context).start()
    try:
        with replay_progress() as progress:
            event = replay_events(progress, context.clock.now)
            engine = Backtest(runtime, plan, events=event)
            loading = progress.add_task("reading the files", total=None, when="")
            engine.load(lambda done, total: progress.update(loading, completed=done, total=total))
            progress.update(loading, description="warming up: first champion")
            engine.warm_up()
            progress.update(loading, total=1, completed=1, description="files read, warmed up")
            task = progress.add_task("replaying hour by hour", total=plan.hours + 1, when="")

            def advance(done: int, total: int) -> None:
                when = f"{context.clock.now():%Y-%m-%d %H:%M} UTC"
                progress.update(task, completed=done, total=total, when=when)

            # The weekly policy's fits run beside the replay, on the second core.
            weekly = WeeklyTrainer(runtime, plan)
            try:
                run = engine.replay(advance, after_hour=weekly.passed)
                scoring = progress.add_task("scoring the policies", total=None, when="")
                evaluation = evaluate(runtime, run, weekly)
            finally:
                weekly.close()
            progress.update(scoring, total=1, completed=1)
        report = document(evaluation, time.perf_counter() - started)
        if html is not None:
            from btcmlops.replay.html import write_html

            write_html(evaluation, report, html)
    finally:
        runtime.close()
        context.close()
        if throwaway:
            shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        emit_json(report)
    else:
        _print(report)
        if html is not None:
            console.print(f"report written to {html}")
    if run.interrupted:
        raise typer.Exit(130)


def _day(text: str, option: str):  # type: ignore[no-untyped-def]
    try:
        instant = parse_utc(text)
    except (ValueError, InvalidInputError) as exc:
        raise InvalidInputError(f"{option} {text!r} is not a date (expected YYYY-MM-DD)") from exc
    return instant.replace(hour=0, minute=0, second=0, microsecond=0)


def _home(home: Path | None) -> tuple[Path, bool]:
    if home is None:
        return Path(tempfile.mkdtemp(prefix="btcmlops-backtest-")), True
    if any((home / marker).exists() for marker in HOME_MARKERS):
        raise ConfigurationError(
            f"{home} already holds a btcmlops home; a backtest needs a new folder (or none, "
            "for a throwaway one)"
        )
    home.mkdir(parents=True, exist_ok=True)
    return home, False


def _print(report: dict) -> None:  # type: ignore[type-arg]
    from btcmlops.replay.report import versus_text

    table = Table(
        title=f"backtest {report['start']:%Y-%m-%d} to "
        f"{report['end'] - timedelta(hours=1):%Y-%m-%d} "
        f"({report['hours']} hours, {report['seconds']:.0f} s)"
        + (" - INTERRUPTED" if report["interrupted"] else "")
    )
    for column in (
        "policy",
        "accuracy [95% CI]",
        "predictions",
        "log loss",
        "retrainings",
        "deployments",
        "rollbacks",
        "adaptive minus it (p)",
    ):
        table.add_column(column)
    rows = list(report["policies"].items()) + list(report["baselines"].items())
    for name, row in rows:
        paired = row.get("adaptive_against_it")
        table.add_row(
            name,
            _accuracy(row),
            str(row["predictions"]),
            "-" if row["log_loss"] is None else f"{row['log_loss']:.4f}",
            str(row.get("retrainings", "-")),
            str(row.get("deployments", "-")),
            str(row.get("rollbacks", "-")),
            versus_text(paired),
        )
    console.print(table)
    console.print(f"models see {report['models_see']}", highlight=False)
    totals = report["drift_alarms"]["total"]
    if totals:
        console.print(
            "drift alarms: "
            + ", ".join(f"{count} {kind}" for kind, count in totals.items() if count),
            highlight=False,
        )
    for note in report["notes"]:
        console.print(f"note: {note}", style="dim", highlight=False)


def _accuracy(row: dict) -> str:  # type: ignore[type-arg]
    if row["accuracy"] is None:
        return "-"
    low, high = row["accuracy_ci"]
    return f"{row['accuracy']:.4f} [{low:.3f}-{high:.3f}]"
