"""Feature drift between a reference and a current matrix of features: per-feature tests,
the drift rule and the severity of a check.

Pure functions on arrays and DataFrames; where the data come from (the store, files) and
where results go is the caller's business. ``docs/drift.md`` states every rule used here.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> reference = rng.normal(size=(168, 3))
>>> current = rng.normal(size=(48, 3))
>>> current[:, 0] += 2.0
>>> result = compare_features(reference, current, ["shifted", "calm", "quiet"])
>>> result.status, result.drift_severity, result.drift_results[0].feature
('success', 'high', 'shifted')
>>> result.drift_results[0].drift_detected, result.drift_results[1].drift_detected
(True, False)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift import statistics as st
from btcmlops.severity import Severity
from btcmlops.severity import severity_at_least as severity_at_least  # re-exported

Status = Literal["success", "insufficient_data"]

REFERENCE_FORMAT = "btcmlops.drift-reference/3"
# A dependence time τ̂ is taken as supported by the rows it was estimated from when they
# number at least this many times τ̂ (docs/drift.md, "Short references are refused").
ROWS_PER_DEPENDENCE_TIME = 50
DependenceSource = Literal["reference", "history", "given"]


@dataclass(frozen=True)
class SeverityRule:
    """When a check is medium or high (see :func:`drift_severity`).

    PSI thresholds are the contract's (0.1-0.2 low, 0.2-0.3 medium, above 0.3 high), applied to
    the PSI in excess of its no-drift expectation.
    """

    medium_psi: float = 0.2
    high_psi: float = 0.3
    medium_share: float = 0.05
    high_share: float = 0.10


@dataclass(frozen=True)
class FeatureDrift:
    """The tests of one feature. p-values and PSI are NaN when the feature was not tested."""

    feature: str
    tested: bool
    reference_count: int
    current_count: int
    ks_statistic: float
    ks_pvalue: float
    ks_pvalue_effective: float
    ks_pvalue_adjusted: float
    ks_significant: bool
    psi: float
    psi_expected: float
    psi_excess: float
    drift_detected: bool
    level: Severity
    reference_mean: float
    current_mean: float
    reference_std: float
    current_std: float
    autocorrelation: float
    autocorrelation_time: float
    effective_reference_size: float
    effective_current_size: float
    bins_used: int

    def to_dict(self) -> dict[str, Any]:
        return {key: _plain(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class FeatureDriftResult:
    """One feature-drift check: its status, severity and the per-feature results.

    ``drift_results`` is sorted with the most drifted features first. ``drift_severity`` is
    None when the status is ``insufficient_data``: too little data is not a severity.
    """

    status: Status
    reference_samples: int
    current_samples: int
    features_tested: int
    significant_drift_count: int
    ks_significant_count: int
    drift_severity: Severity | None
    drift_results: tuple[FeatureDrift, ...]
    alpha: float
    psi_effect_floor: float
    bins: int
    min_samples: int
    message: str = ""
    untested_features: tuple[str, ...] = field(default=())

    @property
    def drifted_features(self) -> list[str]:
        return [item.feature for item in self.drift_results if item.drift_detected]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reference_samples": self.reference_samples,
            "current_samples": self.current_samples,
            "features_tested": self.features_tested,
            "significant_drift_count": self.significant_drift_count,
            "ks_significant_count": self.ks_significant_count,
            "drift_severity": self.drift_severity,
            "alpha": self.alpha,
            "psi_effect_floor": self.psi_effect_floor,
            "bins": self.bins,
            "min_samples": self.min_samples,
            "message": self.message,
            "untested_features": list(self.untested_features),
            "drift_results": [item.to_dict() for item in self.drift_results],
        }


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
        times, strict = st.dependence_times(columns, (st.GATE_Z, st.REFUSAL_GATE_Z))
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
        :func:`compare_features`). ``autocorrelation_time`` gives the dependence times as
        known values, never refused (``Dependence.given``). ``sample`` is these columns
        already sorted (:class:`~statistics.SortedSample`), for callers that sorted them for
        something else first; the columns then stay untouched.
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

    def to_dict(self) -> dict[str, Any]:
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


def compare_features(
    reference: pd.DataFrame | np.ndarray | DriftReference,
    current: pd.DataFrame | np.ndarray,
    feature_names: Sequence[str] | None = None,
    *,
    bins: int | None = None,
    alpha: float = 0.05,
    psi_effect_floor: float = 0.1,
    min_samples: int = 24,
    severity_rule: SeverityRule = SeverityRule(),
    history: pd.DataFrame | np.ndarray | None = None,
) -> FeatureDriftResult:
    """Compare the current window of features with the reference window.

    Parameters
    ----------
    reference, current
        Rows in time order (a DataFrame, or an array of rows x features). The reference may
        also be a :class:`DriftReference` computed earlier; it then fixes the features and
        the bins. Missing values (NaN) are dropped per feature.
    feature_names
        The features to compare (DataFrame columns, or names of the array columns).
        Default: the DataFrame's columns / the reference's features.
    bins
        PSI bins (reference quantiles); default 10.
    alpha
        Level of the Benjamini–Hochberg procedure across the tested features.
    psi_effect_floor
        A feature drifts only if its PSI also reaches this.
    min_samples
        Rows needed in each window (and observed values per feature) to test at all.
    history
        Optional rows in time order from before the reference window, same features. When it
        holds at least as many rows as the reference, each feature's dependence time
        (and so its effective sample sizes) is estimated from it instead of from the
        reference: over one week of hourly rows the memory of a day-scale feature is
        underestimated several-fold, and a swing in it then looks like drift. Being older
        than the reference, it is also untouched by a change that has just begun, which
        would otherwise inflate the estimate (a level shift looks like long memory) exactly
        when the change should be found. Not allowed with a prepared :class:`DriftReference`.

    Returns
    -------
    FeatureDriftResult
        Status ``insufficient_data`` (and no severity) when a window has fewer than
        ``min_samples`` rows, or when the rows the dependence was estimated from are too
        few to support it (:meth:`DriftReference.refusal` says why and what would help).
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be between 0 and 1, got {alpha}")
    if min_samples < 2:
        raise InvalidInputError(f"min_samples must be at least 2, got {min_samples}")
    if isinstance(reference, DriftReference):
        if bins is not None and bins != reference.bins:
            raise InvalidInputError(
                f"the drift reference was built with {reference.bins} bins, not {bins}"
            )
        if feature_names is not None and tuple(feature_names) != reference.features:
            raise InvalidInputError(
                "feature_names must match the drift reference's features "
                f"({', '.join(reference.features)})"
            )
        if history is not None:
            raise InvalidInputError("history cannot be combined with a prepared DriftReference")
        prepared = reference
        names = list(reference.features)
        _, current_columns = feature_columns(current, names)
    else:
        names, reference_columns = feature_columns(reference, feature_names)
        _, current_columns = feature_columns(current, names)
        prepared = None
        if reference_columns.shape[1] >= min_samples and current_columns.shape[1] >= min_samples:
            history_columns = None
            if history is not None:
                _, history_columns = feature_columns(history, names)
                if not history_is_used(history_columns.shape[1], reference_columns.shape[1]):
                    history_columns = None
            dependence = Dependence.for_check(reference_columns, history_columns)
            prepared = DriftReference.from_columns(
                reference_columns,
                names,
                bins=10 if bins is None else bins,
                dependence=dependence,
            )
        reference_rows = reference_columns.shape[1]
    rows_reference = prepared.rows if prepared is not None else reference_rows
    return compare_prepared(
        prepared,
        current_columns,
        names,
        reference_rows=rows_reference,
        alpha=alpha,
        psi_effect_floor=psi_effect_floor,
        min_samples=min_samples,
        bins=prepared.bins if prepared is not None else (10 if bins is None else bins),
        severity_rule=severity_rule,
    )


