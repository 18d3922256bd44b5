"""Price features, and the time-window primitives every feature family is computed with.

Everything here works on a dense hourly grid (:class:`HourlyGrid`): one slot per UTC hour,
NaN where no bar exists. A window of ``W`` hours ending at ``t`` is therefore exactly the
``W`` slots ``t-W+1 .. t`` whatever is missing: windows are time-based, never row counts.

Why not ``pandas.rolling``: its online algorithm (add the entering value, subtract the leaving
one) makes the last bits of a window's sum depend on where the computation started, so an
incremental build could differ from a full rebuild. The primitives below add the ``W`` lagged
copies of the series in a fixed order instead, so each value depends only on its own window,
bit for bit, and the work is still vectorised over all hours.

>>> grid_values = np.array([1.0, 2.0, np.nan, 4.0])
>>> trailing_sum(grid_values, 2)[0].tolist()
[1.0, 3.0, 2.0, 4.0]
>>> trailing_mean(grid_values, 3, min_count=2).tolist()
[nan, 1.5, 1.5, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from btcmlops.features.schema import (
    ATR_HOURS,
    BOLLINGER_HOURS,
    BOLLINGER_WIDTH_STDS,
    EMA_SPANS_HOURS,
    EMA_WINDOW_HOURS,
    MACD_FAST,
    MACD_SIGNAL,
    MACD_SLOW,
    RETURN_HORIZONS_HOURS,
    RSI_HOURS,
    SMA_RATIO_WINDOWS_HOURS,
    STOCHASTIC_HOURS,
    VOLATILITY_WINDOWS_HOURS,
)

HOUR_NS = 3_600_000_000_000

Array = np.ndarray


@dataclass(frozen=True)
class HourlyGrid:
    """The consecutive UTC hours ``first_hour .. first_hour + length - 1`` (hours since epoch)."""

    first_hour: int
    length: int

    def hours(self) -> Array:
        """Each slot's hour start, in whole hours since 1970-01-01T00:00Z."""
        return np.arange(self.first_hour, self.first_hour + self.length, dtype=np.int64)


# ------------------------------------------------------------------------ window primitives


def lag(values: Array, hours: int) -> Array:
    """The value ``hours`` slots earlier (the bar exactly at ``t - hours``), NaN before the grid."""
    shifted = np.full(len(values), np.nan)
    if hours < len(values):
        shifted[hours:] = values[: len(values) - hours]
    return shifted


def trailing_sum(values: Array, hours: int) -> tuple[Array, Array]:
    """Sum and count of the non-NaN values in the window of ``hours`` slots ending at each slot."""
    n = len(values)
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    total = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    for j in range(min(hours, n)):
        total[j:] += filled[: n - j]
        count[j:] += present[: n - j]
    return total, count


def trailing_total(values: Array, hours: int) -> Array:
    """Sum over the window of a series with no gaps (zeros where nothing happened)."""
    n = len(values)
    total = np.zeros(n)
    for j in range(min(hours, n)):
        total[j:] += values[: n - j]
    return total


def trailing_weighted_total(values: Array, weights: Sequence[float]) -> Array:
    """``sum_j weights[j] * values[t - j]`` over ``j < len(weights)``, for a gap-free series."""
    n = len(values)
    total = np.zeros(n)
    for j, weight in enumerate(weights[:n]):
        total[j:] += weight * values[: n - j]
    return total


def trailing_mean(values: Array, hours: int, *, min_count: int) -> Array:
    """Mean of the values present in the window; NaN with fewer than ``min_count`` of them."""
    total, count = trailing_sum(values, hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count < max(min_count, 1)] = np.nan
    return mean


