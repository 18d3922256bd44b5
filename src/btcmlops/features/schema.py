"""The feature schema: every feature's name, family, meaning and whether drift detection watches it.

Two feature sets share the price and calendar families and differ in the sentiment family:
``vader`` reads the VADER scores of articles, ``finbert`` the FinBERT scores and adds
confidence-weighted variants (FinBERT's class probabilities make "confidence" meaningful).
Sentiment features carry the neutral prefix ``sent_`` in both sets; the set a row belongs to
says which scorer produced them. ``docs/features.md`` is the long form of this module.

A row for the bar starting at hour ``t`` is computed as of ``t + 1h`` (when that bar closes).
``FeatureSpec.lookback_hours`` bounds what the row reads: no bar starting before
``t - lookback_hours`` and no article published before ``t - lookback_hours``.

>>> feature_names("vader")[:3]
['close', 'ret_1h', 'ret_2h']
>>> set(feature_names("finbert")) > set(feature_names("vader"))
True
>>> validate_feature_set(" FinBERT ")
'finbert'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from btcmlops.errors import InvalidInputError

FEATURE_SETS: tuple[str, ...] = ("vader", "finbert")

# The sentiment scorer whose rows in ``article_sentiment`` feed each feature set.
SCORER_FOR_SET: dict[str, str] = {"vader": "vader", "finbert": "finbert"}

# Bump whenever a feature is added, removed or redefined: stored rows carry the version, and
# every read filters by it, so rows of two schemas are never mixed.
FEATURE_VERSION: str = "v1"

PRICE = "price"
SENTIMENT = "sentiment"
CALENDAR = "calendar"

RETURN_HORIZONS_HOURS: tuple[int, ...] = (1, 2, 3, 6, 12, 24, 168)
VOLATILITY_WINDOWS_HOURS: tuple[int, ...] = (6, 24, 168)
SMA_RATIO_WINDOWS_HOURS: tuple[int, ...] = (6, 12, 24, 48, 168)
SENTIMENT_WINDOWS_HOURS: tuple[int, ...] = (1, 6, 24)

# Recursive indicators (EMA, MACD) are defined on a fixed finite window so a row depends only
# on a bounded stretch of history: an incremental build then equals a full rebuild exactly.
EMA_SPANS_HOURS: tuple[int, ...] = (12, 26)
EMA_WINDOW_HOURS: dict[int, int] = {12: 72, 26: 120, 9: 48}
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
RSI_HOURS = 14
ATR_HOURS = 14
STOCHASTIC_HOURS = 14
BOLLINGER_HOURS = 20
BOLLINGER_WIDTH_STDS = 2.0

STRONG_SENTIMENT = 0.5  # |compound| at or above this is a "strongly" positive/negative article
CONFIDENT = 0.8  # FinBERT confidence at or above this is a "confident" verdict
EWM_HALF_LIVES_HOURS: dict[int, int] = {6: 48, 24: 168}  # half-life -> window it is cut at


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its column name, family, one-line meaning and whether drift watches it.

    ``model_input`` is false for non-stationary levels (raw price, moving averages in USD,
    raw volume): they are stored for charts and context, but a model that splits on "the
    price was above 40,000" learns the past, not the market, so training leaves them out.

    ``lookback_hours`` bounds the history the feature reads for the row of hour ``t``: no bar
    starting before ``t - lookback_hours``, no article published before ``t - lookback_hours``.
    """

    name: str
    family: str
    meaning: str
    monitored: bool
    lookback_hours: int = 0
    model_input: bool = True


def _price(name: str, meaning: str, lookback: int, *, monitored: bool = True) -> FeatureSpec:
    return FeatureSpec(name, PRICE, meaning, monitored, lookback)


def _level(name: str, meaning: str, lookback: int) -> FeatureSpec:
    # A price or volume level wanders with the market: a drift alarm on it says nothing, and
    # a model that learns levels does not generalise to new ones.
    return FeatureSpec(name, PRICE, meaning, False, lookback, model_input=False)


