"""The documents of the retraining package: the decision and its checks, a retraining's
answer, recorded runs and checks, the shadows' evidence, and the statistics' records.

Their keys are the API's contract (``api.schemas.retraining`` declares the same fields) and
the store's (``retraining_runs``, ``retrain_checks``). An instant is a datetime in a live
answer and ISO text once stored (``Instant``). A run's evidence is one of the evidence
documents here, chosen by the kind of run (a retraining, a shadow's promotion, a fallback);
read back from the store it is a plain JSON object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from btcmlops.mlops.results import JsonObject
from btcmlops.severity import Severity

Instant = datetime | str
ShadowRole = Literal["previous_champion", "challenger"]


# ------------------------------------------------------------------ the statistics' records
class PairedCountsDict(TypedDict):
    hours: int
    actual_up: int
    challenger_correct: int
    champion_correct: int
    challenger_only: int
    champion_only: int
    challenger_predicted_up: int
    last_hour_correct: int
    challenger_log_loss_sum: float


class SequentialTestDict(TypedDict):
    """A mixture e-value test of discordant hours (rollback, fallback)."""

    wins: int
    losses: int
    e_value: float
    threshold: float
    alpha: float
    discordant: int
    rejects: bool


class TrialLookDict(TypedDict):
    """The group-sequential trial at one look (promotion)."""

    test: str
    wins: int
    losses: int
    discordant: int
    threshold: int
    look: int
    trial_looks: int
    alpha: float
    alpha_spent_by_now: float
    rejects: bool
    over: bool


class PromotionEvidence(TypedDict):
    """What a stored promotion decision keeps: hours, discordant counts, statistic, bar."""

    rule: str
    promote: bool
    hours: int
    conditions: dict[str, bool]
    failed: list[str]
    test: TrialLookDict
    counts: PairedCountsDict
    challenger_accuracy: float | None
    champion_accuracy: float | None
    majority_accuracy: float | None
    last_hour_accuracy: float | None
    challenger_log_loss: float | None
    base_rate_log_loss: float | None
    one_class_share: float | None


class OfflineEvidence(PromotionEvidence):
    """A retraining's evidence: the decision on its offline comparison hours."""

    offline: bool
    champion_version: str | None


class ShadowPromotionEvidence(PromotionEvidence):
    """A shadow's promotion: the decision on its offline and live hours."""

    offline_hours: int
    live_hours: int


class FallbackEvidence(TypedDict):
    rule: str
    since: list[str]
    hours: int
    baseline: str
    tests: dict[str, SequentialTestDict]


class ChallengerMetrics(TypedDict):
    """A model's scores on paired hours, in the retraining history's field names."""

    rows: int
    correct: int
    accuracy: float | None
    actual_up_rate: float | None
    predicted_up_rate: float | None
    log_loss: float | None


class ChampionMetrics(TypedDict):
    rows: int
    correct: int
    accuracy: float | None
    actual_up_rate: float | None


class LiveMetrics(TypedDict):
    """A champion's (or a naive baseline's) scores on its live hours."""

    rows: int
    accuracy: float
    actual_up_rate: float
    predicted_up_rate: float


# ------------------------------------------------------------------ the decision
class PerformanceCheck(TypedDict):
    """The champion's live accuracy against its baseline on hours it was not selected on;
    the last two keys are absent without a champion."""

    triggered: bool
    period_days: int
    threshold: float
    min_predictions: int
    live_accuracy: float | None
    live_predictions: int
    baseline_accuracy: float | None
    baseline_source: str | None
    drop: float | None
    p_value: float | None
    reason: str
    baseline_predictions: NotRequired[int]
    champion_version: NotRequired[str]


class SequentialCheck(TypedDict):
    """The hourly detector's state: ``statistic`` to ``fitted_at`` are present when it is
    fitted, ``error`` when it could not be read."""

    status: Literal["fitted", "not_fitted"]
    alarm: bool
    triggered: bool
    retrain_on_alarm: bool
    reason: str
    error: NotRequired[str]
    statistic: NotRequired[float | None]
    threshold: NotRequired[float]
    alarm_at: NotRequired[Instant | None]
    change_at: NotRequired[Instant | None]
    fitted_at: NotRequired[Instant | None]


class DriftCheck(TypedDict):
    """The daily drift summary's severity (and, under ``sequential``, the hourly detector);
    the summary's parts are absent when it could not be read."""

    triggered: bool
    threshold: Severity
    severity: Severity | None
    reason: str
    sequential: SequentialCheck
    error: NotRequired[str]
    feature_severity: NotRequired[Severity | None]
    model_severity: NotRequired[Severity | None]
    counts_model: NotRequired[bool]
    top_features: NotRequired[list[str]]


class ScheduleCheck(TypedDict):
    triggered: bool
    interval_days: float
    reason: str
    champion_age_days: NotRequired[float]
    champion_created_at: NotRequired[Instant]
    last_retraining_at: NotRequired[Instant | None]
    days_since_last_training: NotRequired[float]


class DataCheck(TypedDict):
    sufficient_data: bool
    sample_count: int
    min_required: int
    window_start: Instant
    window: str
    reason: str


