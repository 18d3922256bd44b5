"""Compare any two datasets (CSV or Parquet) with the feature-drift statistics.

This is what ``btcmlops drift compare`` runs and what ``bench/drift.py`` times: read both
files, pick the numeric columns they share (or the named ones), and run
:func:`~btcmlops.mlops.drift.feature_drift.compare_prepared`.

Dependence (each feature's autocorrelation time) is estimated from the reference's own
rows unless a ``history`` file (earlier rows of the same features, at least as many as the
reference) is given: the estimator's lag cap limits it to about a quarter of the rows, so on
a short reference of a persistent feature it comes out far too small and the check alarms
on noise (86 % of AR(0.95) checks at 24 × 24); a longer history fixes that.

Bad values are counted and said, never silently dropped or let into the statistics: stray
text cells in a numeric CSV column (read as missing, see ``files``) and ±infinity, which
is kept out of the KS test and of the PSI's quantile edges (an infinite edge made a
negative bin share). Both are reported per feature in ``bad_values`` and in the notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.feature_drift import (
    DriftReference,
    FeatureDriftResult,
    compare_prepared,
    history_is_used,
)
from btcmlops.mlops.drift.files import NumericTable, read_numeric_table
from btcmlops.mlops.drift.statistics import SortedSample, start_ks_two_sample


@dataclass(frozen=True)
class CompareReport:
    """The drift check of two files, with notes on the columns that were left out."""

    reference_path: str
    current_path: str
    result: FeatureDriftResult
    notes: tuple[str, ...]
    bad_values: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        """True when the check found drift of any severity (the CLI then exits with 1)."""
        return self.result.drift_severity not in (None, "none")

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference_path,
            "current": self.current_path,
            "drift": self.drift,
            "notes": list(self.notes),
            "bad_values": self.bad_values,
            **self.result.to_dict(),
        }


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
    numeric in) a file, no numeric column in common, fewer than ``min_samples`` rows, or a
    history without the features or shorter than the reference.
    """
    wanted = list(dict.fromkeys(features)) if features else None
    if features is not None and not wanted:
        raise InvalidInputError("--features names no feature")
    reference = read_numeric_table(Path(reference_path))
    current = read_numeric_table(Path(current_path))
    names, notes = _choose_features(reference, current, wanted)
    for table in (reference, current):
        if table.rows < min_samples:
            raise InvalidInputError(
                f"too few rows in {table.path}: {table.rows}, need at least {min_samples}"
            )
    reference_rows = reference.rows
    reference_columns, current_columns = reference.columns(names), current.columns(names)
    bad_values = _bad_values(reference, current, names, notes)
    bad_values["infinite"] = {
        "reference": _infinities_out(reference_columns, names),
        "current": _infinities_out(current_columns, names),
    }
    _note_infinities(bad_values["infinite"], notes)
    tau = _autocorrelation_times(reference_columns, names, history_path, notes)
    del reference, current  # release the Arrow tables before the statistics
    # Sorted copies first: the KS test starts on them (its exact p-values on the worker
    # threads) while the reference's moments, quantiles and PSI are computed.
    reference_sample = SortedSample.from_columns(reference_columns)
    current_sample = SortedSample.from_columns(current_columns)
    ks = start_ks_two_sample(reference_sample, current_sample)
    prepared = DriftReference.from_columns(
        reference_columns, names, bins=bins, sample=reference_sample, autocorrelation_time=tau
    )
    del reference_columns
    result = compare_prepared(
        prepared,
        current_columns,
        names,
        reference_rows=reference_rows,
        alpha=alpha,
        psi_effect_floor=psi_effect_floor,
        min_samples=min_samples,
        bins=bins,
        current_sample=current_sample,
        ks=ks,
    )
    if result.untested_features:
        notes.append(
            f"not tested (fewer than {min_samples} values on a side): "
            + ", ".join(result.untested_features)
        )
    return CompareReport(
        reference_path=str(reference_path),
        current_path=str(current_path),
        result=result,
        notes=tuple(notes),
        bad_values=bad_values,
    )


def _autocorrelation_times(
    reference_columns: np.ndarray,
    names: list[str],
    history_path: Path | str | None,
    notes: list[str],
) -> np.ndarray:
    """τ per feature: from the history file when given, else from the reference."""
    rows = reference_columns.shape[1]
    if history_path is not None:
        history = read_numeric_table(Path(history_path))
        missing = [name for name in names if name not in history.numeric]
        if missing:
            raise InvalidInputError(
                f"the history {history.path} has no numeric column {', '.join(missing)}"
            )
        if not history_is_used(history.rows, rows):
            raise InvalidInputError(
                f"the history {history.path} has {history.rows} rows; it needs at least as "
                f"many as the reference ({rows}) to estimate dependence better than it"
            )
        columns = history.columns(names)
        columns[~np.isfinite(columns)] = np.nan
        notes.append(f"autocorrelation times from the {history.rows} rows of {history.path}")
        return st.autocorrelation_time(columns)
    return st.autocorrelation_time(reference_columns)


def _bad_values(
    reference: NumericTable, current: NumericTable, names: list[str], notes: list[str]
) -> dict[str, Any]:
    """The stray text cells of the compared columns, per side, said in the notes too."""
    wanted = set(names)
    found: dict[str, Any] = {"non_numeric": {}}
    for side, table in (("reference", reference), ("current", current)):
        cells = [item for item in table.stray if item.column in wanted]
        found["non_numeric"][side] = {
            item.column: {"count": item.count, "first_line": item.first_line} for item in cells
        }
        notes.extend(
            f"{table.path}: column {item.column} has {item.count} non-numeric cell(s), the "
            f"first on line {item.first_line} ({item.first_value!r}); tested on its numbers"
            for item in cells
        )
    return found


def _infinities_out(columns: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """Count +inf and -inf per feature and turn them into missing values, in place."""
    positive, negative = np.isposinf(columns), np.isneginf(columns)
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
    reference: NumericTable, current: NumericTable, wanted: list[str] | None
) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    if wanted is not None:
        for table in (reference, current):
            missing = [name for name in wanted if name not in table.numeric]
            absent = [name for name in missing if name not in table.non_numeric]
            if absent:
                raise InvalidInputError(f"{table.path} has no column {', '.join(absent)}")
            if missing:
                raise InvalidInputError(
                    f"column(s) {', '.join(missing)} of {table.path} are not numeric"
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
            f"{reference.path} and {current.path} have no numeric column in common"
        )
    return shared, notes
