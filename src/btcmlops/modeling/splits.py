"""Chronological train / validation / test splits with purge gaps (DESIGN decision 4).

Time series are never shuffled: the model learns from the oldest hours, is checked on the
next ones and tested on the most recent. Between consecutive parts a *purge gap* of at
least the horizon (1 h) plus the longest feature lookback is dropped: a training row's
label reads the hour after it, and a validation row's features read up to
``MAX_LOOKBACK_HOURS`` before it, so without the gap the parts would share prices.

The 70/10/20 fractions apply to the time that is left once both gaps are cut out, so every
part gets its share however short the history is. Parts are defined by time, not by row
counts: missing hours shorten a part's row count, not its window.

>>> import pandas as pd
>>> hours = pd.date_range("2024-01-01", periods=1_000, freq="h", tz="UTC")
>>> split = chronological_split(hours, purge_gap=pd.Timedelta(hours=24))
>>> [window.rows for window in split.windows()]
[666, 95, 191]
>>> split.test_index[0] - split.validation_index[-1] >= pd.Timedelta(hours=24)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from btcmlops.errors import InsufficientDataError
from btcmlops.features.schema import MAX_LOOKBACK_HOURS

HORIZON = timedelta(hours=1)
PURGE_GAP = HORIZON + timedelta(hours=MAX_LOOKBACK_HOURS)
SPLIT_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)
PART_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Window:
    """One part of a split: first and last hour used (both inclusive) and its row count."""

    name: str
    start: datetime
    end: datetime
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "rows": self.rows}


@dataclass(frozen=True)
class ChronologicalSplit:
    """The timestamps of each part, in time order, and the purge gap between parts."""

    train_index: pd.DatetimeIndex
    validation_index: pd.DatetimeIndex
    test_index: pd.DatetimeIndex
    purge_gap: timedelta
    purged_rows: int

    def windows(self) -> list[Window]:
        parts = (self.train_index, self.validation_index, self.test_index)
        return [
            Window(name, part[0].to_pydatetime(), part[-1].to_pydatetime(), len(part))
            for name, part in zip(PART_NAMES, parts, strict=True)
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description (what the registry stores as the model's windows)."""
        described: dict[str, Any] = {window.name: window.as_dict() for window in self.windows()}
        described["purge_gap_hours"] = self.purge_gap / timedelta(hours=1)
        described["purged_rows"] = self.purged_rows
        described["fractions"] = list(SPLIT_FRACTIONS)
        return described


def chronological_split(
    timestamps: pd.DatetimeIndex,
    *,
    purge_gap: timedelta = PURGE_GAP,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
) -> ChronologicalSplit:
    """Split usable hours into train, validation and test parts in time order.

    Parameters
    ----------
    timestamps:
        The hours that have features and a known target (any order; duplicates refused).
    purge_gap:
        Time dropped between consecutive parts; the first hour of a part is more than
        ``purge_gap`` after the last hour of the part before it.
    fractions:
        Shares of the remaining time (after both gaps) for train, validation and test.

    Raises
    ------
    InsufficientDataError
        If the history does not span the two gaps plus a usable part each, with the counts.
    """
    index = pd.DatetimeIndex(timestamps).sort_values()
    if index.has_duplicates:
        raise ValueError("timestamps must be unique")
    if len(index) == 0:
        raise InsufficientDataError("no rows to split")
    span = index[-1] - index[0]
    usable = span - 2 * pd.Timedelta(purge_gap)
    gap_hours = purge_gap / timedelta(hours=1)
    if usable <= pd.Timedelta(0):
        raise InsufficientDataError(
            f"{len(index)} rows span {span / pd.Timedelta(hours=1):.0f} h "
            f"({index[0].isoformat()} to {index[-1].isoformat()}), but the split drops two "
            f"purge gaps of {gap_hours:.0f} h; at least {2 * gap_hours:.0f} h plus room for "
            "three parts is needed"
        )
    train_share, validation_share, _ = fractions
    train_end = index[0] + usable * train_share  # exclusive
    validation_start = train_end + purge_gap
    validation_end = validation_start + usable * validation_share  # exclusive
    test_start = validation_end + purge_gap

    train = index[index < train_end]
    validation = index[(index >= validation_start) & (index < validation_end)]
    test = index[index >= test_start]
    empty = [
        name
        for name, part in zip(PART_NAMES, (train, validation, test), strict=True)
        if not len(part)
    ]
    if empty:
        raise InsufficientDataError(
            f"after dropping two purge gaps of {gap_hours:.0f} h, the train/validation/test "
            f"parts have {len(train)}/{len(validation)}/{len(test)} rows; "
            f"{', '.join(empty)} would be empty (the {len(index)} rows have too many missing hours)"
        )
    return ChronologicalSplit(
        train_index=train,
        validation_index=validation,
        test_index=test,
        purge_gap=purge_gap,
        purged_rows=len(index) - len(train) - len(validation) - len(test),
    )
