"""``/retrain``: the decision, a retraining's outcome, runs, checks and shadows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from btcmlops.api.schemas.common import Instant, IsoTime
from btcmlops.severity import Severity

# ---------------------------------------------------------------- the decision (check, status)


class PerformanceCheck(BaseModel):
    """The champion's live accuracy against its baseline on hours it was not selected on."""

    triggered: bool
    period_days: int
    threshold: float = Field(description="The accuracy drop that triggers retraining.")
    min_predictions: int
    live_accuracy: float | None
    live_predictions: int
    baseline_accuracy: float | None
    baseline_source: str | None
    drop: float | None
    p_value: float | None
    reason: str
    baseline_predictions: int | None = None
    champion_version: str | None = None


class SequentialCheck(BaseModel):
    """The hourly sequential detector's state: ``statistic`` to ``fitted_at`` are present when
    it is fitted, ``error`` when it could not be read."""

    status: str
    alarm: bool
    triggered: bool
    retrain_on_alarm: bool
    reason: str
    error: str | None = None
    statistic: float | None = None
    threshold: float | None = None
    alarm_at: Instant | None = None
    change_at: Instant | None = None
    fitted_at: Instant | None = None


class DriftCheck(BaseModel):
    """The daily drift summary's severity (and, under ``sequential``, the hourly detector)."""

    triggered: bool
    threshold: Severity
    severity: Severity | None
    reason: str
    sequential: SequentialCheck
    error: str | None = None
    feature_severity: Severity | None = None
    model_severity: Severity | None = None
    counts_model: bool | None = None
    top_features: list[str] | None = None


class ScheduleCheck(BaseModel):
    """Due when neither the champion nor any retraining is younger than the interval."""

    triggered: bool
    interval_days: float
    reason: str
    champion_age_days: float | None = None
    champion_created_at: Instant | None = None
    last_retraining_at: Instant | None = None
    days_since_last_training: float | None = None


class DataCheck(BaseModel):
    sufficient_data: bool
    sample_count: int
    min_required: int
    window_start: Instant
    window: str = Field(description="The training window, in words.")
    reason: str


class CooldownCheck(BaseModel):
    active: bool
    cooldown_hours: float = Field(
        description="The cooldown in force: doubled for each unscheduled retraining after the "
        "first that met the current champion without replacing it (with RETRAIN_BACKOFF)."
    )
    last_run_at: Instant | None
    reason: str
    hours_since_last_run: float | None = None
    runs_against_champion: int = Field(
        default=0,
        description="Unscheduled training runs that met the current champion since it took over.",
    )


class RetrainDecision(BaseModel):
    """Every trigger and blocker of retraining a pair, with its numbers."""

    feature_set: str
    model_type: str
    should_retrain: bool
    reasons: list[str]
    triggers: list[str]
    blocked_by: list[str]
    champion_version: str | None
    performance_check: PerformanceCheck
    drift_check: DriftCheck
    schedule_check: ScheduleCheck
    data_check: DataCheck
    cooldown_check: CooldownCheck
    timestamp: Instant


class RetrainCheckResponse(BaseModel):
    success: Literal[True] = True
    decision: RetrainDecision


class RecordedRetrainCheck(RetrainDecision):
    checked_at: IsoTime


class RetrainChecksResponse(BaseModel):
    success: Literal[True] = True
    count: int
    checks: list[RecordedRetrainCheck] = Field(description="Newest first.")


class PairRetrainStatus(BaseModel):
    should_retrain: bool
    reasons: list[str]
    data_available: int
    data_required: int
    champion_version: str | None


class RetrainThresholds(BaseModel):
    accuracy_degradation: float
    drift_severity: Severity
    min_samples: int
    min_predictions: int
    interval_days: float
    cooldown_hours: float
    window_days: float
    promotion_alpha: float
    rollback_alpha: float
    shadow_max: int


class RetrainStatus(BaseModel):
    vader: PairRetrainStatus
    finbert: PairRetrainStatus
    thresholds: RetrainThresholds


class RetrainStatusResponse(BaseModel):
    success: Literal[True] = True
    status: RetrainStatus


# ------------------------------------------------------------ a retraining (execute, both)


class NewModel(BaseModel):
    test_accuracy: float | None
    validation_accuracy: float | None
    model_version: str
    test_interval_95: list[float | None]


class PairedSignificance(BaseModel):
    """The paired test of challenger against champion on the same hours."""

    test: str
    p_value: float | None
    only_champion_right: int
    only_challenger_right: int


