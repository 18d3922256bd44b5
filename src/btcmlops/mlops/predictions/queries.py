"""The read side of the prediction log: one prediction, the newest ones, accuracy and totals.

Accuracy and statistics are computed by the database (``COUNT``/``SUM``/``AVG``), never by
loading rows into Python. Shadow models' predictions are left out of every read here: clients
never see them (the dashboard reads them through ``/retrain/shadows``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, select

from btcmlops.clock import Clock
from btcmlops.db.models import SHADOW_SOURCE, FeatureSnapshot, PredictionLog
from btcmlops.db.store import Store
from btcmlops.errors import NotFoundError
from btcmlops.mlops.predictions.records import prediction_as_dict
from btcmlops.mlops.predictions.results import (
    AccuracyStats,
    PredictionDetail,
    PredictionRecord,
    PredictionStatistics,
)
from btcmlops.modeling.evaluation import wilson_interval


class PredictionQueries:
    """Questions about logged predictions, answered in SQL over one store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get_prediction(self, prediction_id: int) -> PredictionDetail:
        with self.store.session() as session:
            row = session.get(PredictionLog, prediction_id)
            if row is None:
                raise NotFoundError(f"no prediction with id {prediction_id}")
            snapshot = (
                session.get(FeatureSnapshot, row.features_sha256) if row.features_sha256 else None
            )
            return PredictionDetail(
                **prediction_as_dict(row),
                features=snapshot.feature_values if snapshot is not None else {},
                features_sha256=row.features_sha256,
            )

    def get_recent_predictions(
        self,
        feature_set: str | None = None,
        model_type: str | None = None,
        limit: int = 100,
        only_with_outcomes: bool = False,
    ) -> list[PredictionRecord]:
        # shadow models' predictions are never shown to clients (the dashboard reads them
        # through /retrain/shadows)
        query = select(PredictionLog).where(PredictionLog.source != SHADOW_SOURCE)
        if feature_set:
            query = query.where(PredictionLog.feature_set == feature_set)
        if model_type:
            query = query.where(PredictionLog.model_type == model_type)
        if only_with_outcomes:
            query = query.where(PredictionLog.outcome_status == "resolved")
        query = query.order_by(PredictionLog.predicted_at.desc(), PredictionLog.id.desc()).limit(
            limit
        )
        with self.store.session() as session:
            return [prediction_as_dict(row) for row in session.scalars(query)]

    def get_model_accuracy(
        self, feature_set: str, model_type: str, days: float = 7
    ) -> AccuracyStats:
        """Realised accuracy of one (feature set, model type) over the last ``days``."""
        since = self.clock.now() - timedelta(days=days)
        resolved = PredictionLog.outcome_status == "resolved"
        correct = PredictionLog.prediction_correct.is_(True)
        up = PredictionLog.prediction == 1

        def count_if(*conditions):  # type: ignore[no-untyped-def]
            return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

        query = select(
            count_if(resolved).label("total"),
            count_if(resolved, correct).label("correct"),
            count_if(resolved, up).label("up"),
            count_if(resolved, up, correct).label("up_correct"),
            count_if(resolved, ~up).label("down"),
            count_if(resolved, ~up, correct).label("down_correct"),
            count_if(PredictionLog.outcome_status == "pending").label("pending"),
            func.avg(case((resolved, PredictionLog.confidence))).label("avg_confidence"),
            func.avg(case((and_(resolved, correct), PredictionLog.confidence))).label("conf_ok"),
            func.avg(case((and_(resolved, ~correct), PredictionLog.confidence))).label("conf_bad"),
        ).where(
            PredictionLog.feature_set == feature_set,
            PredictionLog.model_type == model_type,
            PredictionLog.predicted_at >= since,
            PredictionLog.source != SHADOW_SOURCE,
        )
        with self.store.session() as session:
            row = session.execute(query).one()
        total, correct_n = int(row.total), int(row.correct)
        stats: AccuracyStats = {
            "feature_set": feature_set,
            "model_type": model_type,
            "period_days": days,
            "total_predictions": total,
            "correct_predictions": correct_n,
            "incorrect_predictions": total - correct_n,
            "accuracy": _ratio(correct_n, total),
            "up_predictions": int(row.up),
            "up_correct": int(row.up_correct),
            "up_accuracy": _ratio(int(row.up_correct), int(row.up)),
            "down_predictions": int(row.down),
            "down_correct": int(row.down_correct),
            "down_accuracy": _ratio(int(row.down_correct), int(row.down)),
            "avg_confidence": _float(row.avg_confidence),
            "avg_confidence_when_correct": _float(row.conf_ok),
            "avg_confidence_when_incorrect": _float(row.conf_bad),
            "pending_predictions": int(row.pending),
        }
        if total:
            low, high = wilson_interval(correct_n, total)
            stats["accuracy_interval_95"] = [low, high]
        else:
            stats["accuracy_interval_95"] = None
            stats["message"] = (
                f"no {feature_set}/{model_type} prediction from the last {days:g} days has an "
                "outcome yet; outcomes are resolved one hour after the predicted hour closes"
            )
        return stats

    def get_prediction_statistics(self) -> PredictionStatistics:
        """Totals over every prediction served (shadow models' predictions not counted)."""
        status = PredictionLog.outcome_status
        query = select(
            func.count().label("total"),
            func.coalesce(func.sum(case((status == "resolved", 1), else_=0)), 0).label("resolved"),
            func.coalesce(
                func.sum(case((PredictionLog.prediction_correct.is_(True), 1), else_=0)), 0
            ).label("correct"),
            func.coalesce(func.sum(case((status == "pending", 1), else_=0)), 0).label("pending"),
            func.coalesce(func.sum(case((status == "expired", 1), else_=0)), 0).label("expired"),
            func.coalesce(
                func.sum(case((PredictionLog.feature_set == "vader", 1), else_=0)), 0
            ).label("vader"),
            func.coalesce(
                func.sum(case((PredictionLog.feature_set == "finbert", 1), else_=0)), 0
            ).label("finbert"),
            func.avg(PredictionLog.response_time_ms).label("avg_ms"),
        ).where(PredictionLog.source != SHADOW_SOURCE)
        with self.store.session() as session:
            row = session.execute(query).one()
        resolved = int(row.resolved)
        return {
            "total_predictions": int(row.total),
            "predictions_with_outcomes": resolved,
            "correct_predictions": int(row.correct),
            "overall_accuracy": _ratio(int(row.correct), resolved),
            "vader_predictions": int(row.vader),
            "finbert_predictions": int(row.finbert),
            "avg_response_time_ms": _float(row.avg_ms),
            "pending_outcomes": int(row.pending),
            "expired_outcomes": int(row.expired),
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
