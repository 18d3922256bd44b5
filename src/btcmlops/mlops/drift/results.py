"""The documents the drift checks answer with and store in ``drift_reports``.

``monitor`` builds the feature check, the model check, their summary, a feature's
distribution and the history rows; ``feature_drift``, ``compare`` and ``reference`` turn
their results into plain documents for files and the CLI. The API declares the same fields
(``api.schemas.drift``); times are datetimes in a live answer and ISO text once stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from btcmlops.severity import Severity

CheckStatus = Literal["success", "insufficient_data"]
ReportKind = Literal["feature", "model", "summary"]
# A float of a reference file: a number, "inf"/"-inf"/"nan" as text, or null.
EncodedFloat = float | str | None


class DriftWindows(TypedDict):
    """The two windows of a check, each ``[start, end)``, as ISO text."""

    reference_start: str
    reference_end: str
    current_start: str
    current_end: str


# ------------------------------------------------------------------ the feature check
class FeatureDriftRow(TypedDict):
    """The tests of one tested feature, as the feature check shows them.

    ``ks_pvalue_exact`` is False where ``ks_pvalue`` (and the effective p-value derived from
    it) is a certified upper bound, ``ks_pvalue_adjusted_exact`` where the adjusted one is.
    Reports stored before the fields existed lack them; readers show their p-values
    unmarked, as they were shown then.
    """

    feature: str
    ks_statistic: float | None
    ks_pvalue: float | None
    ks_pvalue_effective: float | None
    ks_pvalue_adjusted: float | None
    ks_pvalue_exact: bool
    ks_pvalue_adjusted_exact: bool
    psi: float | None
    psi_expected: float | None
    psi_noise_corrected: float | None
    drift_detected: bool
    level: Severity
    reference_mean: float | None
    current_mean: float | None
    reference_std: float | None
    current_std: float | None
    autocorrelation: float | None
    effective_reference_size: float | None
    effective_current_size: float | None


class DriftMethod(TypedDict):
    ks: str
    psi_bins: int
    alpha: float
    psi_effect_floor: float
    min_samples: int
    autocorrelation_from: str
    autocorrelation_history_rows: int


class FeatureDriftReport(TypedDict):
    """``detect_feature_drift``: KS and PSI per monitored feature, most drifted first."""

    status: CheckStatus
    feature_set: str
    reference_period_days: float
    current_period_days: float
    reference_samples: int
    current_samples: int
    features_tested: int
    significant_drift_count: int
    share_drifted: float
    drift_severity: Severity | None
    drift_results: list[FeatureDriftRow]
    top_features: list[str]
    message: str
    method: DriftMethod
    windows: DriftWindows
    timestamp: datetime


class FeatureDistribution(TypedDict):
    """Shares of the reference and current windows over the same bins, for one feature."""

    feature: str
    feature_set: str
    edges: list[float]
    reference_share: list[float]
    current_share: list[float]
    reference_samples: int
    current_samples: int
    windows: DriftWindows


# ------------------------------------------------------------------ the model check
class WindowStats(TypedDict):
    """One window's resolved predictions: counts, accuracy, confidence, ECE and Brier;
    ``bins`` maps a P(up) bin to its (predictions, correct)."""

    n: int
    correct: int
    accuracy: float | None
    avg_confidence: float | None
    ece: float | None
    brier: float | None
    bins: dict[int, tuple[int, int]]


class AccuracyDrift(TypedDict):
    reference: float | None
    current: float | None
    drop: float | None
    drift_detected: bool
    p_value: float | None
    alpha: float
    reference_interval: list[float] | None
    current_interval: list[float] | None


class ConfidenceDrift(TypedDict):
    reference_avg: float | None
    current_avg: float | None
    reference_calibration_gap: float | None
    current_calibration_gap: float | None
    calibration_degradation: float | None


class CalibrationDrift(TypedDict):
    reference_ece: float | None
    current_ece: float | None
    reference_brier: float | None
    current_brier: float | None


class EstimatedAccuracy(TypedDict):
    """The expected accuracy of pending predictions; the last two are absent without any."""

    value: float | None
    predictions: int
    note: str
    raw_confidence_estimate: NotRequired[float]
    recalibrated_share: NotRequired[float]


class ModelDriftReport(TypedDict):
    """``detect_model_drift``: the champion's accuracy and calibration, reference vs current.

    ``window_note`` is present when the windows were cut at the champion's takeover,
    ``message`` when there is not enough data.
    """

    status: CheckStatus
    feature_set: str
    model_type: str
    reference_period_days: float
    current_period_days: float
    reference_predictions: int
    current_predictions: int
    min_predictions: int
    windows: DriftWindows
    model_version: str | None
    timestamp: datetime
    window_note: NotRequired[str]
    message: NotRequired[str]
    accuracy: AccuracyDrift
    confidence: ConfidenceDrift
    calibration: CalibrationDrift
    estimated_accuracy: EstimatedAccuracy
    drift_severity: Severity | None


# ------------------------------------------------------------------ the summary
class FeatureDriftHeadline(TypedDict):
    status: CheckStatus
    drift_severity: Severity | None
    significant_drift_count: int
    features_tested: int
    share_drifted: float
    top_features: list[str]
    reference_samples: int
    current_samples: int


class ModelDriftHeadline(TypedDict):
    status: CheckStatus
    drift_severity: Severity | None
    accuracy_drop: float | None
    reference_accuracy: float | None
    current_accuracy: float | None
    p_value: float | None
    estimated_accuracy: float | None


class DriftSummaryReport(TypedDict):
    """``get_drift_summary``: both checks' headlines, the overall severity, what to do."""

    feature_set: str
    model_type: str
    status: CheckStatus
    overall_severity: Severity | None
    reference_period_days: float
    current_period_days: float
    feature_drift: FeatureDriftHeadline
    model_drift: ModelDriftHeadline
    recommendations: list[str]
    timestamp: datetime


