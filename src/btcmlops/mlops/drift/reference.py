"""The reference window of a drift check, prepared once: ``DriftReference`` (sorted values,
PSI bins, moments, dependence times) and ``Dependence`` (each feature's dependence time and
whether the rows it came from support it), with the JSON form stored beside a model version.

Separate from ``feature_drift`` because a reference outlives a check: it is built from
training data or files, serialised, and reused by many checks against different windows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.columns import feature_columns
from btcmlops.mlops.drift.results import DriftReferenceDict

REFERENCE_FORMAT = "btcmlops.drift-reference/3"
# A dependence time τ̂ is taken as supported by the rows it was estimated from when they
# number at least this many times τ̂ (docs/drift.md, "Short references are refused").
ROWS_PER_DEPENDENCE_TIME = 50
DependenceSource = Literal["reference", "history", "given"]


@dataclass(frozen=True)
class Dependence:
    """Each feature's dependence time, and how many rows it was estimated from and needs.

    ``times`` is :func:`~statistics.dependence_time` per feature; it sets the effective
    sample sizes. ``needs_rows`` is 50·max(1, τ̂) with τ̂ the largest dependence time at the
    stricter refusal gate (:data:`~statistics.REFUSAL_GATE_Z`): fewer rows than that cannot
    support the estimate (Geyer's estimator is biased low by about τ/n, and its lag cap
    limits it to about n/2), so a check that relies on the reference alone is refused
    (:meth:`DriftReference.refusal`).
    """

    times: np.ndarray
    rows: int
    needs_rows: int
    source: DependenceSource

    @classmethod
    def estimate(
        cls,
        columns: np.ndarray,
        source: DependenceSource = "reference",
        *,
        rows: int | None = None,
    ) -> Dependence:
        """From a feature-major (features x rows) array in time order.

        The estimate reads only the most recent :data:`~statistics.DEPENDENCE_ROWS` rows, so
        a caller may pass just those and say in ``rows`` how many the series has.
        """
        columns = np.asarray(columns, dtype=float)
        times, strict = st.dependence_times(
            columns, (st.GATE_Z, st.REFUSAL_GATE_Z), skew_adjusted=(True, False)
        )
        largest = max(1.0, float(np.max(strict, initial=1.0)))
        return cls(
            times=times,
            rows=int(columns.shape[1]) if rows is None else rows,
            needs_rows=math.ceil(ROWS_PER_DEPENDENCE_TIME * largest),
            source=source,
        )

    @classmethod
    def for_check(
        cls,
        reference_columns: np.ndarray,
        history_columns: np.ndarray | None,
        *,
        reference_rows: int | None = None,
    ) -> Dependence:
        """From the history when the check has one, else from the reference itself (of
        ``reference_rows`` rows when only its most recent ones are given, see
        :meth:`estimate`)."""
        if history_columns is None:
            return cls.estimate(reference_columns, rows=reference_rows)
        return cls.estimate(history_columns, "history")

    @classmethod
    def given(cls, times: np.ndarray, rows: int) -> Dependence:
        """Times the caller vouches for: never refused."""
        return cls(times=np.asarray(times, dtype=float), rows=rows, needs_rows=0, source="given")


@dataclass(frozen=True)
class DriftReference:
    """What a drift check needs from the reference window, computed once and reusable.

    Sorted values (for exact KS), PSI bin edges and shares, means, standard deviations, the
    lag-1 autocorrelation and each feature's dependence time (field
    ``autocorrelation_time``, see :func:`~statistics.dependence_time`; it sets the effective
    sample sizes), with the rows it was estimated from (``dependence_rows``: the reference's
    own or a history's) and the rows it needs (``dependence_needs_rows``). Serialises to
    JSON, so it can be stored with a model version and a check no longer needs the training
    data.
    """

    features: tuple[str, ...]
    bins: int
    rows: int
    sample: st.SortedSample
    edges: np.ndarray
    shares: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    autocorrelation: np.ndarray
    autocorrelation_time: np.ndarray
    dependence_rows: int
    dependence_needs_rows: int
    dependence_source: DependenceSource

    @property
    def dependence_unsupported(self) -> bool:
        """True when the dependence times came from the reference's own rows and they are
        too few to support them (see :class:`Dependence`); a check is then refused.

        A history is used as given, however long: the service estimates from 21 days (504
        rows), which the 50·τ̂ rule calls short for any AR(0.9)-like feature, while the
        measured false-alarm rates with it stay below 1% (docs/drift.md).
        """
        return (
            self.dependence_source == "reference"
            and self.dependence_rows < self.dependence_needs_rows
        )

    def refusal(self) -> str:
        """The one-line reason a check on this reference is refused ("" when it is not)."""
        if not self.dependence_unsupported:
            return ""
        tau = self.dependence_needs_rows / ROWS_PER_DEPENDENCE_TIME
        needs = (
            f"needs about {self.dependence_needs_rows} for τ≈{tau:.0f}"
            if tau > 1.0
            else f"needs at least {ROWS_PER_DEPENDENCE_TIME}"
        )
        return (
            f"the reference has {self.dependence_rows} rows, too few to estimate its "
            f"dependence ({needs}); give a longer reference or a history of earlier rows"
        )

    @classmethod
    def from_data(
        cls,
        data: pd.DataFrame | np.ndarray,
        feature_names: Sequence[str] | None = None,
        *,
        bins: int = 10,
    ) -> DriftReference:
        """From rows in time order (DataFrame or (rows x features) array)."""
        names, columns = feature_columns(data, feature_names)
        return cls.from_columns(columns, names, bins=bins)

    @classmethod
    def from_columns(
        cls,
        columns: np.ndarray,
        feature_names: Sequence[str],
        *,
        bins: int = 10,
        copy: bool = True,
        dependence: Dependence | None = None,
        autocorrelation_time: np.ndarray | None = None,
        sample: st.SortedSample | None = None,
    ) -> DriftReference:
        """From a feature-major (features x rows) array whose rows are in time order.

        With ``copy=False`` the array is sorted in place (for callers that built it).
        ``dependence`` replaces the estimate from these rows, for callers that hold a longer
        history of the same features (``Dependence.estimate(history, "history")``, see
        :func:`~feature_drift.compare_features`). ``autocorrelation_time`` gives the
        dependence times as known values, never refused (``Dependence.given``). ``sample`` is
        these columns already sorted (:class:`~statistics.SortedSample`), for callers that
        sorted them for something else first; the columns then stay untouched.
        """
        columns = np.asarray(columns, dtype=float)
        names = tuple(str(name) for name in feature_names)
        if columns.ndim != 2 or columns.shape[0] != len(names):
            raise InvalidInputError(
                f"expected {len(names)} feature rows, got an array of shape {columns.shape}"
            )
        if bins < 2:
            raise InvalidInputError(f"PSI needs at least 2 bins, got {bins}")
        moments = st.column_moments(columns)
        rows = int(columns.shape[1])
        if dependence is None and autocorrelation_time is not None:
            dependence = Dependence.given(autocorrelation_time, rows)
        if dependence is None:
            dependence = Dependence.estimate(columns)  # before the columns are sorted
        if sample is None:
            sample = st.SortedSample.from_columns(columns, copy=copy)
        elif sample.values.shape != columns.shape:
            raise InvalidInputError(
                f"the sorted sample has shape {sample.values.shape}, the columns {columns.shape}"
            )
        return cls.from_sorted(sample, names, moments=moments, dependence=dependence, bins=bins)

    @classmethod
    def from_sorted(
        cls,
        sample: st.SortedSample,
        feature_names: Sequence[str],
        *,
        moments: st.ColumnMoments,
        dependence: Dependence,
        bins: int = 10,
    ) -> DriftReference:
        """From the reference already sorted, with the moments and the dependence taken from
        its rows in time order before that (for callers that sort a large reference in place
        instead of holding a second copy of it, see ``compare``)."""
        names = tuple(str(name) for name in feature_names)
        if sample.values.ndim != 2 or sample.values.shape[0] != len(names):
            raise InvalidInputError(
                f"expected {len(names)} feature rows, got a sample of shape {sample.values.shape}"
            )
        if bins < 2:
            raise InvalidInputError(f"PSI needs at least 2 bins, got {bins}")
        tau = _per_feature(dependence.times, len(names), "autocorrelation_time")
        edges = st.quantile_edges(sample, bins)
        shares = st.bin_shares(sample, edges)
        return cls(
            features=names,
            bins=bins,
            rows=int(sample.values.shape[1]),
            sample=sample,
            edges=edges,
            shares=shares,
            means=moments.means,
            stds=moments.stds,
            autocorrelation=moments.autocorrelation,
            autocorrelation_time=tau,
            dependence_rows=dependence.rows,
            dependence_needs_rows=dependence.needs_rows,
            dependence_source=dependence.source,
        )

    def to_dict(self) -> DriftReferenceDict:
        values = [
            [_encode_float(v) for v in row[:count].tolist()]
            for row, count in zip(self.sample.values, self.sample.counts.tolist(), strict=True)
        ]
        return {
            "format": REFERENCE_FORMAT,
            "features": list(self.features),
            "bins": self.bins,
            "rows": self.rows,
            "sorted_values": values,
            "edges": _encode_matrix(self.edges),
            "shares": _encode_matrix(self.shares),
            "means": _encode_list(self.means),
            "stds": _encode_list(self.stds),
            "autocorrelation": _encode_list(self.autocorrelation),
            "autocorrelation_time": _encode_list(self.autocorrelation_time),
            "dependence_rows": self.dependence_rows,
            "dependence_needs_rows": self.dependence_needs_rows,
            "dependence_source": self.dependence_source,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> DriftReference:
        found = payload.get("format")
        if isinstance(found, str) and found.startswith("btcmlops.drift-reference/"):
            if found != REFERENCE_FORMAT:
                raise InvalidInputError(
                    f"drift reference format {found!r} is out of date (expected "
                    f"{REFERENCE_FORMAT!r}): build it again from the reference data"
                )
        else:
            raise InvalidInputError(
                f"not a drift reference: format {found!r}, expected {REFERENCE_FORMAT!r}"
            )
        source = payload.get("dependence_source")
        if source not in ("reference", "history", "given"):
            raise InvalidInputError(f"drift reference is malformed: dependence_source {source!r}")
        try:
            rows = [[_decode_float(v) for v in row] for row in payload["sorted_values"]]
            width = max((len(row) for row in rows), default=0)
            values = np.full((len(rows), width), np.nan)
            for index, row in enumerate(rows):
                values[index, : len(row)] = row
            counts = np.array([len(row) for row in rows], dtype=np.int64)
            return cls(
                features=tuple(payload["features"]),
                bins=int(payload["bins"]),
                rows=int(payload["rows"]),
                sample=st.SortedSample(values=values, counts=counts),
                edges=_decode_matrix(payload["edges"]),
                shares=_decode_matrix(payload["shares"]),
                means=_decode_list(payload["means"]),
                stds=_decode_list(payload["stds"]),
                autocorrelation=_decode_list(payload["autocorrelation"]),
                autocorrelation_time=_decode_list(payload["autocorrelation_time"]),
                dependence_rows=int(payload["dependence_rows"]),
                dependence_needs_rows=int(payload["dependence_needs_rows"]),
                dependence_source=source,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"drift reference is malformed: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> DriftReference:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"drift reference is not valid JSON: {exc}") from exc
        return cls.from_dict(payload)


def _per_feature(values: np.ndarray, features: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size != features:
        raise InvalidInputError(
            f"{name} needs one value per feature ({features}), got {array.size}"
        )
    return array


def _encode_float(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _decode_float(value: float | str | None) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return float(value)


def _encode_list(values: np.ndarray) -> list[float | str | None]:
    return [_encode_float(v) for v in np.asarray(values, dtype=float).tolist()]


def _decode_list(values: list[Any]) -> np.ndarray:
    return np.array([_decode_float(v) for v in values], dtype=float)


def _encode_matrix(values: np.ndarray) -> list[list[float | str | None]]:
    return [_encode_list(row) for row in np.asarray(values, dtype=float)]


def _decode_matrix(rows: list[list[Any]]) -> np.ndarray:
    return np.array([[_decode_float(v) for v in row] for row in rows], dtype=float)
