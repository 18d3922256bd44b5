"""A logged prediction's two shapes outside the table: the API's field names, and its feature
snapshot (values cleaned for JSON, identified by their sha256).

The writer stores snapshots with :func:`snapshot_of`; the read side and outcome entry answer
with :func:`prediction_as_dict`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from btcmlops.db.models import PredictionLog
from btcmlops.jsonable import finite_or_none
from btcmlops.mlops.predictions.results import PredictionRecord


def prediction_as_dict(row: PredictionLog) -> PredictionRecord:
    """A stored prediction in the API's field names."""
    shown: PredictionRecord = {
        "id": row.id,
        "feature_set": row.feature_set,
        "model_type": row.model_type,
        "model_version": row.model_version,
        "prediction": row.prediction,
        "direction": "up" if row.prediction == 1 else "down",
        "probability_down": row.probability_down,
        "probability_up": row.probability_up,
        "confidence": row.confidence,
        "actual_direction": row.actual_direction,
        "prediction_correct": row.prediction_correct,
        "outcome_status": row.outcome_status,
        "bitcoin_price_at_prediction": row.bitcoin_price_at_prediction,
        "bitcoin_price_1h_later": row.bitcoin_price_1h_later,
        "price_change_pct": row.price_change_pct,
        "response_time_ms": row.response_time_ms,
        "cached_features": row.cached_features,
        "imputed_features": row.imputed_features,
        "source": row.source,
        "feature_hour": row.feature_ts,
        "target_hour": row.target_ts,
        "predicted_at": row.predicted_at,
        "outcome_recorded_at": row.outcome_recorded_at,
    }
    return shown


def snapshot_of(features: Mapping[str, object]) -> tuple[dict[str, float | None], str]:
    """Feature values as stored (NaN and infinities as null) and the sha256 of their
    canonical JSON, which identifies the snapshot."""
    cleaned = {str(name): finite_or_none(value) for name, value in features.items()}
    text = json.dumps(cleaned, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return cleaned, hashlib.sha256(text.encode()).hexdigest()
