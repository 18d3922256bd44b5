"""Predictions over time for charts: one per hour, with rolling realised and estimated accuracy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from btcmlops.clock import Clock
from btcmlops.db.models import PredictionLog
from btcmlops.db.store import Store
from btcmlops.modeling.evaluation import wilson_interval

MAX_POINTS = 5_000


def prediction_timeline(
    store: Store,
    clock: Clock,
    feature_set: str,
    model_type: str,
    *,
    days: float = 30,
    window: int = 48,
) -> list[dict[str, Any]]:
    """One point per predicted hour (the hourly job's prediction, else the newest API one).

    ``rolling_accuracy`` (with its Wilson 95% band) is over the last ``window`` resolved
    points; ``estimated_accuracy`` is the mean confidence over the same points, what the model
    itself expected.
    """
    since = clock.now() - timedelta(days=days)
    query = (
        select(
            PredictionLog.feature_ts,
            PredictionLog.target_ts,
            PredictionLog.prediction,
            PredictionLog.probability_up,
            PredictionLog.confidence,
            PredictionLog.outcome_status,
            PredictionLog.actual_direction,
            PredictionLog.prediction_correct,
            PredictionLog.model_version,
            PredictionLog.source,
        )
        .where(
            PredictionLog.feature_set == feature_set,
            PredictionLog.model_type == model_type,
            PredictionLog.predicted_at >= since,
        )
        .order_by(PredictionLog.feature_ts.desc(), PredictionLog.predicted_at.desc())
        .limit(MAX_POINTS * 4)
    )
    with store.session() as session:
        rows = session.execute(query).all()
    by_hour: dict[Any, Any] = {}
    for row in rows:  # newest first: keep a scheduled one if the hour has it, else the newest
        kept = by_hour.get(row.feature_ts)
        if kept is None or (kept.source != "scheduled" and row.source == "scheduled"):
            by_hour[row.feature_ts] = row
    ordered = [by_hour[hour] for hour in sorted(by_hour)][-MAX_POINTS:]
    points, recent = [], []
    for row in ordered:
        if row.outcome_status == "resolved":
            recent.append((bool(row.prediction_correct), float(row.confidence)))
            recent = recent[-window:]
        point = {
            "feature_hour": row.feature_ts,
            "target_hour": row.target_ts,
            "prediction": row.prediction,
            "probability_up": row.probability_up,
            "outcome_status": row.outcome_status,
            "actual_direction": row.actual_direction,
            "correct": row.prediction_correct,
            "model_version": row.model_version,
            "rolling_accuracy": None,
            "rolling_low": None,
            "rolling_high": None,
            "estimated_accuracy": None,
        }
        if recent:
            right = sum(1 for correct, _ in recent if correct)
            low, high = wilson_interval(right, len(recent))
            point.update(
                rolling_accuracy=right / len(recent),
                rolling_low=low,
                rolling_high=high,
                estimated_accuracy=sum(confidence for _, confidence in recent) / len(recent),
            )
        points.append(point)
    return points