def _price_specs() -> list[FeatureSpec]:
    specs = [_level("close", "close of the bar at t (USD)", 0)]
    for h in RETURN_HORIZONS_HOURS:
        specs.append(_price(f"ret_{h}h", f"close(t) / close(t-{h}h) - 1", h))
    for h in RETURN_HORIZONS_HOURS:
        specs.append(_price(f"log_ret_{h}h", f"ln(close(t) / close(t-{h}h))", h))
    for w in VOLATILITY_WINDOWS_HOURS:
        specs.append(
            _price(f"volatility_{w}h", f"sample std of 1h log returns of bars in (t-{w}h, t]", w)
        )
    ema_slow_lookback = EMA_WINDOW_HOURS[MACD_SLOW] - 1
    signal_lookback = EMA_WINDOW_HOURS[MACD_SIGNAL] - 1 + ema_slow_lookback
    specs += [
        _price(
            "parkinson_vol_24h",
            "Parkinson high-low volatility of bars in (t-24h, t] (per hour)",
            23,
        ),
        _price("volatility_ratio_6h_24h", "volatility_6h / volatility_24h", 24),
        _price("volatility_ratio_24h_168h", "volatility_24h / volatility_168h", 168),
        _price(
            "rsi_14h",
            "Cutler's RSI: 100 * gains / (gains + losses) of 1h changes in (t-14h, t]",
            RSI_HOURS,
        ),
        _price(
            "stoch_k_14h",
            "stochastic %K: (close - lowest low) / (highest high - lowest low) in (t-14h, t]",
            STOCHASTIC_HOURS - 1,
        ),
        _level("macd", "MACD line: EMA(12h) - EMA(26h) of closes (USD)", ema_slow_lookback),
        _level("macd_signal", "EMA(9h) of the MACD line (USD)", signal_lookback),
        _level("macd_hist", "MACD line - signal (USD)", signal_lookback),
        _price("macd_rel", "MACD line / close", ema_slow_lookback),
        _price("macd_signal_rel", "MACD signal / close", signal_lookback),
        _price("macd_hist_rel", "MACD histogram / close", signal_lookback),
        _price(
            "bb_position_20h",
            "where close lies in the 20h Bollinger band: 0 at lower, 1 at upper band",
            BOLLINGER_HOURS - 1,
        ),
        _price(
            "bb_width_20h", "Bollinger band width (4 std) / 20h moving average", BOLLINGER_HOURS - 1
        ),
        _level("atr_14h", "average true range of bars in (t-14h, t] (USD)", ATR_HOURS),
        _price("atr_pct_14h", "atr_14h / close", ATR_HOURS),
        _level("sma_24h", "mean close of bars in (t-24h, t] (USD)", 23),
        _level("sma_168h", "mean close of bars in (t-168h, t] (USD)", 167),
        _level(
            "ema_12h",
            f"EMA(span 12h) of closes, cut at {EMA_WINDOW_HOURS[12]}h (USD)",
            EMA_WINDOW_HOURS[12] - 1,
        ),
        _level(
            "ema_26h",
            f"EMA(span 26h) of closes, cut at {EMA_WINDOW_HOURS[26]}h (USD)",
            EMA_WINDOW_HOURS[26] - 1,
        ),
    ]
    for w in SMA_RATIO_WINDOWS_HOURS:
        specs.append(_price(f"close_to_sma_{w}h", f"close / mean close in (t-{w}h, t] - 1", w - 1))
    for span in EMA_SPANS_HOURS:
        specs.append(
            _price(f"close_to_ema_{span}h", f"close / ema_{span}h - 1", EMA_WINDOW_HOURS[span] - 1)
        )
    specs += [
        _price("sma_6h_to_sma_24h", "6h mean close / 24h mean close - 1", 23),
        _price("sma_24h_to_sma_168h", "24h mean close / 168h mean close - 1", 167),
        _level("volume", "volume of the bar at t", 0),
        _price("volume_ratio_6h", "volume / mean volume of bars in (t-6h, t]", 5),
        _price("volume_ratio_24h", "volume / mean volume of bars in (t-24h, t]", 23),
        _price("volume_ratio_168h", "volume / mean volume of bars in (t-168h, t]", 167),
        _price("volume_change_1h", "volume(t) / volume(t-1h) - 1", 1),
        _price("volume_change_24h", "volume(t) / volume(t-24h) - 1", 24),
        _price("volume_zscore_24h", "(volume - 24h mean) / 24h std of volume", 23),
        _price("range_1h", "(high - low) / close of the bar at t", 0),
        _price("body_1h", "close / open - 1 of the bar at t", 0),
        _price("close_location_1h", "(close - low) / (high - low) of the bar at t", 0),
        _price("upper_wick_1h", "(high - max(open, close)) / close of the bar at t", 0),
        _price("lower_wick_1h", "(min(open, close) - low) / close of the bar at t", 0),
        _price("close_to_high_24h", "close / highest high in (t-24h, t] - 1", 23),
        _price("close_to_low_24h", "close / lowest low in (t-24h, t] - 1", 23),
        _price("close_to_high_168h", "close / highest high in (t-168h, t] - 1", 167),
        _price("close_to_low_168h", "close / lowest low in (t-168h, t] - 1", 167),
        _price("up_share_24h", "share of 1h returns in (t-24h, t] that are positive", 24),
        _price("ret_zscore_24h", "log_ret_1h / volatility_24h", 24),
    ]
    return specs


