"""Model drift: the champion's realised accuracy and calibration, reference vs current window.

Both windows hold one model version's served predictions (never a shadow's): the current
champion's. A reference window that reaches back before the champion took over starts at the
takeover instead (and says so), so a deployment never shows up as drift.

The accuracy drop is tested one-sided with a two-proportion test and shown with Wilson
intervals; calibration is the expected calibration error and the Brier score on P(up). The
accuracy of predictions whose outcomes are still pending is estimated from the model's own
probabilities, recalibrated on the reference window: an estimate that assumes no concept
drift. Where the windows come from and where the result is stored is ``monitor``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, case, func, select, true

from btcmlops.config import Settings
from btcmlops.db.models import SHADOW_SOURCE, ModelVersion, PredictionLog
from btcmlops.db.store import Store
from btcmlops.mlops.drift.results import (
    AccuracyDrift,
    CalibrationDrift,
    ConfidenceDrift,
    EstimatedAccuracy,
    WindowStats,
)
from btcmlops.mlops.retraining.queries import champion_since
from btcmlops.mlops.significance import two_proportion_test
from btcmlops.modeling.evaluation import CALIBRATION_BINS, wilson_interval
from btcmlops.severity import Severity

MEDIUM_DROP = 0.05
HIGH_DROP = 0.10


@dataclass(frozen=True)
class ModelDrift:
    """One model-drift check of a pair. ``drift_severity`` is ``None`` without enough data."""

    status: Literal["success", "insufficient_data"]
    model_version: str | None
    reference_predictions: int
    current_predictions: int
    min_predictions: int
    accuracy: AccuracyDrift
    confidence: ConfidenceDrift
    calibration: CalibrationDrift
    estimated_accuracy: EstimatedAccuracy
    drift_severity: Severity | None
    window_note: str | None = None
    message: str | None = None


def check_model_drift(
    store: Store,
    settings: Settings,
    feature_set: str,
    model_type: str,
    *,
    start: datetime,
    split: datetime,
    now: datetime,
) -> ModelDrift:
    """The champion's predictions of ``[start, split)`` against those of ``[split, now)``."""
    version, took_over = champion_of(store, feature_set, model_type)
    cut = took_over is not None and took_over > start
    reference_start = min(took_over, split) if cut and took_over else start
    reference = window_stats(store, feature_set, model_type, reference_start, split, version)
    current_start = max(split, took_over) if cut and took_over else split
    current = window_stats(store, feature_set, model_type, current_start, now, version)
    minimum = settings.model_drift_min_predictions
    enough = reference["n"] >= minimum and current["n"] >= minimum
    window_note = None
    if cut and took_over is not None:
        window_note = (
            f"windows cut to start at {took_over.isoformat()}, when {version} became the "
            "champion: both hold that one version's predictions"
        )
    accuracy: AccuracyDrift = {
        "reference": reference["accuracy"],
        "current": current["accuracy"],
        "drop": None,
        "drift_detected": False,
        "p_value": None,
        "alpha": settings.model_drift_alpha,
        "reference_interval": _interval(reference),
        "current_interval": _interval(current),
    }
    severity: Severity | None = None
    message = None
    if enough:
        test = two_proportion_test(
            reference["correct"], reference["n"], current["correct"], current["n"]
        )
        real = test.p_value < accuracy["alpha"] and test.difference > 0
        accuracy.update(drop=test.difference, p_value=test.p_value, drift_detected=real)
        severity = drop_severity(test.difference) if real else "none"
    else:
        message = (
            f"{reference['n']} reference and {current['n']} current predictions with outcomes; "
            f"{minimum} needed on each side"
        )
    return ModelDrift(
        status="success" if enough else "insufficient_data",
        model_version=version,
        reference_predictions=reference["n"],
        current_predictions=current["n"],
        min_predictions=minimum,
        accuracy=accuracy,
        confidence={
            "reference_avg": reference["avg_confidence"],
            "current_avg": current["avg_confidence"],
            # Seed field, kept for compatibility: average confidence minus accuracy (how far
            # the model is over-confident); degradation is its change from reference to now.
            "reference_calibration_gap": _gap(reference),
            "current_calibration_gap": _gap(current),
            "calibration_degradation": _difference(_gap(current), _gap(reference)),
        },
        calibration={
            "reference_ece": reference["ece"],
            "current_ece": current["ece"],
            "reference_brier": reference["brier"],
            "current_brier": current["brier"],
        },
        estimated_accuracy=estimated_accuracy(
            store, feature_set, model_type, split, now, reference, version
        ),
        drift_severity=severity,
        window_note=window_note,
        message=message,
    )


def champion_of(
    store: Store, feature_set: str, model_type: str
) -> tuple[str | None, datetime | None]:
    """The pair's champion version and when it took over (``None`` without one)."""
    with store.session() as session:
        version = session.scalar(
            select(ModelVersion.version).where(
                ModelVersion.feature_set == feature_set,
                ModelVersion.model_type == model_type,
                ModelVersion.status == "champion",
            )
        )
    if version is None:
        return None, None
    return version, champion_since(store, feature_set, model_type)


