"""Compare two datasets with the feature-drift statistics: two files (CSV or Parquet), or
two in-memory tables (column → values, as ``POST /drift/compare`` receives them).

This is what ``btcmlops drift compare`` runs, what ``bench/drift.py`` times and what the API
serves: read both sides, pick the numeric columns they share (or the named ones), and run
:func:`~btcmlops.mlops.drift.feature_drift.compare_prepared`. Files and tables are read by
their own readers (``files``, ``tables``) into the same shape, and from there take one path.

Dependence (each feature's dependence time) is estimated from the reference's own rows
unless a history (earlier rows of the same features, at least as many as the reference) is
given. On a short reference of a persistent feature the estimate comes out far too small
and the check would alarm on noise (86 % of AR(0.95) checks at 24 × 24), so when the rows
cannot support the estimate (:class:`~btcmlops.mlops.drift.reference.Dependence`) the
check is refused with one line that says what would fix it: a longer reference or history.

Bad values are counted and said, never silently dropped or let into the statistics: stray
text cells in a numeric column (read as missing) and ±infinity, which is kept out of the KS
test and of the PSI's quantile edges (an infinite edge made a negative bin share). Both are
reported per feature in ``bad_values`` and in the notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.feature_drift import (
    FeatureDriftResult,
    compare_prepared,
    history_is_used,
)
from btcmlops.mlops.drift.files import NumericTable, StrayCells, read_numeric_table
from btcmlops.mlops.drift.reference import Dependence, DriftReference
from btcmlops.mlops.drift.results import BadValues, CompareReportDict
from btcmlops.mlops.drift.statistics import (
    DEPENDENCE_ROWS,
    SortedSample,
    column_moments,
    start_ks_two_sample,
)
from btcmlops.mlops.drift.tables import ColumnTable, read_table

# About 16 MB of float64 per side and 100 MB of Python objects while a request is read.
MAX_TABLE_VALUES = 2_000_000
FILE_HISTORY_HINT = "(--history FILE)"
TABLE_HISTORY_HINT = '("history" in the request)'

Table = NumericTable | ColumnTable


@dataclass(frozen=True)
class CompareReport:
    """The drift check of two datasets, with notes on the columns that were left out.

    ``reference_path`` and ``current_path`` name the two sides: the files' paths, or
    ``reference`` and ``current`` for in-memory tables.
    """

    reference_path: str
    current_path: str
    result: FeatureDriftResult
    notes: tuple[str, ...]
    bad_values: BadValues = field(default_factory=BadValues)

    @property
    def drift(self) -> bool:
        """True when the check found drift of any severity (the CLI then exits with 1)."""
        return self.result.drift_severity not in (None, "none")

    def to_dict(self) -> CompareReportDict:
        return {
            "reference": self.reference_path,
            "current": self.current_path,
            "drift": self.drift,
            "notes": list(self.notes),
            "bad_values": self.bad_values,
            **self.result.to_dict(),
        }


@dataclass(frozen=True)
class _Sides:
    """Both sides as read (feature-major float columns) and what was said on the way."""

    names: list[str]
    reference: np.ndarray
    current: np.ndarray
    history: np.ndarray | None  # already without ±inf
    notes: list[str]
    non_numeric: dict[str, dict[str, dict[str, int]]]


def compare_files(
    reference_path: Path | str,
    current_path: Path | str,
    features: Sequence[str] | None = None,
    *,
    bins: int = 10,
    alpha: float = 0.05,
    psi_effect_floor: float = 0.1,
    min_samples: int = 24,
    history_path: Path | str | None = None,
) -> CompareReport:
    """Feature drift of ``current_path`` against ``reference_path``.

    Raises InvalidInputError for an unreadable file, a named feature missing from (or not
    numeric in) a file, no numeric column in common, fewer than ``min_samples`` rows, a
    history without the features or shorter than the reference, or (without a history) a
    reference too short to estimate its dependence.
    """
    wanted = _wanted(features, "--features")
    # The tables go straight into _read_sides, so their Arrow buffers are released as soon
    # as the columns are out, before the statistics.
    return _compare_sides(
        _read_sides(
            read_numeric_table(Path(reference_path)),
            read_numeric_table(Path(current_path)),
            _history_file(history_path),
            wanted,
            min_samples,
        ),
        str(reference_path),
        str(current_path),
        bins=bins,
        alpha=alpha,
        psi_effect_floor=psi_effect_floor,
        min_samples=min_samples,
        history_hint=FILE_HISTORY_HINT,
    )


def compare_tables(
    reference: Mapping[str, Sequence],
    current: Mapping[str, Sequence],
    features: Sequence[str] | None = None,
    *,
    bins: int = 10,
    alpha: float = 0.05,
    psi_effect_floor: float = 0.1,
    min_samples: int = 24,
    history: Mapping[str, Sequence] | None = None,
) -> CompareReport:
    """Feature drift of the ``current`` table against the ``reference`` table.

    Each table maps column names to their values in time order (numbers, None, or strings;
    see :mod:`~btcmlops.mlops.drift.tables`); ``history`` holds earlier rows of the same
    features. Raises InvalidInputError as :func:`compare_files` does, and for columns of
    unequal length within a table or more than ``MAX_TABLE_VALUES`` values in all.
    """
    wanted = _wanted(features, '"features"')
    total = _value_count(reference, current, history or {})
    if total > MAX_TABLE_VALUES:
        raise InvalidInputError(
            f"the tables hold {total:,} values; at most {MAX_TABLE_VALUES:,} are compared "
            "at once: send fewer rows or columns"
        )
    return _compare_sides(
        _read_sides(
            read_table(reference, label='the "reference" table'),
            read_table(current, label='the "current" table'),
            None if history is None else read_table(history, label='the "history" table'),
            wanted,
            min_samples,
        ),
        "reference",
        "current",
        bins=bins,
        alpha=alpha,
        psi_effect_floor=psi_effect_floor,
        min_samples=min_samples,
        history_hint=TABLE_HISTORY_HINT,
    )


def _history_file(path: Path | str | None) -> NumericTable | None:
    return None if path is None else read_numeric_table(Path(path), label=f"the history {path}")


def _wanted(features: Sequence[str] | None, option: str) -> list[str] | None:
    wanted = list(dict.fromkeys(features)) if features is not None else None
    if wanted is not None and not wanted:
        raise InvalidInputError(f"{option} names no feature")
    return wanted


def _value_count(*tables: Mapping[str, Sequence]) -> int:
    if not all(isinstance(table, Mapping) for table in tables):
        return 0  # read_table says what is wrong
    return sum(
        len(values) for table in tables for values in table.values() if hasattr(values, "__len__")
    )


def _read_sides(
    reference: Table,
    current: Table,
    history: Table | None,
    wanted: list[str] | None,
    min_samples: int,
) -> _Sides:
    """Choose the features, check the sizes, and take the columns out of the tables."""
    names, notes = _choose_features(reference, current, wanted)
    for table in (reference, current):
        if table.rows < min_samples:
            raise InvalidInputError(
                f"too few rows in {table.label}: {table.rows}, need at least {min_samples}"
            )
    non_numeric = _stray_cells(reference, current, names, notes)
    history_columns = None
    if history is not None:
        history_columns = _history_columns(history, names, reference.rows, notes)
    return _Sides(
        names=names,
        reference=reference.columns(names),
        current=current.columns(names),
        history=history_columns,
        notes=notes,
        non_numeric=non_numeric,
    )


def _compare_sides(
    sides: _Sides,
    reference_name: str,
    current_name: str,
    *,
    bins: int,
    alpha: float,
    psi_effect_floor: float,
    min_samples: int,
    history_hint: str,
) -> CompareReport:
    """The check on both sides as read: ±inf out, τ, the sorted samples and the tests.

    ``sides`` comes straight from :func:`_read_sides`, so once unpacked here the columns
    are released as soon as the statistics are done with them.
    """
    names, notes = sides.names, sides.notes
    reference_columns, current_columns = sides.reference, sides.current
    history_columns, non_numeric = sides.history, sides.non_numeric
    del sides
    reference_rows = reference_columns.shape[1]
    infinite = {
        "reference": _infinities_out(reference_columns, names),
        "current": _infinities_out(current_columns, names),
    }
    _note_infinities(infinite, notes)
    # The moments need the rows in time order, and so does the dependence estimate, which
    # reads only the most recent DEPENDENCE_ROWS (kept as a small copy). Then each side is
    # sorted in place (the columns are this check's own), so a large sample is never held
    # twice, and the KS test starts on the sorted samples: its exact p-values run on the
    # worker threads while the dependence, the reference's quantiles and PSI are computed.
    recent = reference_columns[:, -DEPENDENCE_ROWS:].copy()
    reference_moments = column_moments(reference_columns)
    current_moments = column_moments(current_columns)
    reference_sample = SortedSample.from_columns(reference_columns, copy=False)
    current_sample = SortedSample.from_columns(current_columns, copy=False)
    del reference_columns, current_columns
    ks = start_ks_two_sample(reference_sample, current_sample, bounds=True)
    dependence = Dependence.for_check(recent, history_columns, reference_rows=reference_rows)
    del recent, history_columns
    prepared = DriftReference.from_sorted(
        reference_sample, names, moments=reference_moments, dependence=dependence, bins=bins
    )
    if prepared.dependence_unsupported:
        raise InvalidInputError(f"{prepared.refusal()} {history_hint}")
    result = compare_prepared(
        prepared,
        current_sample.values,  # sorted: read for its shape only, with current_moments
        names,
        reference_rows=reference_rows,
        alpha=alpha,
        psi_effect_floor=psi_effect_floor,
        min_samples=min_samples,
        bins=bins,
        current_sample=current_sample,
        ks=ks,
        current_moments=current_moments,
    )
    if result.untested_features:
        notes.append(
            f"not tested (fewer than {min_samples} values on a side): "
            + ", ".join(result.untested_features)
        )
    if result.message:  # which KS p-values are certified bounds (docs/drift.md)
        notes.append(result.message)
    return CompareReport(
        reference_path=reference_name,
        current_path=current_name,
        result=result,
        notes=tuple(notes),
        bad_values={"non_numeric": non_numeric, "infinite": infinite},
    )


def _history_columns(
    history: Table, names: list[str], reference_rows: int, notes: list[str]
) -> np.ndarray:
    """The history's columns of ``names``, ±inf as missing, for the autocorrelation times."""
    missing = [name for name in names if name not in history.numeric]
    if missing:
        raise InvalidInputError(f"{history.label} has no numeric column {', '.join(missing)}")
    if not history_is_used(history.rows, reference_rows):
        raise InvalidInputError(
            f"{history.label} has {history.rows} rows; it needs at least as many as the "
            f"reference ({reference_rows}) to estimate dependence better than it"
        )
    wanted = set(names)
    notes.extend(_stray_note(history, item) for item in history.stray if item.column in wanted)
    columns = history.columns(names)
    columns[~np.isfinite(columns)] = np.nan
    notes.append(f"autocorrelation times from the {history.rows} rows of {history.label}")
    return columns


