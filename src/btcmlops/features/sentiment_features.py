"""Sentiment features: one scorer's verdicts on the articles *published* in each window.

An article belongs to the hour its ``published_at`` falls in. The row of hour ``t`` is
computed as of ``t + 1h``, so its ``W``-hour window holds the articles published in
``[t + 1h - W, t + 1h)``: exactly the hourly buckets ``t - W + 1 .. t``. Articles are never
matched to bars by exact timestamp, and an article published at ``t + 1h`` or later is not
in row ``t``.

Per-bucket sums (count, sum of compound, of squares, ...) are computed once with
``np.bincount``; window statistics add the buckets of the window (see
:mod:`btcmlops.features.price_features` for why not ``pandas.rolling``).

Empty windows: counts are 0; means, standard deviations, shares, minima and maxima are NaN
(missing, for the model's imputer), never 0, which would claim "neutral news".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btcmlops.errors import InvalidInputError
from btcmlops.features.price_features import (
    HOUR_NS,
    Array,
    HourlyGrid,
    lag,
    trailing_max,
    trailing_min,
    trailing_total,
    trailing_weighted_total,
)
from btcmlops.features.schema import (
    CONFIDENT,
    EWM_HALF_LIVES_HOURS,
    SENTIMENT_WINDOWS_HOURS,
    STRONG_SENTIMENT,
)

SCORE_COLUMNS = ("compound", "positive", "negative", "neutral", "confidence")
_NEWEST_NONE = np.iinfo(np.int64).min


class _Buckets:
    """Per-hour aggregates of the articles published in each hour of the grid."""

    def __init__(self, sentiment: pd.DataFrame, grid: HourlyGrid) -> None:
        published_ns, scores = _sorted_articles(sentiment)
        bucket = published_ns // HOUR_NS
        inside = (bucket >= grid.first_hour) & (bucket < grid.first_hour + grid.length)
        self.grid = grid
        self.published_ns = published_ns[inside]
        self.slot = (bucket[inside] - grid.first_hour).astype(np.intp)
        self.scores = {name: values[inside] for name, values in scores.items()}
        self.count = self.total(np.ones(len(self.slot)))

    def total(self, per_article: Array) -> Array:
        """Sum of ``per_article`` over each hour's articles (0 for an hour without any)."""
        return np.bincount(self.slot, weights=per_article, minlength=self.grid.length).astype(float)

    def extreme(self, per_article: Array, ufunc: np.ufunc) -> Array:
        """Each hour's minimum or maximum (``np.fmin`` / ``np.fmax``), NaN for an empty hour."""
        result = np.full(self.grid.length, np.nan)
        ufunc.at(result, self.slot, per_article)
        return result

    def newest_published_ns(self) -> Array:
        newest = np.full(self.grid.length, _NEWEST_NONE, dtype=np.int64)
        np.maximum.at(newest, self.slot, self.published_ns)
        return newest

    def decay(self, half_life_hours: int) -> Array:
        """Each article's weight ``2^(-(end of its hour - published_at) / half-life)``."""
        end_of_hour = (self.published_ns // HOUR_NS + 1) * HOUR_NS
        age_hours = (end_of_hour - self.published_ns) / HOUR_NS
        return np.exp2(-age_hours / half_life_hours)


def _sorted_articles(sentiment: pd.DataFrame) -> tuple[Array, dict[str, Array]]:
    """Publication instants (ns since epoch) and scores, in a canonical order.

    Sums within an hour are added in this order; sorting by time and then by the scores makes
    them independent of the order the rows were read in.
    """
    if len(sentiment) == 0:
        return np.zeros(0, dtype=np.int64), {name: np.zeros(0) for name in SCORE_COLUMNS}
    published = pd.DatetimeIndex(sentiment["published_at"])
    published = (
        published.tz_localize("UTC") if published.tz is None else published.tz_convert("UTC")
    )
    published_ns = published.as_unit("ns").asi8
    scores = {
        name: sentiment[name].to_numpy(dtype=float)
        if name in sentiment
        else np.full(len(sentiment), np.nan)
        for name in SCORE_COLUMNS
    }
    usable = np.isfinite(scores["compound"])
    order = np.lexsort(
        (*(scores[name][usable] for name in reversed(SCORE_COLUMNS)), published_ns[usable])
    )
    published_ns = published_ns[usable][order]
    return published_ns, {name: values[usable][order] for name, values in scores.items()}


def check_sentiment_frame(sentiment: pd.DataFrame, *, confidence_weighted: bool) -> None:
    """Raise :class:`InvalidInputError` when a column the features need is absent."""
    required = ["published_at", "compound", "positive", "negative", "neutral"]
    if confidence_weighted:
        required.append("confidence")
    missing = [name for name in required if name not in sentiment.columns]
    if missing:
        raise InvalidInputError(
            f"the sentiment frame lacks column(s) {', '.join(missing)}: expected "
            f"{', '.join(required)} (one row per scored article)"
        )


def _divide(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, NaN where the denominator is 0 (an empty window)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        result = numerator / denominator
    result[denominator == 0] = np.nan
    return result


def compute_sentiment_features(
    sentiment: pd.DataFrame, grid: HourlyGrid, *, confidence_weighted: bool
) -> dict[str, Array]:
    """Every sentiment-family feature for each hour of ``grid``.

    Parameters
    ----------
    sentiment:
        One scorer's rows: ``published_at`` and the scores ``compound``, ``positive``,
        ``negative``, ``neutral`` (and ``confidence`` when ``confidence_weighted``).
    grid:
        The hours to compute rows for; articles outside it are ignored.
    confidence_weighted:
        Add the FinBERT-only confidence-weighted variants.
    """
    check_sentiment_frame(sentiment, confidence_weighted=confidence_weighted)
    buckets = _Buckets(sentiment, grid)
    compound = buckets.scores["compound"]
    count = {w: trailing_total(buckets.count, w) for w in (*SENTIMENT_WINDOWS_HOURS, 168)}
    compound_sum = buckets.total(compound)
    squares_sum = buckets.total(compound * compound)
    lowest = buckets.extreme(compound, np.fmin)
    highest = buckets.extreme(compound, np.fmax)

    features: dict[str, Array] = {}
    means: dict[int, Array] = {}
    for w in (*SENTIMENT_WINDOWS_HOURS, 168):
        total = trailing_total(compound_sum, w)
        means[w] = _divide(total, count[w])
        if w == 168:
            continue
        # Sample variance from sums: (Σc² - (Σc)²/n) / (n - 1); compounds lie in [-1, 1] so
        # the cancellation is harmless, and rounding below 0 is clipped.
        squares = trailing_total(squares_sum, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = (squares - total * total / count[w]) / (count[w] - 1)
        std = np.sqrt(np.clip(variance, 0.0, None))
        std[count[w] < 2] = np.nan
        features[f"sent_mean_{w}h"] = means[w]
        features[f"sent_std_{w}h"] = std
        features[f"sent_min_{w}h"] = trailing_min(lowest, w)
        features[f"sent_max_{w}h"] = trailing_max(highest, w)
    features["sent_mean_168h"] = means[168]
    for w, articles in count.items():
        features[f"sent_count_{w}h"] = articles

    # News velocity: the recent hourly article rate against the day's hourly rate.
    daily_rate = count[24] / 24.0
    features["sent_velocity_1h"] = _divide(count[1], daily_rate)
    features["sent_velocity_6h"] = _divide(count[6] / 6.0, daily_rate)
    features["sent_mean_change_6h"] = means[6] - lag(means[6], 6)
    features["sent_mean_change_24h"] = means[24] - lag(means[24], 24)
    features["sent_momentum_6h_24h"] = means[6] - means[24]
    features["sent_momentum_24h_168h"] = means[24] - means[168]

    strong_positive = buckets.total((compound >= STRONG_SENTIMENT).astype(float))
    strong_negative = buckets.total((compound <= -STRONG_SENTIMENT).astype(float))
    for w in (6, 24):
        features[f"sent_strong_pos_share_{w}h"] = _divide(
            trailing_total(strong_positive, w), count[w]
        )
        features[f"sent_strong_neg_share_{w}h"] = _divide(
            trailing_total(strong_negative, w), count[w]
        )
    for name in ("positive", "negative", "neutral"):
        score_sum = trailing_total(buckets.total(buckets.scores[name]), 24)
        features[f"sent_{name}_mean_24h"] = _divide(score_sum, count[24])

    for half_life, window in EWM_HALF_LIVES_HOURS.items():
        features[f"sent_ewm_{half_life}h"] = _decayed_mean(
            buckets, compound, np.ones(len(compound)), half_life, window
        )

    newest = trailing_max_int(buckets.newest_published_ns(), 168)
    as_of_ns = (grid.hours() + 1) * HOUR_NS
    since = (as_of_ns - newest) / HOUR_NS
    since[newest == _NEWEST_NONE] = np.nan
    features["sent_hours_since_last"] = since

    if confidence_weighted:
        _confidence_features(features, buckets, count)
    return features


def _decayed_mean(
    buckets: _Buckets, values: Array, weights: Array, half_life: int, window: int
) -> Array:
    """Σ w_i 2^(-age_i / half-life) v_i / Σ w_i 2^(-age_i / half-life) over the window.

    The age of an article at the as-of instant ``t + 1h`` splits into whole hours between its
    hour's end and ``t + 1h`` (``j``) plus the part within its hour, so the decay factors
    into ``2^(-j/h)`` (applied per bucket) times a per-article factor.
    """
    decay = buckets.decay(half_life) * weights
    hour_factors = np.exp2(-np.arange(window, dtype=float) / half_life)
    numerator = trailing_weighted_total(buckets.total(decay * values), hour_factors)
    denominator = trailing_weighted_total(buckets.total(decay), hour_factors)
    return _divide(numerator, denominator)


def _confidence_features(
    features: dict[str, Array], buckets: _Buckets, count: dict[int, Array]
) -> None:
    compound = buckets.scores["compound"]
    confidence = buckets.scores["confidence"]
    confidence_sum = buckets.total(confidence)
    weighted_sum = buckets.total(confidence * compound)
    for w in SENTIMENT_WINDOWS_HOURS:
        features[f"sent_cw_mean_{w}h"] = _divide(
            trailing_total(weighted_sum, w), trailing_total(confidence_sum, w)
        )
    for half_life, window in EWM_HALF_LIVES_HOURS.items():
        features[f"sent_cw_ewm_{half_life}h"] = _decayed_mean(
            buckets, compound, confidence, half_life, window
        )
    for w in (6, 24):
        features[f"sent_confidence_mean_{w}h"] = _divide(
            trailing_total(confidence_sum, w), count[w]
        )
    confident = buckets.total((confidence >= CONFIDENT).astype(float))
    features["sent_confident_share_24h"] = _divide(trailing_total(confident, 24), count[24])


def trailing_max_int(values: Array, hours: int) -> Array:
    """Largest integer in the window (exact: instants stay int64 nanoseconds)."""
    n = len(values)
    largest = values.copy()
    for j in range(1, min(hours, n)):
        np.maximum(largest[j:], values[: n - j], out=largest[j:])
    return largest
