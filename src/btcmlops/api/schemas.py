"""Response shapes. Field names are those of the first release's API, kept for its clients;
fields are only added."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from btcmlops.modeling.model_types import MODEL_TYPES
from btcmlops.severity import Severity

FeatureSetName = Literal["vader", "finbert"]
ModelTypeName = Literal[MODEL_TYPES]  # type: ignore[valid-type]


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: str = Field(description="The kind of error, e.g. NotFoundError.")
    detail: str = Field(description="What was wrong and what to do about it.")


class Probability(BaseModel):
    down: float
    up: float


class PredictionBody(BaseModel):
    direction: Literal["up", "down"]
    direction_numeric: Literal[0, 1]
    probability: Probability
    confidence: float
    accuracy: float | None = Field(description="Realised accuracy over the last 7 days.")
    accuracy_period: str
    imputed_features: int = Field(
        description="Features missing from the row, filled by the imputer."
    )
    feature_hour: datetime = Field(description="UTC start of the bar whose features were used.")
    target_hour: datetime = Field(description="UTC start of the bar being predicted.")
    bitcoin_price: float = Field(description="Close of the feature hour's bar.")


class ModelInfo(BaseModel):
    feature_set: str
    model_type: str
    model_version: str
    features_used: int


class Performance(BaseModel):
    response_time_ms: float
    cached_features: bool


class PredictResponse(BaseModel):
    success: Literal[True] = True
    prediction: PredictionBody
    model_info: ModelInfo
    performance: Performance
    timestamp: datetime
    prediction_id: int


class PredictFailure(BaseModel):
    success: Literal[False] = False
    error: str
    detail: str | None = None


class BothPerformance(BaseModel):
    total_response_time_ms: float


class PredictBothResponse(BaseModel):
    success: bool
    vader: PredictResponse | PredictFailure
    finbert: PredictResponse | PredictFailure
    agreement: bool | None = Field(description="Both sets predict the same direction.")
    performance: BothPerformance


class RootResponse(BaseModel):
    name: str
    version: str
    status: str
    endpoints: dict[str, str]


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    loaded_models: int
    components: dict[str, Any]


class ModelSummary(BaseModel):
    model_type: str
    versions: list[str]
    latest: str | None
    champion: str | None
    champion_kind: Literal["learned", "baseline"] | None = None
    fallback: str | None = Field(
        None, description="In words, when the champion is a declared naive-baseline fallback."
    )
    shadows: list[str] = Field(
        default_factory=list, description="Versions predicting in shadow beside the champion."
    )


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
    decisions: list[dict[str, Any]]


class ShadowsResponse(BaseModel):
    success: Literal[True] = True
    pairs: list[PairShadows]


class ModelsResponse(BaseModel):
    success: Literal[True] = True
    available_models: dict[str, list[ModelSummary]]


class ReloadedModelInfo(BaseModel):
    feature_set: str
    model_type: str
    version: str
    loaded_at: datetime


class ReloadResponse(BaseModel):
    success: Literal[True] = True
    message: str
    model_info: ReloadedModelInfo


class ChampionMove(BaseModel):
    feature_set: str
    model_type: str
    version: str
    previous_version: str | None
    action: str
    reason: str


class ChampionMoveResponse(BaseModel):
    success: Literal[True] = True
    message: str
    champion: ChampionMove


class PredictionRecord(BaseModel):
    id: int
    feature_set: str
    model_type: str
    model_version: str
    prediction: int
    direction: str
    probability_down: float | None
    probability_up: float | None
    confidence: float | None
    actual_direction: int | None
    prediction_correct: bool | None
    outcome_status: str
    bitcoin_price_at_prediction: float | None
    bitcoin_price_1h_later: float | None
    price_change_pct: float | None
    response_time_ms: float | None
    cached_features: bool
    imputed_features: int
    source: str
    feature_hour: datetime
    target_hour: datetime
    predicted_at: datetime
    outcome_recorded_at: datetime | None


class PredictionDetail(PredictionRecord):
    features: dict[str, float | None]


class RecentPredictionsResponse(BaseModel):
    success: Literal[True] = True
    count: int
    predictions: list[PredictionRecord]
    filters: dict[str, Any]


class AccuracyStats(BaseModel):
    feature_set: str
    model_type: str
    period_days: float
    total_predictions: int
    correct_predictions: int
    incorrect_predictions: int
    accuracy: float | None
    up_predictions: int
    up_correct: int
    up_accuracy: float | None
    down_predictions: int
    down_correct: int
    down_accuracy: float | None
    avg_confidence: float | None
    avg_confidence_when_correct: float | None
    avg_confidence_when_incorrect: float | None
    pending_predictions: int
    accuracy_interval_95: list[float] | None
    message: str | None = None


class AccuracyResponse(BaseModel):
    success: Literal[True] = True
    accuracy_stats: AccuracyStats


class Statistics(BaseModel):
    total_predictions: int
    predictions_with_outcomes: int
    correct_predictions: int
    overall_accuracy: float | None
    vader_predictions: int
    finbert_predictions: int
    avg_response_time_ms: float | None
    pending_outcomes: int
    expired_outcomes: int


class StatisticsResponse(BaseModel):
    success: Literal[True] = True
    statistics: Statistics


class PredictionResponse(BaseModel):
    success: Literal[True] = True
    prediction: PredictionDetail


class OutcomeRequest(BaseModel):
    actual_direction: Literal[0, 1] = Field(description="1 if the price went up, else 0.")
    bitcoin_price_1h_later: float | None = Field(default=None, gt=0, lt=1e9)


class OutcomeResponse(BaseModel):
    success: Literal[True] = True
    prediction: PredictionRecord


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


# ``POST /drift/compare``: two tables in, the document ``btcmlops drift compare --json`` prints.

DriftTable = dict[str, list[float | str | None]]


def _example_values(
    seed: int, rows: int, shift: float = 0.0, words: dict[int, str] | None = None
) -> list[float | str | None]:
    draw = random.Random(seed)
    values: list[float | str | None] = [round(draw.gauss(shift, 1.0), 2) for _ in range(rows)]
    for row, word in (words or {}).items():
        values[row] = word
    return values


# 60 reference rows: fewer (50 for independent rows) cannot support a dependence estimate.
_COMPARE_EXAMPLE = {
    "reference": {
        "return_1h": _example_values(1, 60),
        "volume_z": _example_values(2, 60, words={2: "n/a", 6: "inf"}),
    },
    "current": {
        "return_1h": _example_values(3, 30, shift=1.0),
        "volume_z": _example_values(4, 30),
    },
}


class DriftCompareRequest(BaseModel):
    """Two tables of features, each column's values in time order.

    Values are numbers, null (missing) or strings: "inf", "-inf", "infinity" and "nan" (any
    case) are read as those floats; any other string in a mostly numeric column is a stray
    cell, read as missing and reported in `bad_values`. Options left out take the server's
    settings (`BTCMLOPS_DRIFT_*`).
    """

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [_COMPARE_EXAMPLE]}}

    reference: DriftTable = Field(description="Column name → values of the reference window.")
    current: DriftTable = Field(description="Column name → values of the window to check.")
    features: list[str] | None = Field(
        default=None, min_length=1, description="Columns to compare (default: shared numeric)."
    )
    history: DriftTable | None = Field(
        default=None,
        description="Earlier rows of the same features (at least as many as the reference), "
        "to estimate how dependent the rows are when the reference is too short for it.",
    )
    bins: int | None = Field(default=None, ge=2, le=100, description="PSI bins.")
    alpha: float | None = Field(default=None, gt=0, lt=1, description="FDR level of the KS tests.")
    psi_effect_floor: float | None = Field(
        default=None, ge=0, description="PSI a drifting feature must reach."
    )
    min_samples: int | None = Field(default=None, ge=2, description="Rows needed in each table.")


class StrayCellCount(BaseModel):
    count: int = Field(description="Strings in the column that are not a number.")
    first_row: int = Field(description="0-based row of the first of them.")


class InfinityCount(BaseModel):
    positive: int = Field(alias="+inf")
    negative: int = Field(alias="-inf")


class StrayCellsBySide(BaseModel):
    reference: dict[str, StrayCellCount]
    current: dict[str, StrayCellCount]


class InfinitiesBySide(BaseModel):
    reference: dict[str, InfinityCount]
    current: dict[str, InfinityCount]


class CompareBadValues(BaseModel):
    """Per feature: stray strings (read as missing) and ±inf (kept out of KS and PSI)."""

    non_numeric: StrayCellsBySide
    infinite: InfinitiesBySide


class ComparedFeature(BaseModel):
    """The tests of one feature; statistics are null when it was not tested."""

    feature: str
    tested: bool
    reference_count: int
    current_count: int
    ks_statistic: float | None
    ks_pvalue: float | None
    ks_pvalue_effective: float | None = Field(description="Corrected for autocorrelation.")
    ks_pvalue_adjusted: float | None = Field(description="Benjamini–Hochberg adjusted.")
    ks_significant: bool
    psi: float | None
    psi_expected: float | None = Field(description="The PSI expected with no drift.")
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


class DriftCompareResponse(BaseModel):
    success: Literal[True] = True
    reference: str
    current: str
    drift: bool = Field(description="True when the severity is above none.")
    notes: list[str] = Field(description="Columns left out, bad values, the history used.")
    bad_values: CompareBadValues
    status: Literal["success", "insufficient_data"]
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
    drift_results: list[ComparedFeature] = Field(description="Most drifted first.")