def _sentiment(name: str, meaning: str, lookback: int) -> FeatureSpec:
    return FeatureSpec(name, SENTIMENT, meaning, True, lookback)


def _sentiment_specs(*, confidence_weighted: bool) -> list[FeatureSpec]:
    window = "articles published in [t+1h-{w}h, t+1h)"
    specs: list[FeatureSpec] = []
    for w in SENTIMENT_WINDOWS_HOURS:
        where = window.format(w=w)
        specs += [
            _sentiment(f"sent_mean_{w}h", f"mean compound of {where}", w - 1),
            _sentiment(f"sent_std_{w}h", f"sample std of compound of {where}", w - 1),
            _sentiment(f"sent_min_{w}h", f"lowest compound of {where}", w - 1),
            _sentiment(f"sent_max_{w}h", f"highest compound of {where}", w - 1),
        ]
    specs.append(_sentiment("sent_mean_168h", f"mean compound of {window.format(w=168)}", 167))
    for w in (*SENTIMENT_WINDOWS_HOURS, 168):
        specs.append(_sentiment(f"sent_count_{w}h", f"number of {window.format(w=w)}", w - 1))
    strong = STRONG_SENTIMENT
    specs += [
        _sentiment("sent_velocity_1h", "articles in the last 1h / hourly mean over 24h", 23),
        _sentiment("sent_velocity_6h", "hourly article rate over 6h / rate over 24h", 23),
        _sentiment("sent_mean_change_6h", "sent_mean_6h(t) - sent_mean_6h(t-6h)", 11),
        _sentiment("sent_mean_change_24h", "sent_mean_24h(t) - sent_mean_24h(t-24h)", 47),
        _sentiment("sent_momentum_6h_24h", "sent_mean_6h - sent_mean_24h", 23),
        _sentiment("sent_momentum_24h_168h", "sent_mean_24h - sent_mean_168h", 167),
        _sentiment(
            "sent_strong_pos_share_6h", f"share of 6h articles with compound >= {strong}", 5
        ),
        _sentiment(
            "sent_strong_neg_share_6h", f"share of 6h articles with compound <= -{strong}", 5
        ),
        _sentiment(
            "sent_strong_pos_share_24h", f"share of 24h articles with compound >= {strong}", 23
        ),
        _sentiment(
            "sent_strong_neg_share_24h", f"share of 24h articles with compound <= -{strong}", 23
        ),
        _sentiment("sent_positive_mean_24h", "mean positive score of 24h articles", 23),
        _sentiment("sent_negative_mean_24h", "mean negative score of 24h articles", 23),
        _sentiment("sent_neutral_mean_24h", "mean neutral score of 24h articles", 23),
    ]
    for half_life, cut in EWM_HALF_LIVES_HOURS.items():
        specs.append(
            _sentiment(
                f"sent_ewm_{half_life}h",
                f"compound weighted by 2^(-age/{half_life}h), articles of the last {cut}h",
                cut - 1,
            )
        )
    specs.append(
        _sentiment("sent_hours_since_last", "hours from the newest article (<= 168h) to t+1h", 167)
    )
    if confidence_weighted:
        for w in SENTIMENT_WINDOWS_HOURS:
            specs.append(
                _sentiment(
                    f"sent_cw_mean_{w}h",
                    f"confidence-weighted mean compound of {window.format(w=w)}",
                    w - 1,
                )
            )
        for half_life, cut in EWM_HALF_LIVES_HOURS.items():
            specs.append(
                _sentiment(
                    f"sent_cw_ewm_{half_life}h",
                    f"sent_ewm_{half_life}h with each article's weight times its confidence",
                    cut - 1,
                )
            )
        specs += [
            _sentiment("sent_confidence_mean_6h", "mean scorer confidence of 6h articles", 5),
            _sentiment("sent_confidence_mean_24h", "mean scorer confidence of 24h articles", 23),
            _sentiment(
                "sent_confident_share_24h",
                f"share of 24h articles scored with confidence >= {CONFIDENT}",
                23,
            ),
        ]
    return specs


