"""Reading stored feature rows and prices back as pandas objects (for training and drift)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

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
    query = select(FeatureRow.ts, FeatureRow.feature_values).where(
        FeatureRow.feature_set == feature_set, FeatureRow.feature_version == feature_version
    )
    if start is not None:
        query = query.where(FeatureRow.ts >= start)
    if end is not None:
        query = query.where(FeatureRow.ts < end)
    with store.session() as session:
        rows = session.execute(query.order_by(FeatureRow.ts)).all()
    index = _utc_index([ts for ts, _ in rows])
    matrix = np.full((len(rows), len(columns)), np.nan)
    for i, (_, values) in enumerate(rows):
        matrix[i] = [_as_float(values.get(name)) for name in columns]
    return pd.DataFrame(matrix, index=index, columns=list(columns))


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
