"""The embedded default data source: a deterministic simulated Bitcoin market with news.

One :class:`MarketSimulator` is both a price source and a news source. It generates its
whole path when it is built (vectorised with numpy; a year takes a fraction of a second) and
answers ``fetch_bars`` / ``fetch_articles`` by slicing it, so fetching a window at once or
hour by hour gives the same data. The model, its formulas and its measured predictability
are described in ``docs/market-model.md``; in short:

* log returns are GARCH(1,1) with Student-t innovations (volatility clustering, heavy tails);
* a persistent hourly market *mood* (AR(1)) sets the sentiment of the articles published in
  that hour, and shifts the expected log return of the *next* hour by a small amount;
* at ``regime_change_day`` the mood-return relation flips (or weakens), volatility jumps and
  the news volume changes, so drift detection and retraining have something real to find.

Randomness comes from ``numpy.random.SeedSequence(seed, spawn_key=...)``, one stream per
simulated day: the first N days of a path are the same whatever ``days`` is.

>>> from btcmlops.clock import parse_utc
>>> simulator = MarketSimulator(SimulationConfig(seed=7, start=parse_utc("2024-01-01"), days=2))
>>> bars = list(simulator.fetch_bars(parse_utc("2024-01-01"), parse_utc("2024-01-01T03:00Z")))
>>> [bar.ts.hour for bar in bars], all(bar.problem() is None for bar in bars)
([0, 1, 2], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from btcmlops.clock import HOUR, Clock, ensure_utc, floor_hour
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.simulator_config import SimulationConfig
from btcmlops.ingest.simulator_path import simulate_path
from btcmlops.ingest.simulator_text import render_article, sentiment_level
from btcmlops.ingest.sources import Bar, NewsItem
from btcmlops.ingest.storage import ImportSummary, store_articles, store_bars

SOURCE_NAME = "simulator"
URL_ROOT = "https://sim.btcmlops.local/news"


class MarketSimulator:
    """A simulated market: a :class:`~btcmlops.ingest.sources.PriceSource` and a
    :class:`~btcmlops.ingest.sources.NewsSource` in one, built from a :class:`SimulationConfig`.
    """

    name = SOURCE_NAME

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        self.path = simulate_path(self.config)

    @classmethod
    def ending_at(
        cls,
        end: datetime,
        days: int,
        seed: int,
        regime_change_day: int | None = None,
        **overrides: Any,
    ) -> MarketSimulator:
        """A simulator whose ``days`` of history end at the hour that contains ``end``.

        ``end`` is floored to the hour, so with ``end = clock.now()`` every bar of the history
        has closed. ``overrides`` are other :class:`SimulationConfig` fields.
        """
        known = {f.name for f in fields(SimulationConfig)} - {"seed", "start", "days"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown simulation setting(s) {', '.join(unknown)}; "
                f"expected some of: {', '.join(sorted(known))}"
            )
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise InvalidInputError(f"days must be a positive integer, got {days!r}")
        start = floor_hour(end) - timedelta(days=days)
        config = SimulationConfig(
            seed=seed, start=start, days=days, regime_change_day=regime_change_day, **overrides
        )
        return cls(config)

    # --- the two source interfaces ----------------------------------------------------

    def fetch_bars(self, start: datetime, end: datetime) -> list[Bar]:
        """The simulated bars whose hour starts in ``[start, end)`` (none outside the span)."""
        path, origin = self.path, self.config.start
        first, stop = self._hour_slice(start, end)
        return [
            Bar(
                ts=origin + timedelta(hours=i),
                open=float(path.open[i]),
                high=float(path.high[i]),
                low=float(path.low[i]),
                close=float(path.close[i]),
                volume=float(path.volume[i]),
            )
            for i in range(first, stop)
        ]

    def fetch_articles(self, start: datetime, end: datetime) -> list[NewsItem]:
        """The simulated articles published in ``[start, end)``, oldest first."""
        offsets = self.path.article_offsets
        first, stop = (
            int(np.searchsorted(offsets, (ensure_utc(moment) - self.config.start).total_seconds()))
            for moment in (start, end)
        )
        return [self._article(i) for i in range(first, max(first, stop))]

    def _hour_slice(self, start: datetime, end: datetime) -> tuple[int, int]:
        def index(moment: datetime) -> int:
            hours = (ensure_utc(moment) - self.config.start) / HOUR
            return min(max(math.ceil(hours), 0), self.path.hours)

        first, stop = index(start), index(end)
        return first, max(first, stop)

    def _article(self, i: int) -> NewsItem:
        path, config = self.path, self.config
        title, body, outlet = render_article(
            sentiment_level(float(path.article_sentiment[i])),
            path.text_uniforms[i].tolist(),
            summary_level=sentiment_level(float(path.summary_sentiment[i])),
        )
        return NewsItem(
            title=title,
            body=body,
            url=f"{URL_ROOT}/{config.seed}/{config.world_id}/{i}",
            source=outlet,
            published_at=config.start + timedelta(seconds=int(path.article_offsets[i])),
        )

    # --- the latent state, for tests, docs and the curious --------------------------------

    def hourly_frame(self) -> pd.DataFrame:
        """One row per simulated hour (index: UTC hour start): OHLCV, the log return, the
        volatility, the mood, the signal strength in force and the number of articles."""
        path = self.path
        index = pd.date_range(self.config.start, periods=path.hours, freq="h", name="ts")
        columns = ("open", "high", "low", "close", "volume", "log_return", "volatility", "mood")
        frame = pd.DataFrame({name: getattr(path, name) for name in columns}, index=index)
        return frame.assign(signal=path.signal, articles=path.article_counts)

    def article_frame(self) -> pd.DataFrame:
        """One row per article, oldest first: when it was published, the hour it belongs to
        and its latent sentiment."""
        start = pd.Timestamp(self.config.start)
        published = start + pd.to_timedelta(self.path.article_offsets, unit="s")
        return pd.DataFrame(
            {
                "published_at": published,
                "hour": published.floor("h"),
                "sentiment": self.path.article_sentiment,
            }
        )

    def __repr__(self) -> str:
        config = self.config
        return (
            f"MarketSimulator(seed={config.seed}, start={config.start.isoformat()}, "
            f"days={config.days}, regime_change_day={config.regime_change_day})"
        )


ProgressCallback = Callable[[int, int], None]


def simulate_into_store(
    store: Store,
    clock: Clock,
    simulator: MarketSimulator,
    start: datetime,
    end: datetime,
    symbol: str,
    progress: ProgressCallback | None = None,
) -> tuple[ImportSummary, ImportSummary]:
    """Store the simulator's bars and articles of ``[start, end)``, one day at a time.

    Idempotent: what is already stored is skipped. ``progress(done_hours, total_hours)`` is
    called after each day. Returns the bar summary and the article summary.
    """
    start, end = ensure_utc(start), ensure_utc(end)
    if end <= start:
        raise InvalidInputError(
            f"nothing to simulate: the window end {end.isoformat()} is not after its start "
            f"{start.isoformat()}"
        )
    bars, articles = ImportSummary(), ImportSummary()
    total_hours = math.ceil((end - start) / HOUR)
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + timedelta(days=1), end)
        store_bars(
            store,
            simulator.fetch_bars(chunk_start, chunk_end),
            symbol=symbol,
            source=simulator.name,
            clock=clock,
            summary=bars,
        )
        store_articles(
            store, simulator.fetch_articles(chunk_start, chunk_end), clock=clock, summary=articles
        )
        chunk_start = chunk_end
        if progress is not None:
            progress(math.ceil((chunk_end - start) / HOUR), total_hours)
    return bars, articles
