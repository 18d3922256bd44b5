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

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from btcmlops.clock import HOUR, Clock, ensure_utc, floor_hour
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.simulator_text import DRAWS_PER_ARTICLE, render_article, sentiment_level
from btcmlops.ingest.sources import Bar, NewsItem
from btcmlops.ingest.storage import ImportSummary, store_articles, store_bars

SOURCE_NAME = "simulator"
URL_ROOT = "https://sim.btcmlops.local/news"

_HOURS_PER_DAY = 24
_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = _HOURS_PER_DAY * _SECONDS_PER_HOUR
# Spread of the summary's sentiment around the headline's, so mid-range articles mix two
# tones as real ones do (in latent sentiment units).
_SUMMARY_TONE_JITTER = 0.15


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated market. The same config gives the same data.

    Parameters
    ----------
    seed:
        Non-negative integer; the only source of randomness.
    start:
        The first simulated hour (UTC, on the hour).
    days:
        Length of the simulated history.
    regime_change_day:
        Days after ``start`` at which the regime changes, or ``None`` for no change.
    initial_price:
        Open of the first bar, USD.
    hourly_volatility:
        Long-run standard deviation of hourly log returns before the change (0.005 = 0.5 %).
    garch_alpha, garch_beta:
        GARCH(1,1) reaction and persistence; ``alpha + beta < 1``.
    tail_dof:
        Degrees of freedom of the Student-t innovations (lower = heavier tails; > 2).
    base_volume:
        Typical hourly volume, BTC.
    mood_persistence:
        AR(1) coefficient of the hourly market mood (0.97: half-life of about 23 hours).
    news_rate_per_hour:
        Mean number of articles per hour before the change (Poisson arrivals).
    article_noise:
        Spread of an article's tone around the mood, in mood standard deviations.
    sentiment_gain:
        Slope of ``tanh`` that maps tone to a latent sentiment in (-1, 1).
    signal_strength:
        Expected next-hour log return per unit of mood, in units of that hour's volatility.
    post_change_signal:
        Multiplier of ``signal_strength`` from the change on (-1 flips it, 0.3 weakens it).
    post_change_volatility:
        Multiplier of volatility from the change on.
    post_change_news_rate:
        Multiplier of ``news_rate_per_hour`` from the change on.
    """

    seed: int = 42
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    days: int = 90
    regime_change_day: int | None = None
    initial_price: float = 42_000.0
    hourly_volatility: float = 0.005
    garch_alpha: float = 0.06
    garch_beta: float = 0.92
    tail_dof: float = 5.0
    base_volume: float = 350.0
    mood_persistence: float = 0.97
    news_rate_per_hour: float = 2.0
    article_noise: float = 0.6
    sentiment_gain: float = 0.6
    signal_strength: float = 0.13
    post_change_signal: float = -1.0
    post_change_volatility: float = 2.0
    post_change_news_rate: float = 1.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start))
        problems = self._problems()
        if problems:
            raise InvalidInputError("invalid simulation settings: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.start != floor_hour(self.start):
            problems.append(f"start {self.start.isoformat()} is not on the hour")
        if not isinstance(self.days, int) or self.days < 1:
            problems.append(f"days must be a positive integer, got {self.days!r}")
        elif self.regime_change_day is not None and not (
            isinstance(self.regime_change_day, int) and 1 <= self.regime_change_day < self.days
        ):
            problems.append(
                f"regime_change_day must lie inside the simulated span (1 to {self.days - 1} "
                f"for {self.days} days), got {self.regime_change_day!r}"
            )
        positive = ("initial_price", "hourly_volatility", "base_volume", "post_change_volatility")
        problems += [f"{name} must be > 0" for name in positive if not getattr(self, name) > 0]
        non_negative = (
            "garch_alpha",
            "garch_beta",
            "news_rate_per_hour",
            "article_noise",
            "sentiment_gain",
            "signal_strength",
            "post_change_news_rate",
        )
        problems += [f"{name} must be >= 0" for name in non_negative if getattr(self, name) < 0]
        if not self.garch_alpha + self.garch_beta < 1:
            problems.append("garch_alpha + garch_beta must be < 1 (a stationary variance)")
        if not self.tail_dof > 2:
            problems.append("tail_dof must be > 2 (the variance must exist)")
        if not 0 <= self.mood_persistence < 1:
            problems.append("mood_persistence must be in [0, 1)")
        numbers = [f.name for f in fields(self) if f.type in ("float", float)]
        problems += [
            f"{name} must be finite" for name in numbers if not _finite(getattr(self, name))
        ]
        return problems

    @property
    def end(self) -> datetime:
        """The instant the simulated history ends (the close of the last bar)."""
        return self.start + timedelta(days=self.days)

    @property
    def regime_change_at(self) -> datetime | None:
        if self.regime_change_day is None:
            return None
        return self.start + timedelta(days=self.regime_change_day)

    @cached_property
    def world_id(self) -> str:
        """A short fingerprint of everything but ``days``: article URLs carry it, so two
        differently configured worlds never share a URL, while a longer run of the same world
        reproduces the URLs of a shorter one."""
        described = {k: v for k, v in asdict(self).items() if k != "days"}
        described["start"] = self.start.isoformat()
        return hashlib.sha256(repr(sorted(described.items())).encode()).hexdigest()[:10]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class _DayDraws:
    """The random numbers of one simulated day, drawn from that day's own stream."""

    innovations: np.ndarray  # unit-variance Student-t, one per hour
    mood_shocks: np.ndarray
    volume_shocks: np.ndarray
    high_uniforms: np.ndarray
    low_uniforms: np.ndarray
    article_counts: np.ndarray  # per hour
    article_offsets: np.ndarray  # seconds after the day's start, sorted
    article_shocks: np.ndarray
    tone_jitter: np.ndarray
    text_uniforms: np.ndarray  # (articles, DRAWS_PER_ARTICLE)


