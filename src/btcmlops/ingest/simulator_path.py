"""The simulated market's whole history as arrays, generated at once from a config.

Log returns are GARCH(1,1) with Student-t innovations; an AR(1) hourly mood sets the
sentiment of each hour's articles (Poisson arrivals) and leans on the next hour's return;
each hour's high and low are sampled from a Brownian bridge between its open and close. The
formulas and their measured predictability are in ``docs/market-model.md``.

Randomness comes from ``numpy.random.SeedSequence(seed, spawn_key=...)``, one stream per
simulated day: the first N days of a path are the same whatever ``days`` is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from btcmlops.ingest.simulator_config import SimulationConfig
from btcmlops.ingest.simulator_text import DRAWS_PER_ARTICLE

_HOURS_PER_DAY = 24
_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = _HOURS_PER_DAY * _SECONDS_PER_HOUR
# Spread of the summary's sentiment around the headline's, so mid-range articles mix two
# tones as real ones do (in latent sentiment units).
_SUMMARY_TONE_JITTER = 0.15


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