def _stray_cells(
    reference: Table, current: Table, names: list[str], notes: list[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """The stray text cells of the compared columns, per side, said in the notes too.

    Where the first one is counts file lines (``first_line``) or table rows (``first_row``).
    """
    wanted = set(names)
    found = {}
    for side, table in (("reference", reference), ("current", current)):
        cells = [item for item in table.stray if item.column in wanted]
        found[side] = {
            item.column: {"count": item.count, f"first_{item.unit}": item.first} for item in cells
        }
        notes.extend(_stray_note(table, item) for item in cells)
    return found


def _stray_note(table: Table, item: StrayCells) -> str:
    return (
        f"{table.label}: column {item.column} has {item.count} non-numeric cell(s), the "
        f"first on {item.unit} {item.first} ({item.first_value!r}); tested on its numbers"
    )


def _infinities_out(columns: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """Count +inf and -inf per feature and turn them into missing values, in place."""
    infinite = np.isinf(columns)
    if not infinite.any():  # the usual case: one pass instead of four over a large sample
        return {}
    positive, negative = infinite & (columns > 0), infinite & (columns < 0)
    counts = {}
    for row in np.flatnonzero(positive.any(axis=1) | negative.any(axis=1)):
        counts[names[row]] = {
            "+inf": int(positive[row].sum()),
            "-inf": int(negative[row].sum()),
        }
    columns[positive | negative] = np.nan
    return counts


def _note_infinities(infinite: dict[str, dict[str, dict[str, int]]], notes: list[str]) -> None:
    for side, counts in infinite.items():
        for name, signs in counts.items():
            notes.append(
                f"{name}: {signs['+inf']} +inf and {signs['-inf']} -inf in the {side} data, "
                "left out of the KS test and the PSI bins"
            )


def _choose_features(
    reference: Table, current: Table, wanted: list[str] | None
) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    if wanted is not None:
        for table in (reference, current):
            missing = [name for name in wanted if name not in table.numeric]
            absent = [name for name in missing if name not in table.non_numeric]
            if absent:
                raise InvalidInputError(f"{table.label} has no column {', '.join(absent)}")
            if missing:
                raise InvalidInputError(
                    f"column(s) {', '.join(missing)} of {table.label} are not numeric"
                )
        return wanted, notes
    ignored = sorted(set(reference.non_numeric) | set(current.non_numeric))
    if ignored:
        notes.append(f"non-numeric columns ignored: {', '.join(ignored)}")
    current_numeric = set(current.numeric)
    shared = [name for name in reference.numeric if name in current_numeric]
    shared_set = set(shared)
    only_reference = [name for name in reference.numeric if name not in shared_set]
    only_current = [name for name in current.numeric if name not in shared_set]
    only_reference = [name for name in only_reference if name not in ignored]
    only_current = [name for name in only_current if name not in ignored]
    if only_reference:
        notes.append(f"only in the reference, ignored: {', '.join(only_reference)}")
    if only_current:
        notes.append(f"only in the current data, ignored: {', '.join(only_current)}")
    if not shared:
        raise InvalidInputError(
            f"{reference.label} and {current.label} have no numeric column in common"
        )
    return shared, notes