def _draw_day(config: SimulationConfig, day: int, news_rates: np.ndarray) -> _DayDraws:
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0, day)))
    dof = config.tail_dof
    innovations = rng.standard_t(dof, _HOURS_PER_DAY) * math.sqrt((dof - 2) / dof)
    mood_shocks = rng.standard_normal(_HOURS_PER_DAY)
    volume_shocks = rng.standard_normal(_HOURS_PER_DAY)
    high_uniforms, low_uniforms = rng.random((2, _HOURS_PER_DAY))
    counts = rng.poisson(news_rates)
    total = int(counts.sum())
    hours = np.repeat(np.arange(_HOURS_PER_DAY), counts)
    # Sorting keeps each article in its hour because the second is below 3600.
    offsets = np.sort(hours * _SECONDS_PER_HOUR + rng.integers(0, _SECONDS_PER_HOUR, total))
    return _DayDraws(
        innovations=innovations,
        mood_shocks=mood_shocks,
        volume_shocks=volume_shocks,
        high_uniforms=high_uniforms,
        low_uniforms=low_uniforms,
        article_counts=counts,
        article_offsets=offsets,
        article_shocks=rng.standard_normal(total),
        tone_jitter=rng.standard_normal(total),
        text_uniforms=rng.random((total, DRAWS_PER_ARTICLE)),
    )


