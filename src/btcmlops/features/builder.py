"""The feature builder: hourly feature rows from stored bars and sentiment scores.

The row of hour ``t`` (the bar starting at ``t``) is computed as of ``t + 1h``, when that bar
closes. It reads bars starting at or before ``t`` and articles published before ``t + 1h``,
nothing later. Rows exist only for hours that have a bar. ``docs/features.md`` gives every
definition.

:func:`compute_feature_frame` is the pure computation (usable without a store);
:func:`build_features` runs it incrementally against the store: only hours after the last
stored row of the set and :data:`~btcmlops.features.schema.FEATURE_VERSION`, up to the last
bar closed by ``clock.now()``, loading only the lookback those hours need.

A late article (published in the past but stored after its hour was built) does not revise
rows already built; ``rebuild=True`` recomputes every row from what is stored now.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Insert,
    delete,
    exists,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from btcmlops.clock import HOUR, Clock, floor_hour
from btcmlops.db.models import ArticleSentiment, FeatureRow
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.features.calendar_features import compute_calendar_features
from btcmlops.features.price_features import compute_price_features
from btcmlops.features.schema import (
    FEATURE_VERSION,
    MAX_LOOKBACK_HOURS,
    SCORER_FOR_SET,
    feature_names,
    validate_feature_set,
)
from btcmlops.features.sentiment_features import compute_sentiment_features
from btcmlops.features.stored_inputs import (
    BAR_COLUMNS,
    LatestFeatureRow,
    empty_sentiment,
    read_bars,
    read_sentiment,
    stored_value,
    version_rows,
)
from btcmlops.features.windows import HOUR_NS, HourlyGrid

_INSERT_CHUNK = 1_000  # feature rows per INSERT (each carries ~100 values of JSON)
# Up to this many new hours are computed row by row (``first_output``); more at once over the
# whole window. Measured: row by row is faster below ~300 rows (bench/features.py).
ROW_BY_ROW_MAX_HOURS = 168

Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------- pure computation


def compute_feature_frame(
    bars: pd.DataFrame,
    sentiment: pd.DataFrame,
    feature_set: str,
    *,
    first_output: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The features of every hour that has a bar, as a float frame.

    Parameters
    ----------
    bars:
        Hourly OHLCV bars: columns ``open, high, low, close, volume``, indexed by the UTC hour
        each bar starts (or with a ``ts`` column). Gaps are allowed; hours must be unique.
    sentiment:
        The feature set's scorer's rows: ``published_at, compound, positive, negative,
        neutral`` and, for ``finbert``, ``confidence``. Rows with a non-finite compound are
        ignored.
    feature_set:
        ``vader`` or ``finbert``.
    first_output:
        Compute only the rows of the hour this instant falls in and of later hours, each
        window evaluated at those rows alone (the cost grows with the rows asked for, not with
        the bars given). Every row is bit for bit the row a call without it returns.

    Returns
    -------
    A frame indexed by ``ts`` (the bar hours, UTC, sorted) with the columns
    ``feature_names(feature_set)`` in order; a value that cannot be computed is NaN.
    """
    feature_set = validate_feature_set(feature_set)
    names = feature_names(feature_set)
    bar_hours, ohlcv = _bar_arrays(bars)
    first_hour = None if first_output is None else _whole_hour(first_output)
    if first_hour is not None:
        # No row asked for reads a bar older than its lookback.
        kept = bar_hours >= first_hour - MAX_LOOKBACK_HOURS
        if len(bar_hours) == 0 or bar_hours[-1] < first_hour:  # no row is asked for
            kept[:] = False
        bar_hours = bar_hours[kept]
        ohlcv = {name: values[kept] for name, values in ohlcv.items()}
    if len(bar_hours) == 0:
        return pd.DataFrame(
            np.zeros((0, len(names))),
            index=pd.DatetimeIndex([], tz="UTC", name="ts"),
            columns=names,
        )
    # Slots before the first bar hold the articles its windows reach back to.
    grid = HourlyGrid(
        first_hour=int(bar_hours[0]) - MAX_LOOKBACK_HOURS,
        length=int(bar_hours[-1] - bar_hours[0]) + MAX_LOOKBACK_HOURS + 1,
    )
    slots = (bar_hours - grid.first_hour).astype(np.intp)
    dense = {}
    for name, values in ohlcv.items():
        column = np.full(grid.length, np.nan)
        column[slots] = values
        dense[name] = column

    at = None
    if first_hour is not None:
        output = bar_hours >= first_hour
        bar_hours, at = bar_hours[output], slots[output]
    with np.errstate(invalid="ignore", divide="ignore"):
        features = compute_price_features(
            dense["open"], dense["high"], dense["low"], dense["close"], dense["volume"], at=at
        )
        features.update(
            compute_sentiment_features(
                sentiment, grid, confidence_weighted=feature_set == "finbert", at=at
            )
        )
        features.update(compute_calendar_features(grid, at=at))

    rows = slice(None) if at is not None else slots  # at the output slots already
    # Rows x features, stored feature by feature (the layout pandas keeps a float frame in).
    matrix = np.array([features[name][rows] for name in names], dtype=float).T
    matrix[~np.isfinite(matrix)] = np.nan
    index = pd.DatetimeIndex((bar_hours * HOUR_NS).view("datetime64[ns]"), name="ts")
    return pd.DataFrame(matrix, index=index.tz_localize("UTC"), columns=_columns(feature_set))


