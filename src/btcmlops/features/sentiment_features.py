"""Sentiment features: one scorer's verdicts on the articles *published* in each window.

An article belongs to the hour its ``published_at`` falls in. The row of hour ``t`` is
computed as of ``t + 1h``, so its ``W``-hour window holds the articles published in
``[t + 1h - W, t + 1h)``: exactly the hourly buckets ``t - W + 1 .. t``. Articles are never
matched to bars by exact timestamp, and an article published at ``t + 1h`` or later is not
in row ``t``.

Per-bucket sums (count, sum of compound, of squares, ...) are computed once with
``np.bincount``; window statistics add the buckets of the window (see
:mod:`btcmlops.features.windows` for why not ``pandas.rolling``).

Empty windows: counts are 0; means, standard deviations, shares, minima and maxima are NaN
(missing, for the model's imputer), never 0, which would claim "neutral news".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btcmlops.errors import InvalidInputError
from btcmlops.features.schema import (
    CONFIDENT,
    EWM_HALF_LIVES_HOURS,
    SENTIMENT_WINDOWS_HOURS,
    STRONG_SENTIMENT,
)
from btcmlops.features.windows import (
    HOUR_NS,
    Array,
    HourlyGrid,
    Slots,
    lag,
    pick,
    trailing_max,
    trailing_min,
    trailing_total,
    trailing_totals,
    trailing_weighted_total,
    window_matrix,
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
    published_ns = published_ns[usable]
    order = np.argsort(published_ns, kind="stable")
    if (np.diff(published_ns[order]) == 0).any():  # a tie in time: the scores decide
        order = np.lexsort(
            (*(scores[name][usable] for name in reversed(SCORE_COLUMNS)), published_ns)
        )
    return published_ns[order], {name: values[usable][order] for name, values in scores.items()}


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
    sentiment: pd.DataFrame, grid: HourlyGrid, *, confidence_weighted: bool, at: Slots = None
) -> dict[str, Array]:
    """Every sentiment-family feature at the slots ``at`` of ``grid`` (default: every slot).

    Parameters
    ----------
    sentiment:
        One scorer's rows: ``published_at`` and the scores ``compound``, ``positive``,
        ``negative``, ``neutral`` (and ``confidence`` when ``confidence_weighted``).
    grid:
        The hours to compute rows for; articles outside it are ignored.
    confidence_weighted:
        Add the FinBERT-only confidence-weighted variants.
    at:
        The grid slots to return values for, sorted; ``None`` for every slot.
    """
    check_sentiment_frame(sentiment, confidence_weighted=confidence_weighted)
    buckets = _Buckets(sentiment, grid)
    compound = buckets.scores["compound"]
    windows = (*SENTIMENT_WINDOWS_HOURS, 168)
    count = trailing_totals(buckets.count, windows, at)
    compound_sum = buckets.total(compound)
    compound_totals = trailing_totals(compound_sum, windows, at)
    squares_totals = trailing_totals(
        buckets.total(compound * compound), SENTIMENT_WINDOWS_HOURS, at
    )
    lowest = buckets.extreme(compound, np.fmin)
    highest = buckets.extreme(compound, np.fmax)

    features: dict[str, Array] = {}
    means: dict[int, Array] = {}
    for w in windows:
        total = compound_totals[w]
        means[w] = _divide(total, count[w])
        if w == 168:
            continue
        # Sample variance from sums: (Σc² - (Σc)²/n) / (n - 1); compounds lie in [-1, 1] so
        # the cancellation is harmless, and rounding below 0 is clipped.
        squares = squares_totals[w]
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = (squares - total * total / count[w]) / (count[w] - 1)
        std = np.sqrt(np.clip(variance, 0.0, None))
        std[count[w] < 2] = np.nan
        features[f"sent_mean_{w}h"] = means[w]
        features[f"sent_std_{w}h"] = std
        features[f"sent_min_{w}h"] = trailing_min(lowest, w, at)
        features[f"sent_max_{w}h"] = trailing_max(highest, w, at)
    features["sent_mean_168h"] = means[168]
    for w, articles in count.items():
        features[f"sent_count_{w}h"] = articles

    # News velocity: the recent hourly article rate against the day's hourly rate.
    daily_rate = count[24] / 24.0
    features["sent_velocity_1h"] = _divide(count[1], daily_rate)
    features["sent_velocity_6h"] = _divide(count[6] / 6.0, daily_rate)
    for w in (6, 24):
        earlier = _earlier_mean(means[w], buckets.count, compound_sum, w, at)
        features[f"sent_mean_change_{w}h"] = means[w] - earlier
    features["sent_momentum_6h_24h"] = means[6] - means[24]
    features["sent_momentum_24h_168h"] = means[24] - means[168]

    strong_positive = trailing_totals(
        buckets.total((compound >= STRONG_SENTIMENT).astype(float)), (6, 24), at
    )
    strong_negative = trailing_totals(
        buckets.total((compound <= -STRONG_SENTIMENT).astype(float)), (6, 24), at
    )
    for w in (6, 24):
        features[f"sent_strong_pos_share_{w}h"] = _divide(strong_positive[w], count[w])
        features[f"sent_strong_neg_share_{w}h"] = _divide(strong_negative[w], count[w])
    for name in ("positive", "negative", "neutral"):
        score_sum = trailing_total(buckets.total(buckets.scores[name]), 24, at)
        features[f"sent_{name}_mean_24h"] = _divide(score_sum, count[24])

    for half_life, window in EWM_HALF_LIVES_HOURS.items():
        features[f"sent_ewm_{half_life}h"] = _decayed_mean(
            buckets, compound, np.ones(len(compound)), half_life, window, at
        )

    newest = trailing_max_int(buckets.newest_published_ns(), 168, at)
    as_of_ns = (pick(grid.hours(), at) + 1) * HOUR_NS
    since = (as_of_ns - newest) / HOUR_NS
    since[newest == _NEWEST_NONE] = np.nan
    features["sent_hours_since_last"] = since

    if confidence_weighted:
        _confidence_features(features, buckets, count, at)
    return features


def _earlier_mean(
    mean: Array, articles: Array, compound_sum: Array, hours: int, at: Slots
) -> Array:
    """The mean compound of the ``hours``-hour window that ended ``hours`` hours earlier.

    ``mean`` is that window's mean at the output slots; with every slot it is simply lagged,
    with output slots ``at`` the earlier windows are summed afresh. NaN before the grid.
    """
    if at is None:
        return lag(mean, hours)
    earlier = at - hours
    inside = earlier >= 0
    result = np.full(len(at), np.nan)
    result[inside] = _divide(
        trailing_total(compound_sum, hours, earlier[inside]),
        trailing_total(articles, hours, earlier[inside]),
    )
    return result


def _decayed_mean(
    buckets: _Buckets, values: Array, weights: Array, half_life: int, window: int, at: Slots
) -> Array:
    """Σ w_i 2^(-age_i / half-life) v_i / Σ w_i 2^(-age_i / half-life) over the window.

    The age of an article at the as-of instant ``t + 1h`` splits into whole hours between its
    hour's end and ``t + 1h`` (``j``) plus the part within its hour, so the decay factors
    into ``2^(-j/h)`` (applied per bucket) times a per-article factor.
    """
    decay = buckets.decay(half_life) * weights
    hour_factors = np.exp2(-np.arange(window, dtype=float) / half_life)
    numerator = trailing_weighted_total(buckets.total(decay * values), hour_factors, at)
    denominator = trailing_weighted_total(buckets.total(decay), hour_factors, at)
    return _divide(numerator, denominator)


def _confidence_features(
    features: dict[str, Array], buckets: _Buckets, count: dict[int, Array], at: Slots
) -> None:
    compound = buckets.scores["compound"]
    confidence = buckets.scores["confidence"]
    confidence_sum = trailing_totals(buckets.total(confidence), SENTIMENT_WINDOWS_HOURS, at)
    weighted_sum = trailing_totals(
        buckets.total(confidence * compound), SENTIMENT_WINDOWS_HOURS, at
    )
    for w in SENTIMENT_WINDOWS_HOURS:
        features[f"sent_cw_mean_{w}h"] = _divide(weighted_sum[w], confidence_sum[w])
    for half_life, window in EWM_HALF_LIVES_HOURS.items():
        features[f"sent_cw_ewm_{half_life}h"] = _decayed_mean(
            buckets, compound, confidence, half_life, window, at
        )
    for w in (6, 24):
        features[f"sent_confidence_mean_{w}h"] = _divide(confidence_sum[w], count[w])
    confident = buckets.total((confidence >= CONFIDENT).astype(float))
    features["sent_confident_share_24h"] = _divide(trailing_total(confident, 24, at), count[24])


def trailing_max_int(values: Array, hours: int, at: Slots = None) -> Array:
    """Largest integer in the window (exact: instants stay int64 nanoseconds)."""
    if at is not None:
        return window_matrix(values, hours, at, _NEWEST_NONE).max(axis=1)
    n = len(values)
    largest = values.copy()
    for j in range(1, min(hours, n)):
        np.maximum(largest[j:], values[: n - j], out=largest[j:])
    return largest
