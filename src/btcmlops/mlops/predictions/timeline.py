"""Predictions over time for charts: one per hour, with rolling realised and estimated accuracy."""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from btcmlops.clock import Clock
from btcmlops.db.models import SHADOW_SOURCE, PredictionLog
from btcmlops.db.store import Store
from btcmlops.mlops.predictions.results import TimelinePoint
from btcmlops.modeling.evaluation import CALIBRATION_BINS, wilson_interval

MAX_POINTS = 5_000


def prediction_timeline(
    store: Store,
    clock: Clock,
    feature_set: str,
    model_type: str,
    *,
    days: float = 30,
    window: int = 48,
) -> list[TimelinePoint]:
    """One point per predicted hour (the hourly job's prediction, else the newest API one).

    ``rolling_accuracy`` (with its Wilson 95% band) is over the last ``window`` resolved
    points. ``estimated_accuracy`` is what the model itself expected over the same points,
    without their outcomes: each point's confidence, recalibrated by the accuracy the model
    really had in the same P(up) bin on the outcomes *before* the window (when that bin has
    10 or more). It follows the realised line while the market behaves as before and parts
    from it under concept drift, which no label-free estimate can see.
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
            PredictionLog.source != SHADOW_SOURCE,
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
    points: list[TimelinePoint] = []
    recent: deque[tuple[bool, float, int]] = deque()
    seen = np.zeros(CALIBRATION_BINS)  # outcomes that left the window, per P(up) bin
    right_in_bin = np.zeros(CALIBRATION_BINS)
    for row in ordered:
        if row.outcome_status == "resolved":
            probability = float(row.probability_up)
            bin_index = min(int(probability * CALIBRATION_BINS), CALIBRATION_BINS - 1)
            recent.append((bool(row.prediction_correct), float(row.confidence), bin_index))
            if len(recent) > window:
                left_right, _, left_bin = recent.popleft()
                seen[left_bin] += 1
                right_in_bin[left_bin] += left_right
        point: TimelinePoint = {
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
            right = sum(1 for correct, _, _ in recent if correct)
            low, high = wilson_interval(right, len(recent))
            expected = [
                right_in_bin[b] / seen[b] if seen[b] >= 10 else confidence
                for _, confidence, b in recent
            ]
            point.update(
                rolling_accuracy=right / len(recent),
                rolling_low=low,
                rolling_high=high,
                estimated_accuracy=float(np.mean(expected)),
            )
        points.append(point)
    return points
