"""``/drift``: feature and model drift, the summary, history, distributions, the latest
stored check and the hourly sequential detector."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from btcmlops.api.schemas.common import (
    KS_PVALUE_ADJUSTED_EXACT,
    KS_PVALUE_EXACT,
    CheckStatus,
    IsoTime,
)
from btcmlops.severity import Severity


class LatestDriftCheckResponse(BaseModel):
    """``GET /drift/latest``: the newest stored drift summary of a pair and its two checks."""

    success: Literal[True] = True
    status: Literal["stored", "none"] = Field(
        description="`stored`, or `none` when the pair has no stored check yet (the scheduler "
        "stores one daily at 00:10 UTC)."
    )
    feature_set: str
    model_type: str
    checked_at: datetime | None = Field(description="When the stored check ran (UTC).")
    summary: dict[str, Any] | None = Field(
        description="The stored summary: the `summary` of `GET /drift/summary`."
    )
    features: dict[str, Any] | None = Field(
        description="The feature check stored with it: the `drift_analysis` of "
        "`GET /drift/features`."
    )
    model: dict[str, Any] | None = Field(
        description="The model check stored with it: the `drift_analysis` of `GET /drift/model`."
    )
    message: str | None = None


class SequentialWindow(BaseModel):
    start: datetime = Field(description="The first feature hour of the window (UTC).")
    end: datetime = Field(description="The hour after its last feature hour (exclusive).")


class SequentialEvidencePoint(BaseModel):
    hour: datetime = Field(description="The feature row's hour (UTC).")
    statistic: float = Field(
        description="The evidence after that row, as a share of its threshold (1 = alarm)."
    )
    alarm: bool = Field(description="The detector was in alarm after that row.")


class SequentialDriftResponse(BaseModel):
    """``GET /drift/sequential``: a feature set's hourly sequential drift detector, its state
    and its evidence hour by hour."""

    success: Literal[True] = True
    feature_set: str
    status: Literal["fitted", "not_fitted"]
    reason: str | None = Field(
        None, description="Why it is not fitted, e.g. how many days of feature rows it needs."
    )
    mtbf_days: float = Field(
        description="The mean time between false alarms its thresholds aim at, in days."
    )
    smoothing: float = Field(description="The EWMA weight of the newest hour.")
    fitted_at: datetime | None = None
    fit_reason: str | None = Field(None, description="Why it was (re)fitted.")
    reference: SequentialWindow | None = Field(
        None, description="The reference window its scores rank each hour against."
    )
    history: SequentialWindow | None = Field(
        None, description="The window before the reference its null scales come from."
    )
    last_hour: datetime | None = Field(None, description="The newest feature row it has seen.")
    alarm: bool = Field(description="In alarm; latched until the refit after a retraining.")
    alarm_at: datetime | None = Field(None, description="The feature hour the alarm went off.")
    change_at: datetime | None = Field(None, description="The estimated first changed hour.")
    statistic: float | None = Field(
        None, description="The latest evidence as a share of the threshold."
    )
    threshold: float = Field(1.0, description="The alarm level of `statistic`.")
    points: list[SequentialEvidencePoint] = Field(
        description="The evidence after each feature row of the last `days`, oldest first "
        "(every fit: the statistic restarts near 0 at a refit)."
    )


class DriftWindows(BaseModel):
    """The two windows of a check: reference, then current, each ``[start, end)``."""

    reference_start: IsoTime
    reference_end: IsoTime
    current_start: IsoTime
    current_end: IsoTime


class FeatureDriftRow(BaseModel):
    """The tests of one tested feature. Statistics are null where they are not finite."""

    feature: str
    ks_statistic: float | None
    ks_pvalue: float | None
    ks_pvalue_effective: float | None = Field(description="Corrected for autocorrelation.")
    ks_pvalue_adjusted: float | None = Field(description="Benjamini–Hochberg adjusted.")
    ks_pvalue_exact: bool = Field(description=KS_PVALUE_EXACT)
    ks_pvalue_adjusted_exact: bool = Field(description=KS_PVALUE_ADJUSTED_EXACT)
    psi: float | None
    psi_expected: float | None = Field(description="The PSI expected with no drift.")
    psi_noise_corrected: float | None = Field(description="PSI in excess of `psi_expected`.")
    drift_detected: bool
    level: Severity
    reference_mean: float | None
    current_mean: float | None
    reference_std: float | None
    current_std: float | None
    autocorrelation: float | None
    effective_reference_size: float | None
    effective_current_size: float | None


class DriftMethod(BaseModel):
    """How the feature check decided: the tests and the settings in force."""

    ks: str
    psi_bins: int
    alpha: float
    psi_effect_floor: float
    min_samples: int
    autocorrelation_from: str = Field(description="Where the dependence times came from.")
    autocorrelation_history_rows: int


class FeatureDriftAnalysis(BaseModel):
    status: CheckStatus
    feature_set: str
    reference_period_days: int | float  # an int default stays an int in the JSON
    current_period_days: int | float
    reference_samples: int
    current_samples: int
    features_tested: int
    significant_drift_count: int
    share_drifted: float
    drift_severity: Severity | None = Field(description="Null when the status is not success.")
    drift_results: list[FeatureDriftRow] = Field(description="Most drifted first.")
    top_features: list[str] = Field(description="Up to five drifted features.")
    message: str
    method: DriftMethod
    windows: DriftWindows
    timestamp: datetime


class FeatureDriftResponse(BaseModel):
    success: Literal[True] = True
    drift_analysis: FeatureDriftAnalysis


class AccuracyDrift(BaseModel):
    reference: float | None
    current: float | None
    drop: float | None = Field(description="reference - current, when both sides have enough.")
    drift_detected: bool
    p_value: float | None = Field(description="One-sided two-proportion test of the drop.")
    alpha: float
    reference_interval: list[float] | None = Field(description="Wilson 95% interval.")
    current_interval: list[float] | None


class ConfidenceDrift(BaseModel):
    reference_avg: float | None
    current_avg: float | None
    reference_calibration_gap: float | None = Field(
        description="Average confidence minus accuracy."
    )
    current_calibration_gap: float | None
    calibration_degradation: float | None


class CalibrationDrift(BaseModel):
    reference_ece: float | None
    current_ece: float | None
    reference_brier: float | None
    current_brier: float | None


class EstimatedAccuracy(BaseModel):
    """The expected accuracy of the current window's pending predictions."""

    value: float | None
    predictions: int
    note: str
    raw_confidence_estimate: float | None = None
    recalibrated_share: float | None = None


