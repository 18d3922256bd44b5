"""``btcmlops ingest``: prices and news in, from the simulator, CSV files or live sources."""

from __future__ import annotations

from pathlib import Path

import typer

from btcmlops.cli.output import console, emit_json, err_console, print_rejections, progress_bar
from btcmlops.cli.state import state
from btcmlops.clock import parse_utc

app = typer.Typer(help="Load prices and news: simulated, from CSV, or live.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    days: int = typer.Option(120, "--days", min=1, max=3650, help="Days of history."),
    seed: int = typer.Option(42, "--seed", help="Random seed: the same seed gives the same data."),
    regime_change_day: int | None = typer.Option(
        None, "--regime-change-day", help="Day (after the start) when the market changes."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Simulate DAYS of hourly prices and news ending at the current hour, and store them."""
    from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
    from btcmlops.ingest.world import SimulatedWorld

    context = state(ctx).context()
    simulator = MarketSimulator.ending_at(
        context.clock.now(), days, seed, regime_change_day=regime_change_day
    )
    config = simulator.config
    SimulatedWorld(config).save(context.settings.home)  # the hourly ingest job continues it
    with progress_bar("simulating", unit="hours") as progress:
        bars, articles = simulate_into_store(
            context.store,
            context.clock,
            simulator,
            config.start,
            config.end,
            context.settings.symbol,
            progress=progress,
        )
    if as_json:
        emit_json({"prices": bars.as_dict(), "news": articles.as_dict()})
        return
    console.print(f"simulated {config.start:%Y-%m-%d %H:%M} to {config.end:%Y-%m-%d %H:%M} UTC")
    console.print(f"prices: {bars.line()}")
    console.print(f"news:   {articles.line()}")


@app.command("prices")
def prices(
    ctx: typer.Context,
    csv: Path = typer.Option(..., "--csv", help="CryptoDataDownload export or plain OHLCV CSV."),
    symbol: str | None = typer.Option(None, "--symbol", help="Market symbol (default: settings)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import hourly bars from a CSV file (idempotent: existing hours are skipped)."""
    from btcmlops.ingest.csv_prices import import_price_csv

    context = state(ctx).context()
    with progress_bar(f"importing {csv.name}", unit="bars") as progress:
        summary = import_price_csv(
            context.store,
            csv,
            clock=context.clock,
            symbol=symbol or context.settings.symbol,
            progress=progress,
        )
    _report(summary, as_json)


@app.command("news")
def news(
    ctx: typer.Context,
    csv: Path = typer.Option(..., "--csv", help="CSV with at least date,text columns."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import news articles from a CSV file (deduplicated by URL, else by text)."""
    from btcmlops.ingest.csv_news import import_news_csv

    context = state(ctx).context()
    with progress_bar(f"importing {csv.name}", unit="articles") as progress:
        summary = import_news_csv(context.store, csv, clock=context.clock, progress=progress)
    _report(summary, as_json)


def _report(summary, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        emit_json(summary.as_dict())
        return
    console.print(summary.detected, highlight=False)
    print_rejections(summary.rejections)
    console.print(summary.line(), highlight=False)


@app.command("live")
def live(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="Fetch from this UTC instant (default: after the last stored bar)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fetch closed hourly candles from the exchange and articles from the RSS feeds.

    Exits 1 when any source failed (one line each); whatever did arrive is stored.
    """
    from btcmlops.ingest.live import configured_live_sources, ingest_live

    context = state(ctx).context()
    settings = context.settings
    with (
        configured_live_sources(settings, context.clock) as (price_source, news_sources),
        err_console.status("fetching live prices and news"),
    ):
        report = ingest_live(
            context.store,
            context.clock,
            price_source,
            news_sources,
            symbol=settings.symbol,
            since=parse_utc(since) if since else None,
        )
    if as_json:
        emit_json(report.as_dict())
    else:
        for result in report.results:
            if result.ok:
                console.print(result.line(), highlight=False)
        console.print(f"total: {report.total().line()}", highlight=False)
    for line in report.error_lines():
        err_console.print(f"error: {line}", highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)