class Comparison(BaseModel):
    new_is_better: bool
    new_accuracy: float | None
    current_accuracy: float | None
    accuracy_improvement: float | None
    new_log_loss: float | None
    current_log_loss: float | None
    current_version: str | None
    majority_accuracy: float | None
    last_hour_accuracy: float | None
    significance: PairedSignificance | None


class Deployment(BaseModel):
    deployed: bool
    reason: str
    shadow: bool | None = Field(None, description="Kept in shadow to gather live evidence.")


class ForecastMetrics(BaseModel):
    """How one forecast did on the comparison hours; null where a metric is undefined."""

    rows: int
    correct: int
    accuracy: float | None
    accuracy_ci_low: float | None
    accuracy_ci_high: float | None
    balanced_accuracy: float | None
    roc_auc: float | None
    log_loss: float | None
    brier_score: float | None
    expected_calibration_error: float | None
    actual_up_rate: float | None
    predicted_up_rate: float | None


class RetrainSamples(BaseModel):
    train: int
    validation: int
    test: int
    comparison: int = Field(description="Hours the challenger and the champion met on.")


# The promotion rule's evidence and the windows of a run are documents of the retraining
# package whose keys depend on the rule and on the kind of run (a retraining, a shadow's
# promotion, a rollback): they are passed through as they were recorded.
Evidence = dict[str, Any]
RunWindows = dict[str, Any]


class RetrainOutcome(BaseModel):
    """A finished retraining: the original contract's fields plus the evidence of the decision."""

    success: Literal[True] = True
    job_id: str
    samples_used: int
    samples: RetrainSamples
    windows: RunWindows
    new_model: NewModel
    comparison: Comparison
    evidence: Evidence
    deployment: Deployment
    training_duration_seconds: float


class RetrainFailure(BaseModel):
    """A retraining that failed (``job_id`` and timing are absent when it never started)."""

    success: Literal[False] = False
    job_id: str | None = None
    error: str
    training_duration_seconds: float | None = None
    deployment: Deployment | None = None


class RetrainStarted(BaseModel):
    """202: the job runs in the background; poll ``GET /retrain/jobs/{job_id}``."""

    success: Literal[True] = True
    job_id: str
    status: Literal["running"] = "running"
    message: str | None = None


class RetrainBothResponse(BaseModel):
    success: bool = Field(description="False if either feature set failed.")
    results: dict[str, RetrainOutcome | RetrainFailure] = Field(
        description="Per feature set (vader, finbert)."
    )


# ------------------------------------------------------------ recorded runs (jobs, history)


class RetrainingRun(BaseModel):
    """One recorded run: a retraining job, or a decision taken on shadow evidence."""

    job_id: str
    feature_set: str
    model_type: str
    trigger: str
    reasons: list[str]
    status: str = Field(description="running, succeeded or failed.")
    decision: str | None
    decision_reason: str | None
    challenger_version: str | None
    champion_version: str | None
    challenger_metrics: ForecastMetrics | None
    champion_metrics: ForecastMetrics | None
    significance: PairedSignificance | None
    evidence: Evidence | None
    windows: RunWindows | None
    samples: RetrainSamples | None
    started_at: IsoTime
    finished_at: IsoTime | None
    duration_seconds: float | None
    error: str | None


class RetrainJobResponse(BaseModel):
    success: Literal[True] = True
    job: RetrainingRun


class RetrainHistoryResponse(BaseModel):
    success: Literal[True] = True
    count: int
    runs: list[RetrainingRun] = Field(description="Newest first.")


# ------------------------------------------------------------------------------ shadows


class ShadowChampion(BaseModel):
    version: str
    kind: Literal["learned", "baseline"]
    baseline_rule: str | None
    reason: str


class ShadowEvidencePoint(BaseModel):
    at: str | None = Field(description="The look (a midnight); null for the offline hours.")
    hours: int
    statistic: float
    bar: float
    margin: float = Field(description="statistic - bar: at or above 0, promote (roll back).")


class ShadowEvidenceModel(BaseModel):
    version: str
    role: Literal["previous_champion", "challenger"]
    since: str
    offline_hours: int
    live_hours: int
    scale: str = Field(description="What statistic and bar measure, in words.")
    statistic: float
    bar: float
    margin: float
    trial_over: bool
    decision: dict[str, Any] | None
    path: list[ShadowEvidencePoint]


class PairShadows(BaseModel):
    feature_set: str
    model_type: str
    champion: ShadowChampion | None
    promotion_alpha: float
    rollback_alpha: float
    shadows: list[ShadowEvidenceModel]
    decisions: list[RetrainingRun] = Field(description="The latest decisions, newest first.")


class ShadowsResponse(BaseModel):
    success: Literal[True] = True
    pairs: list[PairShadows]