@functools.cache
def _columns(feature_set: str) -> pd.Index:
    """The frame's column index (built once: it is immutable, and costs more than a row)."""
    return pd.Index(feature_names(feature_set))


def _whole_hour(moment: datetime | pd.Timestamp) -> int:
    """The hour (since the epoch, UTC) ``moment`` falls in; a naive moment is taken as UTC."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value // HOUR_NS)


def _bar_arrays(bars: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bar hours (whole hours since the epoch, sorted) and their OHLCV values."""
    missing = [name for name in BAR_COLUMNS if name not in bars.columns]
    if missing:
        raise InvalidInputError(
            f"the bars frame lacks column(s) {', '.join(missing)}: expected "
            f"{', '.join(BAR_COLUMNS)} indexed by the UTC hour each bar starts"
        )
    stamps = bars["ts"] if "ts" in bars.columns else bars.index
    try:
        index = pd.DatetimeIndex(stamps)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            "the bars frame needs a DatetimeIndex (or a 'ts' column) of UTC hours"
        ) from exc
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    nanoseconds = index.as_unit("ns").asi8
    if len(nanoseconds) and (nanoseconds % HOUR_NS != 0).any():
        raise InvalidInputError("every bar must start on the hour (UTC)")
    hours = nanoseconds // HOUR_NS
    order = np.argsort(hours, kind="stable")
    hours = hours[order]
    if len(hours) > 1 and (np.diff(hours) == 0).any():
        raise InvalidInputError("the bars frame has two bars for the same hour")
    values = {name: bars[name].to_numpy(dtype=float)[order] for name in BAR_COLUMNS}
    return hours, values


# ------------------------------------------------------------------------------ the store


@dataclass
class BuildSummary:
    """What one build of one feature set did. ``rows_built = rows_inserted + rows_skipped``."""

    feature_set: str
    feature_version: str
    rebuilt: bool = False
    rows_deleted: int = 0
    rows_built: int = 0
    rows_inserted: int = 0
    rows_skipped: int = 0
    rows_with_missing: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    scored_articles: int = 0
    warnings: list[str] = field(default_factory=list)
    # The hourly build's one new row exactly as stored (None otherwise), so the caller can
    # hand it to the predictor instead of reading it back.
    newest_row: LatestFeatureRow | None = field(default=None, repr=False, compare=False)

    def line(self) -> str:
        """The summary as one line of text."""
        head = f"{self.feature_set} ({self.feature_version}): "
        if self.rows_built == 0:
            text = head + "no new closed hours to build"
        else:
            text = head + (
                f"built {self.rows_built} rows {_hour(self.first_ts)} .. {_hour(self.last_ts)}, "
                f"inserted {self.rows_inserted}, skipped {self.rows_skipped} (already stored), "
                f"{self.rows_with_missing} with missing values, "
                f"{self.scored_articles} scored articles read"
            )
        if self.rebuilt:
            text += f"; rebuilt (deleted {self.rows_deleted} old rows)"
        for warning in self.warnings:
            text += f"; WARNING: {warning}"
        return text

    __str__ = line

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_set": self.feature_set,
            "feature_version": self.feature_version,
            "rebuilt": self.rebuilt,
            "rows_deleted": self.rows_deleted,
            "rows_built": self.rows_built,
            "rows_inserted": self.rows_inserted,
            "rows_skipped": self.rows_skipped,
            "rows_with_missing": self.rows_with_missing,
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
            "scored_articles": self.scored_articles,
            "warnings": list(self.warnings),
        }