class ModelDriftAnalysis(BaseModel):
    status: CheckStatus
    feature_set: str
    model_type: str
    reference_period_days: int | float  # an int default stays an int in the JSON
    current_period_days: int | float
    reference_predictions: int
    current_predictions: int
    min_predictions: int
    windows: DriftWindows
    model_version: str | None = Field(description="The champion whose predictions are read.")
    timestamp: datetime
    window_note: str | None = Field(
        None, description="Present when the windows were cut at the champion's takeover."
    )
    message: str | None = Field(None, description="Present when there is not enough data.")
    accuracy: AccuracyDrift
    confidence: ConfidenceDrift
    calibration: CalibrationDrift
    estimated_accuracy: EstimatedAccuracy
    drift_severity: Severity | None


class ModelDriftResponse(BaseModel):
    success: Literal[True] = True
    drift_analysis: ModelDriftAnalysis


class FeatureDriftHeadline(BaseModel):
    status: CheckStatus
    drift_severity: Severity | None
    significant_drift_count: int
    features_tested: int
    share_drifted: float
    top_features: list[str]
    reference_samples: int
    current_samples: int


class ModelDriftHeadline(BaseModel):
    status: CheckStatus
    drift_severity: Severity | None
    accuracy_drop: float | None
    reference_accuracy: float | None
    current_accuracy: float | None
    p_value: float | None
    estimated_accuracy: float | None


class DriftSummary(BaseModel):
    feature_set: str
    model_type: str
    status: CheckStatus
    overall_severity: Severity | None = Field(
        description="The worst severity of the checks that had enough data."
    )
    reference_period_days: int | float  # an int default stays an int in the JSON
    current_period_days: int | float
    feature_drift: FeatureDriftHeadline
    model_drift: ModelDriftHeadline
    recommendations: list[str]
    timestamp: datetime


class DriftSummaryResponse(BaseModel):
    success: Literal[True] = True
    summary: DriftSummary


class StoredDriftCheck(BaseModel):
    """The headline numbers of one stored check; those its kind has no part in are null."""

    id: int
    checked_at: IsoTime
    kind: Literal["feature", "model", "summary"]
    feature_set: str
    model_type: str | None
    status: str
    severity: str | None
    significant_drift_count: int | None
    features_tested: int | None
    share_drifted: float | None
    accuracy_drop: float | None


class DriftHistoryResponse(BaseModel):
    success: Literal[True] = True
    count: int
    reports: list[StoredDriftCheck] = Field(description="Oldest first.")
    severity_order: list[Severity] = Field(
        description="Severities, lowest first; not enough data is a status, never in it."
    )


class DriftDistributionResponse(BaseModel):
    """Shares of the reference and current windows over the same bins, for one feature."""

    success: Literal[True] = True
    feature: str
    feature_set: str
    edges: list[float]
    reference_share: list[float]
    current_share: list[float]
    reference_samples: int
    current_samples: int
    windows: DriftWindows
