"""Reading stored feature rows and prices back as pandas objects (for training and drift)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, select

from btcmlops.db.models import FeatureRow, PriceBar
from btcmlops.db.store import Store


def load_feature_frame(
    store: Store,
    feature_set: str,
    feature_version: str,
    columns: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Feature rows of one set and version with ``start <= ts < end``, as a float frame.

    The index is the rows' UTC hour (sorted); the columns are ``columns`` in that order.
    A value missing from a row (or stored as null) is NaN: missing data stays missing.
    """
    query = feature_rows_query(feature_set, feature_version, start=start, end=end)
    with store.session() as session:
        # Core execution: plain rows suffice, and the ORM layer costs more than a short read
        rows = session.connection().execute(query).all()
    hours, matrix = feature_matrix(rows, columns)
    return pd.DataFrame(matrix, index=_utc_index(hours), columns=list(columns))


def feature_rows_query(
    feature_set: str,
    feature_version: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Select[tuple[datetime, dict[str, Any]]]:
    """``(ts, feature_values)`` of the rows with ``start <= ts < end``, oldest first."""
    query = select(FeatureRow.ts, FeatureRow.feature_values).where(
        FeatureRow.feature_set == feature_set, FeatureRow.feature_version == feature_version
    )
    if start is not None:
        query = query.where(FeatureRow.ts >= start)
    if end is not None:
        query = query.where(FeatureRow.ts < end)
    return query.order_by(FeatureRow.ts)


def feature_matrix(
    rows: Sequence[Any], columns: Sequence[str]
) -> tuple[list[datetime], np.ndarray]:
    """The rows' hours and their values of ``columns`` as a float matrix (NaN where missing),
    without pandas: for the hourly jobs that read one row."""
    matrix = np.full((len(rows), len(columns)), np.nan)
    for i, (_, values) in enumerate(rows):
        matrix[i] = [_as_float(values.get(name)) for name in columns]
    return [ts for ts, _ in rows], matrix


def _as_float(value: object) -> float:
    return np.nan if value is None else float(value)  # type: ignore[arg-type]


def load_closes(
    store: Store,
    symbol: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.Series:
    """Close prices of ``symbol`` by UTC hour start, ``start <= ts < end``, sorted."""
    query = select(PriceBar.ts, PriceBar.close).where(PriceBar.symbol == symbol)
    if start is not None:
        query = query.where(PriceBar.ts >= start)
    if end is not None:
        query = query.where(PriceBar.ts < end)
    with store.session() as session:
        rows = session.execute(query.order_by(PriceBar.ts)).all()
    index = _utc_index([ts for ts, _ in rows])
    return pd.Series([close for _, close in rows], index=index, name="close", dtype=float)


def _utc_index(instants: list[datetime]) -> pd.DatetimeIndex:
    """A UTC index, also when empty (so comparisons with aware datetimes always work)."""
    index = pd.DatetimeIndex(instants, name="ts")
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
