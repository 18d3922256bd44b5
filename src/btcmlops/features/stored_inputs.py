"""What the feature builder reads from the store: bars and sentiment scores in a window of
time, as the frames :func:`~btcmlops.features.builder.compute_feature_frame` takes, and the
newest stored feature row of a set.

The hourly reads use statements built once, with the symbol or scorer and the window as
parameters, and run on Core connections: plain rows suffice, and the ORM layer costs more
than a short read.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, bindparam, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import NullType

from btcmlops.db.models import ArticleSentiment, FeatureRow, PriceBar
from btcmlops.db.store import Store
from btcmlops.features.schema import FEATURE_VERSION, feature_names, validate_feature_set

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
SENTIMENT_COLUMNS = ("published_at", "compound", "positive", "negative", "neutral", "confidence")


class LatestFeatureRow(NamedTuple):
    """The newest stored row of a feature set: its hour, its close and its feature values."""

    ts: datetime
    close: float
    values: dict[str, float | None]


def version_rows(feature_set: str) -> ColumnElement[bool]:
    """The rows of ``feature_set`` under the current feature version."""
    return (FeatureRow.feature_set == feature_set) & (FeatureRow.feature_version == FEATURE_VERSION)


def read_bars(
    session: Session, symbol: str, *, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """Bars of ``symbol`` with ``start <= ts < end``, indexed by ``ts``."""
    if start is not None and end is not None:  # the hourly case: a statement built once
        query, parameters = _BARS_BETWEEN, {"symbol": symbol, "start": start, "end": end}
    else:
        query = _BARS.where(PriceBar.symbol == symbol)
        if start is not None:
            query = query.where(PriceBar.ts >= start)
        if end is not None:
            query = query.where(PriceBar.ts < end)
        query, parameters = query.order_by(PriceBar.ts), {}
    # Core execution: plain rows suffice, and the ORM layer costs more than a short read.
    rows = session.connection().execute(query, parameters).all()
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    frame = pd.DataFrame(
        {
            name: np.asarray(values, dtype=float)
            for name, values in zip(BAR_COLUMNS, columns[1:], strict=True)
        }
    )
    frame.index = pd.DatetimeIndex(_utc_instants(columns[0]), name="ts")
    return frame


def read_sentiment(
    session: Session, scorer: str, *, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """``scorer``'s rows for articles published in ``[start, end)``."""
    if start is not None and end is not None:  # the hourly case: a statement built once
        query, parameters = _SENTIMENT_BETWEEN, {"scorer": scorer, "start": start, "end": end}
    else:
        query = _SENTIMENT.where(ArticleSentiment.scorer == scorer)
        if start is not None:
            query = query.where(ArticleSentiment.published_at >= start)
        if end is not None:
            query = query.where(ArticleSentiment.published_at < end)
        parameters = {}
    rows = session.connection().execute(query, parameters).all()
    if not rows:
        return empty_sentiment()
    columns = list(zip(*rows, strict=True))
    return pd.DataFrame(
        {"published_at": _utc_instants(columns[0])}
        | {
            name: np.asarray(values, dtype=float)
            for name, values in zip(SENTIMENT_COLUMNS[1:], columns[1:], strict=True)
        }
    )


def _as_stored(column: InstrumentedAttribute[datetime]) -> ColumnElement[Any]:
    """A time column read as stored (naive UTC: text on SQLite), not as a datetime per row.

    :func:`_utc_instants` converts the whole column at once, which is several times faster
    than the per-row conversion on a read of a week of articles.
    """
    return type_coerce(column, NullType())


def _utc_instants(stored: Sequence[Any]) -> pd.DatetimeIndex:
    """Stored naive UTC instants (ISO text or datetimes) as an aware UTC index.

    numpy parses the naive ISO text SQLite stores (and naive datetimes) about 30 times
    faster than pandas' ISO parser; anything it would not take as is (an offset, other
    text) goes through pandas, as does an empty column (to keep pandas' dtype for it).
    """
    if len(stored):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy only warns about an offset in the text
                instants = np.array(stored, dtype="datetime64[us]")
        except (ValueError, TypeError, UserWarning, DeprecationWarning):
            pass
        else:
            return pd.DatetimeIndex(instants).tz_localize("UTC")
    return pd.to_datetime(pd.Index(stored, dtype=object), utc=True, format="ISO8601")


_BARS = select(_as_stored(PriceBar.ts), *(getattr(PriceBar, name) for name in BAR_COLUMNS))
_BARS_BETWEEN = _BARS.where(
    PriceBar.symbol == bindparam("symbol"),
    PriceBar.ts >= bindparam("start"),
    PriceBar.ts < bindparam("end"),
).order_by(PriceBar.ts)
_SENTIMENT = select(
    _as_stored(ArticleSentiment.published_at),
    *(getattr(ArticleSentiment, name) for name in SENTIMENT_COLUMNS[1:]),
)
_SENTIMENT_BETWEEN = _SENTIMENT.where(
    ArticleSentiment.scorer == bindparam("scorer"),
    ArticleSentiment.published_at >= bindparam("start"),
    ArticleSentiment.published_at < bindparam("end"),
)


def empty_sentiment() -> pd.DataFrame:
    """A sentiment frame with no articles, in the columns :func:`read_sentiment` gives."""
    return pd.DataFrame(
        {"published_at": pd.DatetimeIndex([], tz="UTC")}
        | {name: np.zeros(0) for name in SENTIMENT_COLUMNS[1:]}
    )


def load_bars_frame(
    store: Store, symbol: str, *, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Stored bars of ``symbol``, ``start <= ts < end``, as :func:`compute_feature_frame` takes."""
    with store.session() as session:
        return read_bars(session, symbol, start=start, end=end)


def load_sentiment_frame(
    store: Store, scorer: str, *, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Stored scores of ``scorer`` for articles published in ``[start, end)``."""
    with store.session() as session:
        return read_sentiment(session, scorer, start=start, end=end)


def latest_feature_row(store: Store, feature_set: str) -> LatestFeatureRow | None:
    """The newest stored row of ``feature_set`` under the current feature version, or ``None``.

    ``values`` has every feature of the set (``None`` where missing), in schema order.
    """
    feature_set = validate_feature_set(feature_set)
    with store.session() as session:
        row = session.execute(
            select(FeatureRow.ts, FeatureRow.close, FeatureRow.feature_values)
            .where(version_rows(feature_set))
            .order_by(FeatureRow.ts.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    ts, close, stored = row
    values = {name: stored_value(stored.get(name)) for name in feature_names(feature_set)}
    return LatestFeatureRow(ts, float(close), values)


def stored_value(value: object) -> float | None:
    """A feature value as stored in a row's JSON: a float, or ``None`` where missing."""
    return None if value is None else float(value)  # type: ignore[arg-type]