def _calendar(name: str, meaning: str) -> FeatureSpec:
    # Calendar values follow the clock, not the market: they cannot drift.
    return FeatureSpec(name, CALENDAR, meaning, False, 0)


def _calendar_specs() -> list[FeatureSpec]:
    return [
        _calendar("hour_of_day", "UTC hour of t+1h, the hour being predicted (0-23)"),
        _calendar("day_of_week", "UTC weekday of t+1h, Monday = 0"),
        _calendar("hour_sin", "sin(2π hour_of_day / 24)"),
        _calendar("hour_cos", "cos(2π hour_of_day / 24)"),
        _calendar("dow_sin", "sin(2π day_of_week / 7)"),
        _calendar("dow_cos", "cos(2π day_of_week / 7)"),
        _calendar("is_weekend", "1 on Saturday and Sunday (UTC), else 0"),
        _calendar("session_asia", "1 on weekdays 00:00-08:00 UTC (Tokyo, Hong Kong hours)"),
        _calendar("session_europe", "1 on weekdays 07:00-16:00 UTC (London, Frankfurt hours)"),
        _calendar("session_us", "1 on weekdays 13:00-21:00 UTC (New York hours)"),
        _calendar("session_europe_us_overlap", "1 on weekdays 13:00-16:00 UTC"),
    ]


@cache
def _specs(feature_set: str) -> tuple[FeatureSpec, ...]:
    sentiment = _sentiment_specs(confidence_weighted=feature_set == "finbert")
    return (*_price_specs(), *sentiment, *_calendar_specs())


def validate_feature_set(name: str) -> str:
    """The canonical name of a feature set, or :class:`InvalidInputError` naming the choices."""
    cleaned = name.strip().lower() if isinstance(name, str) else name
    if cleaned not in FEATURE_SETS:
        raise InvalidInputError(
            f"unknown feature set {name!r}: expected one of {', '.join(FEATURE_SETS)}"
        )
    return cleaned


def feature_specs(feature_set: str) -> list[FeatureSpec]:
    """Every feature of ``feature_set`` in column order: price, sentiment, calendar."""
    return list(_specs(validate_feature_set(feature_set)))


def feature_names(feature_set: str) -> list[str]:
    """Every stored column of ``feature_set``, in schema order."""
    return [spec.name for spec in _specs(validate_feature_set(feature_set))]


def model_feature_names(feature_set: str) -> list[str]:
    """The features models are trained on: every feature except non-stationary levels."""
    return [spec.name for spec in _specs(validate_feature_set(feature_set)) if spec.model_input]


def monitored_feature_names(feature_set: str) -> list[str]:
    """The features drift detection should test (no calendar values, no raw levels)."""
    return [spec.name for spec in _specs(validate_feature_set(feature_set)) if spec.monitored]


# The longest history any feature reads, in hours before t. Training purges at least this
# plus the one-hour horizon between its splits.
MAX_LOOKBACK_HOURS: int = max(
    spec.lookback_hours for feature_set in FEATURE_SETS for spec in _specs(feature_set)
)