def _hour(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ") if moment else "-"


def build_features(
    store: Store,
    feature_set: str,
    *,
    clock: Clock,
    symbol: str,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> BuildSummary:
    """Build and store the missing feature rows of ``feature_set`` (or all, with ``rebuild``).

    Parameters
    ----------
    store:
        Where bars, sentiment scores and feature rows live.
    feature_set:
        ``vader`` or ``finbert``.
    clock:
        Only bars closed by ``clock.now()`` (``ts + 1h <= now``) get a row; ``built_at`` is
        ``clock.now()``.
    symbol:
        The market whose bars to read (``Settings.symbol``).
    rebuild:
        Delete this set's rows of the current feature version and build every hour again, in
        one transaction (readers see the old rows until it commits).
    progress:
        Called as ``progress(rows_stored, rows_to_store)`` after each inserted chunk.

    Returns
    -------
    A :class:`BuildSummary`; its ``warnings`` say when the set's scorer has no scores (the
    rows are built with their sentiment features missing) or when there are no bars at all.
    """
    feature_set = validate_feature_set(feature_set)
    scorer = SCORER_FOR_SET[feature_set]
    now = clock.now()
    summary = BuildSummary(feature_set, FEATURE_VERSION, rebuilt=rebuild)

    with store.session() as session:
        last_stored = None if rebuild else _last_stored_hour(session, feature_set)
        first_new = None if last_stored is None else last_stored + HOUR
        load_from = None if first_new is None else first_new - timedelta(hours=MAX_LOOKBACK_HOURS)
        bars = read_bars(session, symbol, start=load_from, end=floor_hour(now))
        new_hours = bars.index if first_new is None else bars.index[bars.index >= first_new]
        # A few new hours: compute only their rows (windows evaluated at those rows alone);
        # a rebuild or a long backfill: every hour at once, which is faster for many rows.
        row_by_row = first_new is not None and len(new_hours) <= ROW_BY_ROW_MAX_HOURS
        if len(new_hours):
            # The windows of the rows built reach back MAX_LOOKBACK_HOURS before the first
            # row built (before the first bar read, for a whole-window computation), and
            # forward to the as-of instant of the newest row.
            oldest_row = new_hours[0] if row_by_row else bars.index[0]
            oldest_read = oldest_row.to_pydatetime() - timedelta(hours=MAX_LOOKBACK_HOURS)
            newest_as_of = new_hours[-1].to_pydatetime() + HOUR
            sentiment = read_sentiment(session, scorer, start=oldest_read, end=newest_as_of)
        else:
            sentiment = empty_sentiment()
        has_scores = len(sentiment) > 0 or _scorer_has_scores(session, scorer)

    if len(bars) == 0 and last_stored is None:
        summary.warnings.append(
            f"no closed price bars for {symbol} before {_hour(floor_hour(now))}: "
            "ingest prices first"
        )
    if not has_scores:
        summary.warnings.append(_no_scores_warning(scorer))
    elif len(new_hours) and len(sentiment) == 0:
        summary.warnings.append(
            f"no {scorer} scores for articles published in the windows of the new rows: "
            "their sentiment features are missing"
        )

    if not len(new_hours):
        frame = compute_feature_frame(bars.iloc[:0], sentiment, feature_set)
    elif row_by_row:
        frame = compute_feature_frame(bars, sentiment, feature_set, first_output=first_new)
    else:
        frame = compute_feature_frame(bars, sentiment, feature_set)
        if first_new is not None:
            frame = frame[frame.index >= first_new]
    summary.scored_articles = len(sentiment)
    _write_rows(store, feature_set, frame, now, rebuild, summary, progress)
    return summary


def _no_scores_warning(scorer: str) -> str:
    extra = " (needs the finbert extra)" if scorer == "finbert" else ""
    return (
        f"no {scorer} scores found: run `btcmlops sentiment score --scorer {scorer}`{extra}; "
        "rows are built with their sentiment features missing"
    )


def _write_rows(
    store: Store,
    feature_set: str,
    frame: pd.DataFrame,
    now: datetime,
    rebuild: bool,
    summary: BuildSummary,
    progress: Progress | None,
) -> None:
    """Insert ``frame``'s rows (replacing the version's rows on rebuild) in one transaction."""
    matrix = frame.to_numpy()
    missing = ~np.isfinite(matrix)
    missing_counts = missing.sum(axis=1)
    names = list(frame.columns)
    hours = [moment.to_pydatetime() for moment in frame.index]
    closes = frame["close"].to_numpy()

    summary.rows_built = len(frame)
    summary.rows_with_missing = int((missing_counts > 0).sum())
    if len(frame):
        summary.first_ts, summary.last_ts = hours[0], hours[-1]

    with store.session() as session:
        if rebuild:
            summary.rows_deleted = _delete_rows(session, feature_set)
        if not len(frame):
            return
        statement = _insert_ignoring_duplicates(store)

        def rows(chunk: list[int]) -> list[dict[str, Any]]:
            # JSON (and PostgreSQL's JSONB) has no NaN: a missing value is stored as null.
            values = matrix[chunk].astype(object)
            values[missing[chunk]] = None
            return [
                {
                    "feature_set": feature_set,
                    "feature_version": FEATURE_VERSION,
                    "ts": hours[i],
                    "close": float(closes[i]),
                    "feature_values": dict(zip(names, row_values, strict=True)),
                    "missing_count": int(missing_counts[i]),
                    "built_at": now,
                }
                for i, row_values in zip(chunk, values.tolist(), strict=True)
            ]

        if len(hours) == 1 and not rebuild:
            # The hourly case: one INSERT, whose RETURNING row says whether a concurrent
            # build stored the hour first (no look for stored hours needed).
            (row,) = rows([0])
            returned = session.connection().execute(statement.returning(FeatureRow.ts), row)
            inserted = 0 if returned.first() is None else 1
            summary.rows_inserted, summary.rows_skipped = inserted, 1 - inserted
            if inserted:
                stored = row["feature_values"]
                summary.newest_row = LatestFeatureRow(
                    row["ts"],
                    row["close"],
                    {name: stored_value(stored.get(name)) for name in feature_names(feature_set)},
                )
            if progress is not None:
                progress(inserted, inserted)
            return
        stored = _stored_hours(session, feature_set, hours[0], hours[-1])
        fresh = [i for i, hour in enumerate(hours) if hour not in stored]
        summary.rows_skipped = len(hours) - len(fresh)
        for start in range(0, len(fresh), _INSERT_CHUNK):
            chunk = fresh[start : start + _INSERT_CHUNK]
            session.execute(statement, rows(chunk))
            summary.rows_inserted += len(chunk)
            if progress is not None:
                progress(summary.rows_inserted, len(fresh))


def _insert_ignoring_duplicates(store: Store) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING``: a concurrent build of the same hour is harmless."""
    dialect = postgresql if store.dialect == "postgresql" else sqlite
    return dialect.insert(FeatureRow).on_conflict_do_nothing(
        index_elements=["feature_set", "feature_version", "ts"]
    )


def _last_stored_hour(session: Session, feature_set: str) -> datetime | None:
    # Core execution, like the reads below: the ORM layer costs more than these small reads.
    query = select(func.max(FeatureRow.ts)).where(version_rows(feature_set))
    return session.connection().scalar(query)


def _stored_hours(
    session: Session, feature_set: str, first: datetime, last: datetime
) -> set[datetime]:
    rows = session.connection().scalars(
        select(FeatureRow.ts).where(
            version_rows(feature_set), FeatureRow.ts >= first, FeatureRow.ts <= last
        )
    )
    return set(rows)


def _delete_rows(session: Session, feature_set: str) -> int:
    result = session.execute(delete(FeatureRow).where(version_rows(feature_set)))
    return int(result.rowcount or 0)


def _scorer_has_scores(session: Session, scorer: str) -> bool:
    return bool(session.scalar(select(exists().where(ArticleSentiment.scorer == scorer))))
