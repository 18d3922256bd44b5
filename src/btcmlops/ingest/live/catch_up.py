"""``ingest live``: bring prices and news up to now from the live sources.

Each source is fetched and stored on its own: a source that fails (offline, rate-limited,
a malformed answer) yields one line saying what failed, and everything that did arrive, from
it (the pages before the failure) and from the other sources, is still stored. Storage goes
through ``ingest.storage``, so a re-run only adds what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select

from btcmlops.clock import HOUR, Clock, ensure_utc, floor_hour
from btcmlops.config import Settings
from btcmlops.db.models import PriceBar
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.live.exchange import (
    COINBASE_EXCHANGE_URL,
    DEFAULT_PRODUCT_ID,
    ExchangePriceSource,
)
from btcmlops.ingest.live.http import PoliteHttpClient, SourceError
from btcmlops.ingest.live.rss import RssNewsSource, news_sources
from btcmlops.ingest.sources import Bar, NewsItem, NewsSource, PriceSource, RejectedRow
from btcmlops.ingest.storage import ImportSummary, store_articles, store_bars

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK = timedelta(days=7)


@dataclass
class SourceResult:
    """What one source delivered: ``error`` is its one-line failure, ``None`` when it worked."""

    source: str
    kind: Literal["prices", "news"]
    summary: ImportSummary
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """``<source> <kind>: rows read ..., inserted ...`` (what was stored, failed or not)."""
        return f"{self.source} {self.kind}: {self.summary.line()}"

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "ok": self.ok,
            "error": self.error,
            "summary": self.summary.as_dict(),
        }


@dataclass
class LiveIngestReport:
    """Per-source results of one ``ingest_live`` run and the windows it asked for."""

    prices_from: datetime
    news_from: datetime
    until: datetime
    results: list[SourceResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every source delivered (the CLI exits non-zero otherwise)."""
        return all(result.ok for result in self.results)

    @property
    def failures(self) -> list[SourceResult]:
        return [result for result in self.results if not result.ok]

    def error_lines(self) -> list[str]:
        """One line per failed source, e.g. ``coinbase candles: cannot connect to ...``."""
        return [result.error for result in self.results if result.error]

    def total(self) -> ImportSummary:
        """All sources' counts added up."""
        combined = ImportSummary()
        for result in self.results:
            combined.read += result.summary.read
            combined.inserted += result.summary.inserted
            combined.skipped += result.summary.skipped
            combined.rejected += result.summary.rejected
        return combined

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "prices_from": self.prices_from.isoformat(),
            "news_from": self.news_from.isoformat(),
            "until": self.until.isoformat(),
            "results": [result.as_dict() for result in self.results],
        }


def ingest_live(
    store: Store,
    clock: Clock,
    price_source: PriceSource,
    news_sources: Sequence[NewsSource],
    *,
    symbol: str,
    since: datetime | None = None,
) -> LiveIngestReport:
    """Fetch and store closed bars and recent articles up to ``clock.now()``.

    Prices start at ``since`` when given, else one hour after the last bar stored for
    ``symbol``, else :data:`DEFAULT_LOOKBACK` ago. News is asked for from ``since``, else
    :data:`DEFAULT_LOOKBACK` ago (feeds only carry their latest entries; storage drops the
    ones already stored).

    Raises
    ------
    InvalidInputError
        ``since`` lies after the clock's now.
    """
    now = clock.now()
    if since is not None and ensure_utc(since) > now:
        raise InvalidInputError(
            f"since {ensure_utc(since).isoformat()} is after now ({now.isoformat()}); "
            "expected a moment in the past"
        )
    prices_from = _prices_start(store, symbol, now, since)
    news_from = ensure_utc(since) if since is not None else now - DEFAULT_LOOKBACK
    report = LiveIngestReport(prices_from=prices_from, news_from=news_from, until=now)

    report.results.append(_ingest_prices(store, clock, price_source, symbol, prices_from, now))
    for source in news_sources:
        report.results.append(_ingest_news(store, clock, source, news_from, now))
    for result in report.results:
        log.info("%s", result.line())
        if result.error:
            log.warning("%s", result.error)
    return report


def live_sources(
    http: PoliteHttpClient,
    clock: Clock,
    *,
    product_id: str = DEFAULT_PRODUCT_ID,
    exchange_url: str = COINBASE_EXCHANGE_URL,
    feeds: Mapping[str, str] | None = None,
) -> tuple[ExchangePriceSource, list[RssNewsSource]]:
    """The default live sources (Coinbase candles and the news feeds) over one client."""
    prices = ExchangePriceSource(http, clock, product_id=product_id, base_url=exchange_url)
    return prices, news_sources(http, feeds)


@contextmanager
def configured_live_sources(
    settings: Settings, clock: Clock
) -> Iterator[tuple[ExchangePriceSource, list[RssNewsSource]]]:
    """The live sources as ``settings`` configure them, over one client closed afterwards."""
    with PoliteHttpClient(
        clock,
        timeout_seconds=settings.live_http_timeout_seconds,
        attempts=settings.live_http_attempts,
        min_interval_seconds=settings.live_min_request_interval_seconds,
        max_retry_after_seconds=settings.live_max_retry_after_seconds,
    ) as http:
        yield live_sources(
            http,
            clock,
            product_id=settings.live_product_id,
            exchange_url=settings.live_exchange_url,
            feeds=settings.live_news_feeds,
        )


def _prices_start(store: Store, symbol: str, now: datetime, since: datetime | None) -> datetime:
    if since is not None:
        return ensure_utc(since)
    with store.session() as session:
        last = session.scalar(select(func.max(PriceBar.ts)).where(PriceBar.symbol == symbol))
    if last is not None:
        return ensure_utc(last) + HOUR
    return floor_hour(now - DEFAULT_LOOKBACK)


def _ingest_prices(
    store: Store,
    clock: Clock,
    source: PriceSource,
    symbol: str,
    start: datetime,
    end: datetime,
) -> SourceResult:
    bars: list[Bar] = []
    error: str | None = None
    try:
        for bar in source.fetch_bars(start, end):
            bars.append(bar)
    except SourceError as failure:
        error = str(failure)
    summary = _summary_with_rejections(source)
    store_bars(store, bars, symbol=symbol, source=source.name, clock=clock, summary=summary)
    return SourceResult(source.name, "prices", summary, error)


def _ingest_news(
    store: Store, clock: Clock, source: NewsSource, start: datetime, end: datetime
) -> SourceResult:
    items: list[NewsItem] = []
    error: str | None = None
    try:
        for item in source.fetch_articles(start, end):
            items.append(item)
    except SourceError as failure:
        error = str(failure)
    summary = _summary_with_rejections(source)
    store_articles(store, items, clock=clock, summary=summary)
    return SourceResult(source.name, "news", summary, error)


def _summary_with_rejections(source: object) -> ImportSummary:
    """A summary that already counts the rows the source itself rejected (if it reports any)."""
    summary = ImportSummary()
    rejections: Sequence[RejectedRow] = getattr(source, "rejections", ())
    for rejected in rejections:
        summary.read += 1
        summary.reject(rejected.line, rejected.reason)
    return summary
