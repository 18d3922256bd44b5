"""``/predict`` and ``/predictions``: a prediction, the prediction log, its accuracy,
statistics and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


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


class PredictionFilters(BaseModel):
    """The query the listing answers."""

    feature_set: str | None
    model_type: str | None
    limit: int
    only_with_outcomes: bool


class RecentPredictionsResponse(BaseModel):
    success: Literal[True] = True
    count: int
    predictions: list[PredictionRecord]
    filters: PredictionFilters


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


class TimelinePoint(BaseModel):
    """One prediction of an hour, with the rolling accuracy of the resolved ones up to it."""

    feature_hour: datetime
    target_hour: datetime
    prediction: int
    probability_up: float | None
    outcome_status: str
    actual_direction: int | None
    correct: bool | None
    model_version: str
    rolling_accuracy: float | None = Field(description="Over the last `window` resolved.")
    rolling_low: float | None = Field(description="Wilson 95% interval of rolling_accuracy.")
    rolling_high: float | None
    estimated_accuracy: float | None = Field(
        description="Expected from the confidences, recalibrated on outcomes seen so far."
    )


class TimelineBaselines(BaseModel):
    """The champion's naive baselines' accuracy on its test window (null without one)."""

    majority_class: float | None
    last_hour: float | None


class TimelineResponse(BaseModel):
    success: Literal[True] = True
    feature_set: str
    model_type: str
    window: int
    points: list[TimelinePoint] = Field(description="One per hour, oldest first.")
    baselines: TimelineBaselines
