"""The documents the prediction side answers with: a stored prediction, the ``/predict``
answer, accuracy, totals, the timeline, the writer's health and the rows it stores.

Their keys are the API's contract (``api.schemas.predictions`` declares the same fields);
the functions that build them live next door (``records``, ``serving``, ``queries``,
``timeline``, ``writer``, ``spool``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NotRequired, TypedDict

Direction = Literal["up", "down"]
OutcomeStatus = Literal["pending", "resolved", "expired"]


class PredictionRecord(TypedDict):
    """A stored prediction in the API's field names."""

    id: int
    feature_set: str
    model_type: str
    model_version: str
    prediction: int
    direction: Direction
    probability_down: float | None
    probability_up: float | None
    confidence: float | None
    actual_direction: int | None
    prediction_correct: bool | None
    outcome_status: OutcomeStatus
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
    """A stored prediction with the feature values it was made from."""

    features: dict[str, float | None]
    features_sha256: str | None


# ---------------------------------------------------------------- the /predict answer
class ProbabilityPair(TypedDict):
    down: float
    up: float


class PredictionBody(TypedDict):
    direction: Direction
    direction_numeric: int
    probability: ProbabilityPair
    confidence: float
    accuracy: float | None
    accuracy_period: str
    imputed_features: int
    feature_hour: datetime
    target_hour: datetime
    bitcoin_price: float


class ModelInfo(TypedDict):
    feature_set: str
    model_type: str
    model_version: str
    features_used: int


class ServingPerformance(TypedDict):
    response_time_ms: float
    cached_features: bool


class PredictAnswer(TypedDict):
    """A logged prediction in the ``/predict`` contract's shape, with its id."""

    success: Literal[True]
    prediction: PredictionBody
    model_info: ModelInfo
    performance: ServingPerformance
    timestamp: datetime
    prediction_id: int


# ---------------------------------------------------------------- the read side
class AccuracyStats(TypedDict):
    """Realised accuracy of one (feature set, model type) over a period.

    ``message`` is present only when no prediction of the period has an outcome yet.
    """

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
    message: NotRequired[str]


class PredictionStatistics(TypedDict):
    total_predictions: int
    predictions_with_outcomes: int
    correct_predictions: int
    overall_accuracy: float | None
    vader_predictions: int
    finbert_predictions: int
    avg_response_time_ms: float | None
    pending_outcomes: int
    expired_outcomes: int


class TimelinePoint(TypedDict):
    """One prediction of an hour, with the rolling accuracy of the resolved ones up to it."""

    feature_hour: datetime
    target_hour: datetime
    prediction: int
    probability_up: float | None
    outcome_status: OutcomeStatus
    actual_direction: int | None
    correct: bool | None
    model_version: str
    rolling_accuracy: float | None
    rolling_low: float | None
    rolling_high: float | None
    estimated_accuracy: float | None


# ---------------------------------------------------------------- the writer
class LoggerHealthDict(TypedDict):
    state: Literal["ok", "spooling", "stopped"]
    queue_depth: int
    queue_capacity: int
    written: int
    spooled: int
    replayed: int
    lost: int
    spool_bytes: int
    last_error: str | None


# A prediction log row as the writer stores it: its columns and ``features`` (the snapshot's
# values). Read back from a spool file its keys are whatever the spooling process wrote.
LogRow = dict[str, object]
# One line of a spool file: a log row with its datetimes as ISO strings.
SpoolRecord = dict[str, object]
