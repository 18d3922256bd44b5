"""Stored feature rows decoded once: the frames the daily checks and retraining read again.

The daily drift check reads the same month of feature rows every day (and the retraining
policy a second time), and every retraining its whole training window; decoding each row's
JSON values again was most of their time. :class:`FeatureFrameCache` keeps the decoded rows
of the window it was last asked for, one entry per (feature set, version, columns). Each
read asks the store which rows the window holds, by identity only (no values decoded), and
decodes just the rows it has not seen.

A row's identity is its id *and* its ``built_at``. Rows are never updated in place: the
builder inserts new hours, and a rebuild deletes a set's rows and inserts them again in
one transaction, stamped with the instant of the rebuild. SQLite may hand a deleted id to a
new row, but not with the old row's ``built_at`` unless the rebuild ran at the very instant
the row was first built. So a window whose identities are all cached is answered from
memory exactly as :func:`~btcmlops.features.frames.load_feature_frame` answers it (tests
compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select

from btcmlops.db.models import FeatureRow
from btcmlops.db.store import Store
from btcmlops.features.frames import feature_matrix, feature_rows_query, load_feature_frame

_EntryKey = tuple[str, str, tuple[str, ...]]
_RowIdentity = tuple[int, datetime]


@dataclass(frozen=True)
class _Entry:
    """Decoded rows of one (feature set, version, columns), by identity."""

    rows: dict[_RowIdentity, np.ndarray]


@dataclass(frozen=True)
class StoredFrame:
    """A feature frame and the identities of its rows (``None`` when they could not be
    listed): two reads whose rows have the same identities hold the same values."""

    frame: pd.DataFrame
    row_ids: tuple[_RowIdentity, ...] | None


class FeatureFrameCache:
    """Feature frames of one store, each row's values decoded once (see the module docs)."""

    def __init__(self, store: Store, *, max_entries: int = 8) -> None:
        self._store = store
        self.max_entries = max_entries  # column sets kept (a set's columns rarely change)
        self._entries: dict[_EntryKey, _Entry] = {}

    def load(
        self,
        feature_set: str,
        feature_version: str,
        columns: Sequence[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Exactly ``load_feature_frame(store, feature_set, feature_version, columns, start=
        start, end=end)``, reading from the store only the rows not decoded before."""
        return self.read(feature_set, feature_version, columns, start=start, end=end).frame

    def read(
        self,
        feature_set: str,
        feature_version: str,
        columns: Sequence[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> StoredFrame:
        """:meth:`load`'s frame with the identities of the rows it was made of."""
        key = (feature_set, feature_version, tuple(columns))
        window = feature_rows_query(feature_set, feature_version, start=start, end=end)
        listing = window.with_only_columns(FeatureRow.id, FeatureRow.built_at, FeatureRow.ts)
        with self._store.session() as session:
            connection = session.connection()
            listed = connection.execute(listing).all()
            known = self._entries.get(key, _Entry({})).rows
            new = [((row_id, built_at), ts) for row_id, built_at, ts in listed]
            new = [(identity, ts) for identity, ts in new if identity not in known]
            fresh = _decode(connection, window, new, columns)
        identities = [(row_id, built_at) for row_id, built_at, _ in listed]
        if len(fresh) < len(new):  # the rows changed between the two reads: read them all
            self._entries.pop(key, None)
            frame = load_feature_frame(
                self._store, feature_set, feature_version, columns, start=start, end=end
            )
            return StoredFrame(frame, None)
        rows = {identity: fresh.get(identity, known.get(identity)) for identity in identities}
        self._entries.pop(key, None)
        self._entries[key] = _Entry(rows)  # the window read last: older rows are let go
        while len(self._entries) > self.max_entries:  # the least recently read goes first
            del self._entries[next(iter(self._entries))]
        matrix = np.array(list(rows.values()), dtype=float).reshape(len(rows), len(columns))
        index = _utc_index([ts for *_, ts in listed])
        return StoredFrame(pd.DataFrame(matrix, index=index, columns=list(columns)), tuple(rows))


def _decode(
    connection: Connection,
    window: Select[tuple[datetime, dict[str, object]]],
    rows: Sequence[tuple[_RowIdentity, datetime]],
    columns: Sequence[str],
) -> dict[_RowIdentity, np.ndarray]:
    """Values of ``rows`` ((id, built_at), ts) by identity, read in one pass over the hours
    they span."""
    if not rows:
        return {}
    wanted = {identity for identity, _ in rows}
    span = window.where(
        FeatureRow.ts >= min(ts for _, ts in rows), FeatureRow.ts <= max(ts for _, ts in rows)
    ).add_columns(FeatureRow.id, FeatureRow.built_at)
    read = connection.execute(span).all()
    kept = [((row_id, built_at), (ts, values)) for ts, values, row_id, built_at in read]
    kept = [(identity, row) for identity, row in kept if identity in wanted]
    _, matrix = feature_matrix([row for _, row in kept], columns)
    return {identity: matrix[i] for i, (identity, _) in enumerate(kept)}


def _utc_index(instants: list[datetime]) -> pd.DatetimeIndex:
    """The hours as ``load_feature_frame`` indexes them: UTC, named ``ts``."""
    index = pd.DatetimeIndex(instants, name="ts")
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