class StoredDriftCheck(TypedDict):
    """One stored check's headline numbers; those its kind has no part in are null."""

    id: int
    checked_at: str
    kind: ReportKind
    feature_set: str
    model_type: str | None
    status: str
    severity: str | None
    significant_drift_count: int | None
    features_tested: int | None
    share_drifted: float | None
    accuracy_drop: float | None


# ------------------------------------------------------------------ pure results as documents
class FeatureDriftDict(TypedDict):
    """:class:`~btcmlops.mlops.drift.feature_drift.FeatureDrift` with non-finite numbers as
    null."""

    feature: str
    tested: bool
    reference_count: int
    current_count: int
    ks_statistic: float | None
    ks_pvalue: float | None
    ks_pvalue_effective: float | None
    ks_pvalue_adjusted: float | None
    ks_pvalue_exact: bool
    ks_pvalue_adjusted_exact: bool
    ks_significant: bool
    psi: float | None
    psi_expected: float | None
    psi_excess: float | None
    drift_detected: bool
    level: Severity
    reference_mean: float | None
    current_mean: float | None
    reference_std: float | None
    current_std: float | None
    autocorrelation: float | None
    autocorrelation_time: float | None
    effective_reference_size: float | None
    effective_current_size: float | None
    bins_used: int


class FeatureDriftResultDict(TypedDict):
    status: CheckStatus
    reference_samples: int
    current_samples: int
    features_tested: int
    significant_drift_count: int
    ks_significant_count: int
    drift_severity: Severity | None
    alpha: float
    psi_effect_floor: float
    bins: int
    min_samples: int
    message: str
    untested_features: list[str]
    drift_results: list[FeatureDriftDict]


# per side ("reference", "current", "history"), per column: counts of the values left out
BadValueCounts = dict[str, dict[str, dict[str, int]]]


class BadValues(TypedDict, total=False):
    non_numeric: BadValueCounts
    infinite: BadValueCounts


class CompareReportDict(FeatureDriftResultDict):
    """A comparison of two datasets: which, whether they drifted, what was left out, and
    the feature-drift result's fields."""

    reference: str
    current: str
    drift: bool
    notes: list[str]
    bad_values: BadValues


class DriftReferenceDict(TypedDict):
    """A prepared reference as stored in a reference file (``format`` names the version)."""

    format: str
    features: list[str]
    bins: int
    rows: int
    sorted_values: list[list[EncodedFloat]]
    edges: list[list[EncodedFloat]]
    shares: list[list[EncodedFloat]]
    means: list[EncodedFloat]
    stds: list[EncodedFloat]
    autocorrelation: list[EncodedFloat]
    autocorrelation_time: list[EncodedFloat]
    dependence_rows: int
    dependence_needs_rows: int
    dependence_source: Literal["reference", "history", "given"]
