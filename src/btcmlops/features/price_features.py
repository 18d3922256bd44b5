"""Price features: returns, volatility, oscillators, moving averages, bands, volume and the
shape of each bar, on the hourly grid of :mod:`btcmlops.features.windows`.

Per-bar values are computed on the whole grid; window statistics only at the slots asked for
(``at``), so an hourly build computes one row's windows, not its whole trailing window's.
"""

from __future__ import annotations

import math

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
from btcmlops.features.windows import (
    Array,
    Slots,
    half_window,
    lag,
    mean_of,
    on_grid,
    pick,
    trailing_max,
    trailing_mean,
    trailing_min,
    trailing_std,
    trailing_sum,
    trailing_sums,
    truncated_ema,
    window_slots,
)


def _ratio(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, NaN where the denominator is zero or missing."""
    with np.errstate(invalid="ignore", divide="ignore"):
        result = numerator / denominator
    result[~np.isfinite(result)] = np.nan
    return result


# ------------------------------------------------------------------------------ the features


# The windows the closes are summed over: moving averages, Bollinger middle, bar counts.
_CLOSE_WINDOWS = sorted({*SMA_RATIO_WINDOWS_HOURS, 24, 168, STOCHASTIC_HOURS, BOLLINGER_HOURS})


def compute_price_features(
    open_: Array, high: Array, low: Array, close: Array, volume: Array, *, at: Slots = None
) -> dict[str, Array]:
    """Every price-family feature at the slots ``at`` (default: every slot) of the grid the
    OHLCV arrays share (NaN where no bar is).

    Per-bar values are computed on the whole grid (cheap); windows only at the slots asked
    for, and a series that is itself averaged over a window (the MACD line) at every slot its
    window reads.
    """
    features: dict[str, Array] = {"close": pick(close, at)}
    # Every window of the closes at once: one pass (or one gather) instead of one per window.
    close_sums = trailing_sums(close, _CLOSE_WINDOWS, at)
    log_return = _returns(features, close, at)
    _volatility(features, log_return, high, low, at)
    _oscillators(features, high, low, close, close_sums, at)
    _moving_averages(features, close, close_sums, at)
    _bands(features, high, low, close, close_sums, at)
    _volume(features, volume, at)
    _bar_shape(features, open_, high, low, close, at)
    return features


def _returns(features: dict[str, Array], close: Array, at: Slots) -> Array:
    """The return features; returns the hourly log return of every slot."""
    for h in RETURN_HORIZONS_HOURS:
        features[f"ret_{h}h"] = pick(_ratio(close, lag(close, h)) - 1.0, at)
    log_close = np.log(close)
    log_return = log_close - lag(log_close, 1)
    for h in RETURN_HORIZONS_HOURS:
        features[f"log_ret_{h}h"] = pick(log_close - lag(log_close, h), at)
    up = np.where(np.isnan(log_return), np.nan, log_return > 0)
    features["up_share_24h"] = trailing_mean(up, 24, min_count=half_window(24), at=at)
    return log_return


def _volatility(
    features: dict[str, Array], log_return: Array, high: Array, low: Array, at: Slots
) -> None:
    for w in VOLATILITY_WINDOWS_HOURS:
        features[f"volatility_{w}h"] = trailing_std(
            log_return, w, min_count=max(2, half_window(w)), at=at
        )
    features["volatility_ratio_6h_24h"] = _ratio(
        features["volatility_6h"], features["volatility_24h"]
    )
    features["volatility_ratio_24h_168h"] = _ratio(
        features["volatility_24h"], features["volatility_168h"]
    )
    features["ret_zscore_24h"] = _ratio(pick(log_return, at), features["volatility_24h"])
    # Parkinson (1980): sigma^2 = E[ln(H/L)^2] / (4 ln 2), from each bar's high-low range.
    squared_range = np.log(high / low) ** 2
    mean_squared = trailing_mean(squared_range, 24, min_count=half_window(24), at=at)
    features["parkinson_vol_24h"] = np.sqrt(mean_squared / (4.0 * math.log(2.0)))


def _oscillators(
    features: dict[str, Array],
    high: Array,
    low: Array,
    close: Array,
    close_sums: dict[int, tuple[Array, Array]],
    at: Slots,
) -> None:
    # Cutler's RSI: simple sums of gains and losses over the window rather than Wilder's
    # recursive smoothing, so the value depends on the last 14 hours only.
    change = close - lag(close, 1)
    gains, gain_count = trailing_sum(np.maximum(change, 0.0), RSI_HOURS, at)
    losses, _ = trailing_sum(np.maximum(-change, 0.0), RSI_HOURS, at)
    rsi = 100.0 * _ratio(gains, gains + losses)
    rsi[gain_count < half_window(RSI_HOURS)] = np.nan
    features[f"rsi_{RSI_HOURS}h"] = rsi

    _, bars = close_sums[STOCHASTIC_HOURS]
    highest = trailing_max(high, STOCHASTIC_HOURS, at)
    lowest = trailing_min(low, STOCHASTIC_HOURS, at)
    close_at = pick(close, at)
    stochastic = _ratio(close_at - lowest, highest - lowest)
    stochastic[bars < half_window(STOCHASTIC_HOURS)] = np.nan
    features[f"stoch_k_{STOCHASTIC_HOURS}h"] = stochastic

    # True range needs the previous close; with that bar missing it falls back to high - low.
    previous = lag(close, 1)
    true_range = np.fmax(high - low, np.fmax(np.abs(high - previous), np.abs(low - previous)))
    atr = trailing_mean(true_range, ATR_HOURS, min_count=half_window(ATR_HOURS), at=at)
    features[f"atr_{ATR_HOURS}h"] = atr
    features[f"atr_pct_{ATR_HOURS}h"] = _ratio(atr, close_at)


def _moving_averages(
    features: dict[str, Array],
    close: Array,
    close_sums: dict[int, tuple[Array, Array]],
    at: Slots,
) -> None:
    close_at = pick(close, at)
    sma = {
        w: mean_of(close_sums[w], min_count=half_window(w))
        for w in sorted({*SMA_RATIO_WINDOWS_HOURS, 24, 168})
    }
    features["sma_24h"] = sma[24]
    features["sma_168h"] = sma[168]
    for w in SMA_RATIO_WINDOWS_HOURS:
        features[f"close_to_sma_{w}h"] = _ratio(close_at, sma[w]) - 1.0
    features["sma_6h_to_sma_24h"] = _ratio(sma[6], sma[24]) - 1.0
    features["sma_24h_to_sma_168h"] = _ratio(sma[24], sma[168]) - 1.0

    # The signal line averages the MACD line over its window: the EMAs are needed at every
    # slot that window reads, not only at the output slots.
    signal_window = EMA_WINDOW_HOURS[MACD_SIGNAL]
    line_at = None if at is None else window_slots(at, signal_window)
    no_bar = np.isnan(pick(close, line_at))
    ema = {}
    for span in EMA_SPANS_HOURS:
        average = truncated_ema(close, span, EMA_WINDOW_HOURS[span], at=line_at)
        # An hour without a bar has no EMA of its own; the MACD signal below averages the
        # MACD line of hours with bars only, never a value carried over a gap.
        average[no_bar] = np.nan
        ema[span] = on_grid(average, line_at, len(close))
        features[f"ema_{span}h"] = pick(ema[span], at)
        features[f"close_to_ema_{span}h"] = _ratio(close_at, features[f"ema_{span}h"]) - 1.0

    macd_line = ema[MACD_FAST] - ema[MACD_SLOW]
    signal = truncated_ema(macd_line, MACD_SIGNAL, signal_window, at=at)
    macd = pick(macd_line, at)
    features["macd"] = macd
    features["macd_signal"] = signal
    features["macd_hist"] = macd - signal
    features["macd_rel"] = _ratio(macd, close_at)
    features["macd_signal_rel"] = _ratio(signal, close_at)
    features["macd_hist_rel"] = _ratio(macd - signal, close_at)


def _bands(
    features: dict[str, Array],
    high: Array,
    low: Array,
    close: Array,
    close_sums: dict[int, tuple[Array, Array]],
    at: Slots,
) -> None:
    close_at = pick(close, at)
    w = BOLLINGER_HOURS
    middle = mean_of(close_sums[w], min_count=half_window(w))
    # Bollinger bands use the population standard deviation of the window's closes.
    spread = trailing_std(close, w, min_count=half_window(w), ddof=0, at=at)
    lower = middle - BOLLINGER_WIDTH_STDS * spread
    width = 2.0 * BOLLINGER_WIDTH_STDS * spread
    features[f"bb_position_{w}h"] = _ratio(close_at - lower, width)
    features[f"bb_width_{w}h"] = _ratio(width, middle)

    for w in (24, 168):
        _, bars = close_sums[w]
        enough = bars >= half_window(w)
        to_high = _ratio(close_at, trailing_max(high, w, at)) - 1.0
        to_low = _ratio(close_at, trailing_min(low, w, at)) - 1.0
        features[f"close_to_high_{w}h"] = np.where(enough, to_high, np.nan)
        features[f"close_to_low_{w}h"] = np.where(enough, to_low, np.nan)


def _volume(features: dict[str, Array], volume: Array, at: Slots) -> None:
    volume_at = pick(volume, at)
    features["volume"] = volume_at
    volume_sums = trailing_sums(volume, (6, 24, 168), at)
    for w in (6, 24, 168):
        mean = mean_of(volume_sums[w], min_count=half_window(w))
        features[f"volume_ratio_{w}h"] = _ratio(volume_at, mean)
    features["volume_change_1h"] = pick(_ratio(volume, lag(volume, 1)) - 1.0, at)
    features["volume_change_24h"] = pick(_ratio(volume, lag(volume, 24)) - 1.0, at)
    mean = mean_of(volume_sums[24], min_count=half_window(24))
    std = trailing_std(volume, 24, min_count=half_window(24), at=at)
    features["volume_zscore_24h"] = _ratio(volume_at - mean, std)


def _bar_shape(
    features: dict[str, Array], open_: Array, high: Array, low: Array, close: Array, at: Slots
) -> None:
    open_, high, low, close = (pick(series, at) for series in (open_, high, low, close))
    features["range_1h"] = _ratio(high - low, close)
    features["body_1h"] = _ratio(close, open_) - 1.0
    features["close_location_1h"] = _ratio(close - low, high - low)
    features["upper_wick_1h"] = _ratio(high - np.maximum(open_, close), close)
    features["lower_wick_1h"] = _ratio(np.minimum(open_, close) - low, close)