def history_is_used(history_rows: int, reference_rows: int) -> bool:
    """Whether :func:`compare_features` estimates dependence from the history."""
    return history_rows >= reference_rows


def compare_prepared(
    reference: DriftReference | None,
    current_columns: np.ndarray,
    names: Sequence[str],
    *,
    reference_rows: int,
    alpha: float,
    psi_effect_floor: float,
    min_samples: int,
    bins: int,
    severity_rule: SeverityRule = SeverityRule(),
    current_sample: st.SortedSample | None = None,
    ks: Callable[[], st.KSResult] | None = None,
    current_moments: st.ColumnMoments | None = None,
) -> FeatureDriftResult:
    """The check on a prepared reference and a feature-major (features x rows) current array.

    ``reference`` may be None only when a window is below ``min_samples`` rows. Callers
    that already sorted the current columns, or started the KS test
    (:func:`~statistics.start_ks_two_sample`), pass ``current_sample`` and ``ks``; callers
    that sorted them in place pass their ``current_moments`` from before (the columns are
    then read for their shape only).
    """
    current_rows = int(current_columns.shape[1])
    settings = {
        "alpha": alpha,
        "psi_effect_floor": psi_effect_floor,
        "bins": bins,
        "min_samples": min_samples,
    }
    if reference is None or reference_rows < min_samples or current_rows < min_samples:
        message = (
            f"need at least {min_samples} rows in each window, got {reference_rows} "
            f"reference and {current_rows} current rows"
        )
        return _insufficient_data(message, reference_rows, current_rows, settings)
    if reference.dependence_unsupported:
        return _insufficient_data(reference.refusal(), reference_rows, current_rows, settings)

    current = current_sample or st.SortedSample.from_columns(current_columns)
    # the exact p-values run on the worker threads while PSI and the moments are computed
    pending_ks = ks if ks is not None else st.start_ks_two_sample(reference.sample, current)
    if current_moments is None:
        current_moments = st.column_moments(current_columns)
    tested = (reference.sample.counts >= min_samples) & (current.counts >= min_samples)
    n_eff = st.effective_sample_size(reference.sample.counts, reference.autocorrelation_time)
    m_eff = st.effective_sample_size(current.counts, reference.autocorrelation_time)

    current_shares = st.bin_shares(current, reference.edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        psi_values = st.psi(reference.shares, current_shares)
        psi_expected = st.psi_expected_under_no_drift(
            np.nan_to_num(reference.shares), current.counts, n_eff, m_eff
        )
    psi_values = np.where(tested, psi_values, np.nan)
    psi_expected = np.where(tested, psi_expected, np.nan)
    psi_excess = np.maximum(psi_values - psi_expected, 0.0)

    ks = pending_ks()
    autocorrelated = np.nan_to_num(reference.autocorrelation_time, nan=1.0) > 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        corrected = st.ks_pvalue_effective(ks.statistic, n_eff, m_eff)
    p_effective = np.where(autocorrelated, np.fmax(ks.pvalue, corrected), ks.pvalue)
    p_effective = np.where(tested, p_effective, np.nan)
    p_adjusted = st.benjamini_hochberg(p_effective)

    significant = tested & (np.nan_to_num(p_adjusted, nan=1.0) < alpha)
    detected = significant & (np.nan_to_num(psi_values, nan=0.0) >= psi_effect_floor)
    levels = feature_levels(significant, detected, psi_excess, severity_rule)
    severity = drift_severity(int(tested.sum()), significant, detected, psi_excess, severity_rule)

    current_means, current_stds = current_moments.means, current_moments.stds
    bins_used = np.count_nonzero(np.nan_to_num(reference.shares) > 0, axis=1)
    # Each field as a list of Python values (tolist() converts a whole array at once).
    fields = {
        "feature": [str(name) for name in names],
        "tested": tested.tolist(),
        "reference_count": ks.reference_count.tolist(),
        "current_count": ks.current_count.tolist(),
        "ks_statistic": ks.statistic.tolist(),
        "ks_pvalue": ks.pvalue.tolist(),
        "ks_pvalue_effective": p_effective.tolist(),
        "ks_pvalue_adjusted": p_adjusted.tolist(),
        "ks_significant": significant.tolist(),
        "psi": psi_values.tolist(),
        "psi_expected": psi_expected.tolist(),
        "psi_excess": psi_excess.tolist(),
        "drift_detected": detected.tolist(),
        "level": levels,
        "reference_mean": reference.means.tolist(),
        "current_mean": current_means.tolist(),
        "reference_std": reference.stds.tolist(),
        "current_std": current_stds.tolist(),
        "autocorrelation": reference.autocorrelation.tolist(),
        "autocorrelation_time": reference.autocorrelation_time.tolist(),
        "effective_reference_size": n_eff.tolist(),
        "effective_current_size": m_eff.tolist(),
        "bins_used": bins_used.tolist(),
    }
    features = [
        FeatureDrift(**dict(zip(fields, row, strict=True)))
        for row in zip(*fields.values(), strict=True)
    ]
    features.sort(key=_rank_key)
    return FeatureDriftResult(
        status="success",
        reference_samples=reference_rows,
        current_samples=current_rows,
        features_tested=int(tested.sum()),
        significant_drift_count=int(detected.sum()),
        ks_significant_count=int(significant.sum()),
        drift_severity=severity,
        drift_results=tuple(features),
        untested_features=tuple(str(names[j]) for j in np.flatnonzero(~tested)),
        **settings,
    )


def _insufficient_data(
    message: str, reference_rows: int, current_rows: int, settings: dict[str, Any]
) -> FeatureDriftResult:
    return FeatureDriftResult(
        status="insufficient_data",
        reference_samples=reference_rows,
        current_samples=current_rows,
        features_tested=0,
        significant_drift_count=0,
        ks_significant_count=0,
        drift_severity=None,
        drift_results=(),
        message=message,
        **settings,
    )


def drift_severity(
    features_tested: int,
    significant: np.ndarray,
    detected: np.ndarray,
    psi_excess: np.ndarray,
    rule: SeverityRule = SeverityRule(),
) -> Severity:
    """The severity of one check.

    - ``none``: no feature's BH-adjusted KS p-value is below alpha.
    - ``high``: at least max(1, ceil(10% of the tested features)) drifted features have a
      PSI exceeding its no-drift expectation by more than 0.3.
    - ``medium``: likewise with 5% of the tested features and an excess above 0.2.
    - ``low``: otherwise, i.e. some feature changed significantly but the drift is small or
      confined to few features.

    PSI excess (PSI minus its expectation under no drift at these sample sizes) is what
    keeps 24-row windows, whose PSI is large from sampling alone, from inflating severity.
    """
    if features_tested == 0 or not np.any(significant):
        return "none"
    excess = np.nan_to_num(psi_excess, nan=0.0)
    if np.count_nonzero(detected & (excess > rule.high_psi)) >= _needed(
        rule.high_share, features_tested
    ):
        return "high"
    if np.count_nonzero(detected & (excess > rule.medium_psi)) >= _needed(
        rule.medium_share, features_tested
    ):
        return "medium"
    return "low"


def feature_levels(
    significant: np.ndarray,
    detected: np.ndarray,
    psi_excess: np.ndarray,
    rule: SeverityRule = SeverityRule(),
) -> list[Severity]:
    """A word per feature: ``none`` unless significant; then by PSI excess if it drifted."""
    excess = np.nan_to_num(psi_excess, nan=0.0)
    levels: list[Severity] = []
    for is_significant, is_detected, value in zip(
        significant.tolist(), detected.tolist(), excess.tolist(), strict=True
    ):
        if not is_significant:
            levels.append("none")
        elif is_detected and value > rule.high_psi:
            levels.append("high")
        elif is_detected and value > rule.medium_psi:
            levels.append("medium")
        else:
            levels.append("low")
    return levels


def feature_columns(
    data: pd.DataFrame | np.ndarray, feature_names: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """Feature names and a feature-major float array (features x rows) from rows of data."""
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns] if feature_names is None else list(feature_names)
        missing = [name for name in names if name not in data.columns]
        if missing:
            raise InvalidInputError(f"missing feature column(s): {', '.join(missing)}")
        frame = data[names]
        # one dtype per column from ``dtypes``: ``frame[name]`` would build a Series each
        non_numeric = [
            name
            for name, dtype in zip(names, frame.dtypes, strict=True)
            if not pd.api.types.is_numeric_dtype(dtype)
        ]
        if non_numeric:
            raise InvalidInputError(f"feature column(s) not numeric: {', '.join(non_numeric)}")
        matrix = frame.to_numpy(dtype=float, na_value=np.nan)
        return names, np.ascontiguousarray(matrix.T)
    matrix = np.asarray(data, dtype=float)
    if matrix.ndim != 2:
        raise InvalidInputError(
            f"expected a 2-D array of rows x features, got {matrix.ndim} dimension(s)"
        )
    if feature_names is None:
        names = [f"feature_{j}" for j in range(matrix.shape[1])]
    else:
        names = [str(name) for name in feature_names]
    if len(names) != matrix.shape[1]:
        raise InvalidInputError(
            f"{len(names)} feature names for an array with {matrix.shape[1]} columns"
        )
    return names, np.ascontiguousarray(matrix.T)


def _per_feature(values: np.ndarray, features: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size != features:
        raise InvalidInputError(
            f"{name} needs one value per feature ({features}), got {array.size}"
        )
    return array


def _needed(share: float, features_tested: int) -> int:
    return max(1, math.ceil(share * features_tested - 1e-9))


def _rank_key(item: FeatureDrift) -> tuple[int, float, float, str]:
    """Drifted features first (largest PSI excess first), then significant, then by p-value."""
    if item.drift_detected:
        return (0, -item.psi_excess, item.ks_pvalue_effective, item.feature)
    group = 1 if item.ks_significant else 2 if item.tested else 3
    p = item.ks_pvalue_adjusted if item.tested else math.inf
    return (group, p, item.ks_pvalue_effective if item.tested else math.inf, item.feature)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