class CooldownCheck(TypedDict):
    active: bool
    cooldown_hours: float
    last_run_at: Instant | None
    runs_against_champion: int
    reason: str
    hours_since_last_run: NotRequired[float]


class RetrainDecisionDict(TypedDict):
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


class RecordedRetrainCheck(RetrainDecisionDict):
    checked_at: str


class PairRetrainStatus(TypedDict):
    should_retrain: bool
    reasons: list[str]
    data_available: int
    data_required: int
    champion_version: str | None


class RetrainThresholds(TypedDict):
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


class RetrainStatus(TypedDict):
    """The ``/retrain/status`` answer: the decision per feature set plus the thresholds."""

    vader: PairRetrainStatus
    finbert: PairRetrainStatus
    thresholds: RetrainThresholds


class TrainingWindowDict(TypedDict):
    start: datetime
    why: str


# ------------------------------------------------------------------ a retraining's answer
class NewModel(TypedDict):
    test_accuracy: float | None
    validation_accuracy: float | None
    model_version: str
    test_interval_95: list[float | None]


class Comparison(TypedDict):
    new_is_better: bool
    new_accuracy: float | None
    current_accuracy: float | None
    accuracy_improvement: float | None
    new_log_loss: float | None
    current_log_loss: float | None
    current_version: str | None
    majority_accuracy: float | None
    last_hour_accuracy: float | None
    significance: JsonObject | None


class Deployment(TypedDict):
    deployed: bool
    reason: str
    shadow: NotRequired[bool]


class RetrainSamples(TypedDict):
    train: int
    validation: int
    test: int
    comparison: int


class RetrainOutcome(TypedDict):
    """A finished retraining (``training_duration_seconds`` is added when the job ends)."""

    success: Literal[True]
    job_id: str
    samples_used: int
    samples: RetrainSamples | None
    windows: JsonObject | None
    new_model: NewModel
    comparison: Comparison
    evidence: OfflineEvidence | JsonObject
    deployment: Deployment
    training_duration_seconds: NotRequired[float]


class RetrainFailure(TypedDict):
    """A retraining that failed (``job_id`` and timing are absent when it never started)."""

    success: Literal[False]
    error: str
    job_id: NotRequired[str]
    training_duration_seconds: NotRequired[float]
    deployment: NotRequired[Deployment]


RetrainResult = RetrainOutcome | RetrainFailure


class RetrainBoth(TypedDict):
    success: bool
    results: dict[str, RetrainResult]


# ------------------------------------------------------------------ recorded runs
class RetrainingRunRecord(TypedDict):
    """One recorded run: a retraining job, or a decision taken on shadow evidence."""

    job_id: str
    feature_set: str
    model_type: str
    trigger: str
    reasons: list[str]
    status: str
    decision: str | None
    decision_reason: str | None
    challenger_version: str | None
    champion_version: str | None
    challenger_metrics: JsonObject | None
    champion_metrics: JsonObject | None
    significance: JsonObject | None
    evidence: JsonObject | None
    windows: JsonObject | None
    samples: JsonObject | None
    started_at: str
    finished_at: str | None
    duration_seconds: float | None
    error: str | None


# ------------------------------------------------------------------ shadows and safeguards
class EvidencePoint(TypedDict):
    """A shadow's evidence at one look (``at`` is null for the offline hours)."""

    at: str | None
    hours: int
    statistic: float
    bar: float
    margin: float


class ShadowEvidenceDict(TypedDict):
    version: str
    role: ShadowRole
    since: str
    offline_hours: int
    live_hours: int
    scale: str
    statistic: float
    bar: float
    margin: float
    trial_over: bool
    decision: PromotionEvidence | None
    path: list[EvidencePoint]


class ShadowChampion(TypedDict):
    version: str
    kind: Literal["learned", "baseline"]
    baseline_rule: str | None
    reason: str


class ShadowReport(TypedDict):
    """A pair's champion, its shadows with their evidence, and the latest decisions."""

    feature_set: str
    model_type: str
    champion: ShadowChampion | None
    promotion_alpha: float
    rollback_alpha: float
    shadows: list[ShadowEvidenceDict]
    decisions: list[RetrainingRunRecord]


class ShadowReview(TypedDict):
    """The daily review: the promoted shadow (with why), or the shadows whose trial ended."""

    promoted: str | None
    retired: list[str]
    reason: NotRequired[str]
    evidence: NotRequired[PromotionEvidence]


class RollbackVerdict(TypedDict):
    """The rollback check of the newest deployment; the accuracies and the evidence are
    present once it is judged, ``reason`` when not judged or rolled back."""

    feature_set: str
    model_type: str
    champion_version: str
    previous_version: str
    outcomes: int
    window: int
    rolled_back: bool
    status: Literal["not_judged", "waiting", "judged"]
    reason: NotRequired[str]
    live_accuracy: NotRequired[float]
    previous_accuracy: NotRequired[float]
    evidence: NotRequired[SequentialTestDict]


class FallbackVerdictDict(TypedDict):
    feature_set: str
    model_type: str
    champion_version: str
    hours: int
    tests: dict[str, SequentialTestDict]
    fell_back_to: str | None
    fallback_version: str | None
    reason: str