def window_stats(
    store: Store,
    feature_set: str,
    model_type: str,
    since: datetime,
    until: datetime,
    version: str | None,
) -> WindowStats:
    """Counts, accuracy, confidence, ECE and Brier of one window's resolved predictions."""
    where = and_(
        PredictionLog.feature_set == feature_set,
        PredictionLog.model_type == model_type,
        PredictionLog.outcome_status == "resolved",
        PredictionLog.predicted_at >= since,
        PredictionLog.predicted_at < until,
        PredictionLog.source != SHADOW_SOURCE,
        PredictionLog.model_version == version if version is not None else true(),
    )
    rows_in = _binned(where)
    p, actual = rows_in.c.probability_up, rows_in.c.actual_direction
    per_bin = select(
        rows_in.c.bin,
        func.count().label("n"),
        func.sum(case((rows_in.c.prediction_correct.is_(True), 1), else_=0)).label("correct"),
        func.sum(actual).label("ups"),
        func.sum(p).label("p_sum"),
        func.sum(rows_in.c.confidence).label("confidence_sum"),
        func.sum((p - actual) * (p - actual)).label("squared_error"),
    ).group_by(rows_in.c.bin)
    with store.session() as session:
        rows = session.execute(per_bin).all()
    n = sum(int(row.n) for row in rows)
    stats: WindowStats = {
        "n": n,
        "correct": sum(int(row.correct or 0) for row in rows),
        "accuracy": None,
        "avg_confidence": None,
        "ece": None,
        "brier": None,
        "bins": {int(row.bin): (int(row.n), int(row.correct or 0)) for row in rows},
    }
    if n:
        stats["accuracy"] = stats["correct"] / n
        stats["avg_confidence"] = sum(float(row.confidence_sum or 0) for row in rows) / n
        stats["brier"] = sum(float(row.squared_error or 0) for row in rows) / n
        # ECE = Σ_b |Σ y_b - Σ p_b| / n (the same definition as modeling.evaluation)
        stats["ece"] = sum(abs(float(row.ups or 0) - float(row.p_sum or 0)) for row in rows) / n
    return stats


def estimated_accuracy(
    store: Store,
    feature_set: str,
    model_type: str,
    since: datetime,
    until: datetime,
    reference: WindowStats,
    version: str | None = None,
) -> EstimatedAccuracy:
    """Expected accuracy of pending predictions from the model's own probabilities.

    Each pending prediction is expected to be right with its confidence, or, where the
    reference window has at least 10 resolved predictions in the same P(up) bin, with the
    accuracy the model really had in that bin (a reliability-curve recalibration). This
    assumes the relation between features and outcome has not changed (no concept drift):
    it can see a model becoming unsure, not a market that stopped following it.
    """
    rows_in = _binned(
        and_(
            PredictionLog.feature_set == feature_set,
            PredictionLog.model_type == model_type,
            PredictionLog.outcome_status == "pending",
            PredictionLog.predicted_at >= since,
            PredictionLog.predicted_at < until,
            PredictionLog.source != SHADOW_SOURCE,
            PredictionLog.model_version == version if version is not None else true(),
        )
    )
    query = select(
        rows_in.c.bin,
        func.count().label("n"),
        func.sum(rows_in.c.confidence).label("confidence_sum"),
    ).group_by(rows_in.c.bin)
    with store.session() as session:
        rows = session.execute(query).all()
    pending = sum(int(row.n) for row in rows)
    if not pending:
        return {"value": None, "predictions": 0, "note": "no pending predictions to estimate"}
    raw = sum(float(row.confidence_sum or 0) for row in rows) / pending
    expected, recalibrated = 0.0, 0
    for row in rows:
        seen, right = reference["bins"].get(int(row.bin), (0, 0))
        if seen >= 10:
            expected += int(row.n) * right / seen
            recalibrated += int(row.n)
        else:
            expected += float(row.confidence_sum or 0)
    return {
        "value": expected / pending,
        "raw_confidence_estimate": raw,
        "predictions": pending,
        "recalibrated_share": recalibrated / pending,
        "note": "estimate from the model's probabilities, recalibrated on the reference "
        "window; assumes no concept drift",
    }


def drop_severity(drop: float) -> Severity:
    """The severity of a significant accuracy drop: low, medium from 5 points, high from 10."""
    if drop >= HIGH_DROP:
        return "high"
    if drop >= MEDIUM_DROP:
        return "medium"
    return "low"


def _binned(where):  # type: ignore[no-untyped-def]
    """Predictions matching ``where`` with the equal-width bin of their P(up) as ``bin``.

    The bin is a CASE chain, not floor(), which SQLite lacks: [0, .1), ..., [.9, 1]. It is
    computed in a subquery so the outer GROUP BY names one column on every engine.
    """
    p = PredictionLog.probability_up
    whens = [(p < (index + 1) / CALIBRATION_BINS, index) for index in range(CALIBRATION_BINS - 1)]
    return (
        select(
            case(*whens, else_=CALIBRATION_BINS - 1).label("bin"),
            PredictionLog.probability_up,
            PredictionLog.actual_direction,
            PredictionLog.confidence,
            PredictionLog.prediction_correct,
        )
        .where(where)
        .subquery()
    )


def _interval(stats: WindowStats) -> list[float] | None:
    return list(wilson_interval(stats["correct"], stats["n"])) if stats["n"] else None


def _gap(stats: WindowStats) -> float | None:
    if stats["avg_confidence"] is None or stats["accuracy"] is None:
        return None
    return stats["avg_confidence"] - stats["accuracy"]


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