def trailing_std(values: Array, hours: int, *, min_count: int, ddof: int = 1) -> Array:
    """Standard deviation of the values present in the window (two-pass, so no cancellation)."""
    n = len(values)
    total, count = trailing_sum(values, hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    squares = np.zeros(n)
    for j in range(min(hours, n)):
        deviation = values[: n - j] - mean[j:]
        squares[j:] += np.where(np.isnan(deviation), 0.0, deviation * deviation)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(squares / (count - ddof))
    std[count < max(min_count, ddof + 1)] = np.nan
    return std


def trailing_weighted_mean(values: Array, weights: Sequence[float], *, min_count: int) -> Array:
    """``sum w_j x[t-j] / sum w_j`` over the values present in the last ``len(weights)`` slots."""
    n = len(values)
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    numerator = np.zeros(n)
    denominator = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    for j, weight in enumerate(weights[:n]):
        numerator[j:] += weight * filled[: n - j]
        denominator[j:] += weight * present[: n - j]
        count[j:] += present[: n - j]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = numerator / denominator
    mean[count < max(min_count, 1)] = np.nan
    return mean


def trailing_max(values: Array, hours: int) -> Array:
    """Largest value present in the window (NaN when none is)."""
    n = len(values)
    largest = values.copy()
    for j in range(1, min(hours, n)):
        np.fmax(largest[j:], values[: n - j], out=largest[j:])
    return largest


def trailing_min(values: Array, hours: int) -> Array:
    """Smallest value present in the window (NaN when none is)."""
    n = len(values)
    smallest = values.copy()
    for j in range(1, min(hours, n)):
        np.fmin(smallest[j:], values[: n - j], out=smallest[j:])
    return smallest


def half_window(hours: int) -> int:
    """The minimum count for a window statistic: at least half of its hours must have data."""
    return max(1, math.ceil(hours / 2))


def ema_weights(span: int, window: int) -> Array:
    """Weights ``(1 - α)^j``, ``α = 2 / (span + 1)``, of an EMA cut at ``window`` hours."""
    alpha = 2.0 / (span + 1.0)
    return (1.0 - alpha) ** np.arange(window, dtype=float)


def truncated_ema(values: Array, span: int, window: int) -> Array:
    """An exponential moving average over a fixed finite window.

    The usual EMA is a recursion over the whole history; this is the same weighted average
    (pandas' ``ewm(span=span, adjust=True)``) restricted to the last ``window`` hours and to
    the bars present in them, so it depends only on a bounded stretch of data.
    """
    return trailing_weighted_mean(values, ema_weights(span, window), min_count=half_window(window))


def _ratio(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, NaN where the denominator is zero or missing."""
    with np.errstate(invalid="ignore", divide="ignore"):
        result = numerator / denominator
    result[~np.isfinite(result)] = np.nan
    return result


# ------------------------------------------------------------------------------ the features


def compute_price_features(
    open_: Array, high: Array, low: Array, close: Array, volume: Array
) -> dict[str, Array]:
    """Every price-family feature on the grid the OHLCV arrays share (NaN where no bar is)."""
    features: dict[str, Array] = {"close": close}
    _returns(features, close)
    _volatility(features, high, low)
    _oscillators(features, high, low, close)
    _moving_averages(features, close)
    _bands(features, high, low, close)
    _volume(features, volume)
    _bar_shape(features, open_, high, low, close)
    return features


def _returns(features: dict[str, Array], close: Array) -> None:
    for h in RETURN_HORIZONS_HOURS:
        features[f"ret_{h}h"] = _ratio(close, lag(close, h)) - 1.0
    log_close = np.log(close)
    for h in RETURN_HORIZONS_HOURS:
        features[f"log_ret_{h}h"] = log_close - lag(log_close, h)
    up = np.where(np.isnan(features["log_ret_1h"]), np.nan, features["log_ret_1h"] > 0)
    features["up_share_24h"] = trailing_mean(up, 24, min_count=half_window(24))


def _volatility(features: dict[str, Array], high: Array, low: Array) -> None:
    hourly = features["log_ret_1h"]
    for w in VOLATILITY_WINDOWS_HOURS:
        features[f"volatility_{w}h"] = trailing_std(hourly, w, min_count=max(2, half_window(w)))
    features["volatility_ratio_6h_24h"] = _ratio(
        features["volatility_6h"], features["volatility_24h"]
    )
    features["volatility_ratio_24h_168h"] = _ratio(
        features["volatility_24h"], features["volatility_168h"]
    )
    features["ret_zscore_24h"] = _ratio(hourly, features["volatility_24h"])
    # Parkinson (1980): sigma^2 = E[ln(H/L)^2] / (4 ln 2), from each bar's high-low range.
    squared_range = np.log(high / low) ** 2
    mean_squared = trailing_mean(squared_range, 24, min_count=half_window(24))
    features["parkinson_vol_24h"] = np.sqrt(mean_squared / (4.0 * math.log(2.0)))


def _oscillators(features: dict[str, Array], high: Array, low: Array, close: Array) -> None:
    # Cutler's RSI: simple sums of gains and losses over the window rather than Wilder's
    # recursive smoothing, so the value depends on the last 14 hours only.
    change = close - lag(close, 1)
    gains, gain_count = trailing_sum(np.maximum(change, 0.0), RSI_HOURS)
    losses, _ = trailing_sum(np.maximum(-change, 0.0), RSI_HOURS)
    rsi = 100.0 * _ratio(gains, gains + losses)
    rsi[gain_count < half_window(RSI_HOURS)] = np.nan
    features[f"rsi_{RSI_HOURS}h"] = rsi

    _, bars = trailing_sum(close, STOCHASTIC_HOURS)
    highest = trailing_max(high, STOCHASTIC_HOURS)
    lowest = trailing_min(low, STOCHASTIC_HOURS)
    stochastic = _ratio(close - lowest, highest - lowest)
    stochastic[bars < half_window(STOCHASTIC_HOURS)] = np.nan
    features[f"stoch_k_{STOCHASTIC_HOURS}h"] = stochastic

    # True range needs the previous close; with that bar missing it falls back to high - low.
    previous = lag(close, 1)
    true_range = np.fmax(high - low, np.fmax(np.abs(high - previous), np.abs(low - previous)))
    atr = trailing_mean(true_range, ATR_HOURS, min_count=half_window(ATR_HOURS))
    features[f"atr_{ATR_HOURS}h"] = atr
    features[f"atr_pct_{ATR_HOURS}h"] = _ratio(atr, close)


def _moving_averages(features: dict[str, Array], close: Array) -> None:
    sma = {
        w: trailing_mean(close, w, min_count=half_window(w))
        for w in sorted({*SMA_RATIO_WINDOWS_HOURS, 24, 168})
    }
    features["sma_24h"] = sma[24]
    features["sma_168h"] = sma[168]
    for w in SMA_RATIO_WINDOWS_HOURS:
        features[f"close_to_sma_{w}h"] = _ratio(close, sma[w]) - 1.0
    features["sma_6h_to_sma_24h"] = _ratio(sma[6], sma[24]) - 1.0
    features["sma_24h_to_sma_168h"] = _ratio(sma[24], sma[168]) - 1.0

    no_bar = np.isnan(close)
    ema = {}
    for span in EMA_SPANS_HOURS:
        average = truncated_ema(close, span, EMA_WINDOW_HOURS[span])
        # An hour without a bar has no EMA of its own; the MACD signal below averages the
        # MACD line of hours with bars only, never a value carried over a gap.
        average[no_bar] = np.nan
        ema[span] = average
        features[f"ema_{span}h"] = average
        features[f"close_to_ema_{span}h"] = _ratio(close, average) - 1.0

    macd = ema[MACD_FAST] - ema[MACD_SLOW]
    signal = truncated_ema(macd, MACD_SIGNAL, EMA_WINDOW_HOURS[MACD_SIGNAL])
    features["macd"] = macd
    features["macd_signal"] = signal
    features["macd_hist"] = macd - signal
    features["macd_rel"] = _ratio(macd, close)
    features["macd_signal_rel"] = _ratio(signal, close)
    features["macd_hist_rel"] = _ratio(macd - signal, close)


def _bands(features: dict[str, Array], high: Array, low: Array, close: Array) -> None:
    w = BOLLINGER_HOURS
    middle = trailing_mean(close, w, min_count=half_window(w))
    # Bollinger bands use the population standard deviation of the window's closes.
    spread = trailing_std(close, w, min_count=half_window(w), ddof=0)
    lower = middle - BOLLINGER_WIDTH_STDS * spread
    width = 2.0 * BOLLINGER_WIDTH_STDS * spread
    features[f"bb_position_{w}h"] = _ratio(close - lower, width)
    features[f"bb_width_{w}h"] = _ratio(width, middle)

    for w in (24, 168):
        _, bars = trailing_sum(close, w)
        enough = bars >= half_window(w)
        to_high = _ratio(close, trailing_max(high, w)) - 1.0
        to_low = _ratio(close, trailing_min(low, w)) - 1.0
        features[f"close_to_high_{w}h"] = np.where(enough, to_high, np.nan)
        features[f"close_to_low_{w}h"] = np.where(enough, to_low, np.nan)


def _volume(features: dict[str, Array], volume: Array) -> None:
    features["volume"] = volume
    for w in (6, 24, 168):
        mean = trailing_mean(volume, w, min_count=half_window(w))
        features[f"volume_ratio_{w}h"] = _ratio(volume, mean)
    features["volume_change_1h"] = _ratio(volume, lag(volume, 1)) - 1.0
    features["volume_change_24h"] = _ratio(volume, lag(volume, 24)) - 1.0
    mean = trailing_mean(volume, 24, min_count=half_window(24))
    std = trailing_std(volume, 24, min_count=half_window(24))
    features["volume_zscore_24h"] = _ratio(volume - mean, std)


def _bar_shape(
    features: dict[str, Array], open_: Array, high: Array, low: Array, close: Array
) -> None:
    features["range_1h"] = _ratio(high - low, close)
    features["body_1h"] = _ratio(close, open_) - 1.0
    features["close_location_1h"] = _ratio(close - low, high - low)
    features["upper_wick_1h"] = _ratio(high - np.maximum(open_, close), close)
    features["lower_wick_1h"] = _ratio(np.minimum(open_, close) - low, close)