def garch_variance(innovations: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Conditional variances of a unit-level GARCH(1,1) (Bollerslev 1986).

    ``h[t] = (1 - alpha - beta) + alpha * eps[t-1]**2 + beta * h[t-1]`` with
    ``eps[t] = sqrt(h[t]) * z[t]`` and ``h[0] = 1`` (the unconditional variance), so
    ``h[t] = omega + (alpha * z[t-1]**2 + beta) * h[t-1]``. The recursion is inherently
    sequential; a plain loop over a year of hours costs a few milliseconds.

    >>> garch_variance(np.array([0.0, 2.0, 0.0]), 0.1, 0.8).round(3).tolist()
    [1.0, 0.9, 1.18]
    """
    omega = 1.0 - alpha - beta
    growth = (alpha * np.square(innovations) + beta).tolist()
    variance = np.empty(len(innovations))
    level = 1.0
    for t in range(len(innovations)):
        variance[t] = level
        level = omega + growth[t] * level
    return variance


def brownian_bridge_extremes(
    log_return: np.ndarray, scale: np.ndarray, high_uniforms: np.ndarray, low_uniforms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the highest and lowest log price inside each hour, given its open and close.

    Within the hour the log price is taken as a Brownian bridge from 0 to ``log_return`` with
    variance ``scale**2``. Its maximum M satisfies ``P(M > m) = exp(-2 m (m - x) / s**2)``
    for ``m >= max(0, x)`` (e.g. Glasserman, *Monte Carlo Methods in Financial Engineering*,
    2004, section 6.4), so by inversion ``M = (x + sqrt(x**2 - 2 s**2 log U)) / 2``; the
    minimum is the mirror image. Both bound the open and the close by construction.
    """
    x = log_return
    spread_high = np.sqrt(x**2 - 2.0 * scale**2 * np.log1p(-high_uniforms))
    spread_low = np.sqrt(x**2 - 2.0 * scale**2 * np.log1p(-low_uniforms))
    return (x + spread_high) / 2.0, (x - spread_low) / 2.0


@dataclass(frozen=True)
class SimulatedPath:
    """The whole simulated history as arrays: one entry per hour, or one per article.

    Article offsets are whole seconds after the config's ``start``, sorted.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    log_return: np.ndarray
    volatility: np.ndarray
    mood: np.ndarray
    signal: np.ndarray  # the signal strength in force in each hour
    article_counts: np.ndarray
    article_offsets: np.ndarray
    article_sentiment: np.ndarray  # latent, in (-1, 1)
    summary_sentiment: np.ndarray  # the headline's sentiment plus a little jitter
    text_uniforms: np.ndarray  # (articles, DRAWS_PER_ARTICLE)

    @property
    def hours(self) -> int:
        return len(self.close)


def simulate_path(config: SimulationConfig) -> SimulatedPath:
    """Generate the whole history described by ``config`` (see ``docs/market-model.md``)."""
    hours = config.days * _HOURS_PER_DAY
    change_hour = hours if config.regime_change_day is None else config.regime_change_day * 24
    after_change = np.arange(hours) >= change_hour
    news_rates = config.news_rate_per_hour * np.where(
        after_change, config.post_change_news_rate, 1.0
    )
    days = [
        _draw_day(config, day, news_rates[day * _HOURS_PER_DAY : (day + 1) * _HOURS_PER_DAY])
        for day in range(config.days)
    ]

    def joined(attribute: str) -> np.ndarray:
        return np.concatenate([getattr(day, attribute) for day in days])

    initial_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1,)))
    initial_mood = float(initial_rng.standard_normal())  # a draw from the stationary law
    mood = market_mood(joined("mood_shocks"), config.mood_persistence, initial_mood)
    innovations = joined("innovations")
    variance = garch_variance(innovations, config.garch_alpha, config.garch_beta)
    volatility = (
        config.hourly_volatility
        * np.sqrt(variance)
        * np.where(after_change, config.post_change_volatility, 1.0)
    )
    signal = config.signal_strength * np.where(after_change, config.post_change_signal, 1.0)
    # The return of hour t leans on the mood of hour t-1: the articles that reveal that mood
    # are all published before hour t-1's bar closes, when its feature row is built.
    previous_mood = np.concatenate([[initial_mood], mood[:-1]])
    log_return = volatility * (signal * previous_mood + innovations)
    open_, high, low, close = _ohlc(
        config.initial_price,
        log_return,
        volatility,
        joined("high_uniforms"),
        joined("low_uniforms"),
    )
    # Volume rises with volatility and with the size of the hour's move, times log-normal
    # noise of mean one, as trading volume does on real exchanges.
    volume = (
        config.base_volume
        * (volatility / config.hourly_volatility)
        * (0.5 + 0.5 * np.abs(innovations))
        * np.exp(0.3 * joined("volume_shocks") - 0.045)
    )

    offsets = np.concatenate(
        [number * _SECONDS_PER_DAY + day.article_offsets for number, day in enumerate(days)]
    ).astype(np.int64)
    tone = mood[offsets // _SECONDS_PER_HOUR] + config.article_noise * joined("article_shocks")
    sentiment = np.tanh(config.sentiment_gain * tone)
    return SimulatedPath(
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.round(volume, 4),
        log_return=log_return,
        volatility=volatility,
        mood=mood,
        signal=signal,
        article_counts=joined("article_counts"),
        article_offsets=offsets,
        article_sentiment=sentiment,
        summary_sentiment=sentiment + _SUMMARY_TONE_JITTER * joined("tone_jitter"),
        text_uniforms=np.concatenate([day.text_uniforms for day in days]),
    )


def market_mood(shocks: np.ndarray, persistence: float, initial: float) -> np.ndarray:
    """AR(1) with unit stationary variance: ``m[t] = phi m[t-1] + sqrt(1 - phi**2) e[t]``.

    ``initial`` is ``m[-1]``, the mood just before the first hour.

    >>> market_mood(np.zeros(3), 0.5, 1.0).tolist()
    [0.5, 0.25, 0.125]
    """
    gain = math.sqrt(1.0 - persistence**2)
    mood, _ = lfilter([gain], [1.0, -persistence], shocks, zi=[persistence * initial])
    return mood


def _ohlc(
    initial_price: float,
    log_return: np.ndarray,
    volatility: np.ndarray,
    high_uniforms: np.ndarray,
    low_uniforms: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open, high, low and close in cents; each hour opens at the previous close."""
    log_close = math.log(initial_price) + np.cumsum(log_return)
    log_open = np.concatenate([[math.log(initial_price)], log_close[:-1]])
    up, down = brownian_bridge_extremes(log_return, volatility, high_uniforms, low_uniforms)
    # Rounding is monotone, so the OHLC order survives it; the max/min guards only protect
    # against an equality that float rounding could break either way.
    close = np.round(np.exp(log_close), 2)
    open_ = np.concatenate([[round(initial_price, 2)], close[:-1]])
    high = np.maximum(np.round(np.exp(log_open + up), 2), np.maximum(open_, close))
    low = np.minimum(np.round(np.exp(log_open + down), 2), np.minimum(open_, close))
    return open_, high, low, close


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
