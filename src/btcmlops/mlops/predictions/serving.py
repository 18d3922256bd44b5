"""One path for every prediction, from the API or the hourly job: predict, log, shape the answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from btcmlops.clock import HOUR, Clock
from btcmlops.db.models import SHADOW_SOURCE
from btcmlops.errors import BtcmlopsError
from btcmlops.features.schema import FEATURE_VERSION
from btcmlops.mlops.monitoring import count_prediction
from btcmlops.mlops.predictions.results import PredictAnswer
from btcmlops.mlops.predictions.writer import PredictionLogger
from btcmlops.modeling.registry_records import ModelVersionInfo
from btcmlops.serving.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

LiveAccuracy = Callable[[str, str], float | None]


def predict_and_log(
    predictor: Predictor,
    logger: PredictionLogger,
    clock: Clock,
    feature_set: str,
    model_type: str,
    *,
    use_cached_features: bool = True,
    source: str = "api",
    live_accuracy: LiveAccuracy | None = None,
) -> PredictAnswer:
    """Predict with the champion of (feature set, model type), log it, and return the answer
    in the ``/predict`` contract's shape (with ``prediction_id``)."""
    started = time.perf_counter()
    result = predictor.predict(feature_set, model_type, use_cached_features=use_cached_features)
    answer = result.answer
    response_time_ms = (time.perf_counter() - started) * 1000
    prediction_id = log_prediction(logger, result, source=source, response_time_ms=response_time_ms)
    count_prediction(
        result.feature_set, result.model_type, source, "up" if answer.prediction == 1 else "down"
    )
    accuracy = live_accuracy(result.feature_set, result.model_type) if live_accuracy else None
    return {
        "success": True,
        "prediction": {
            "direction": "up" if answer.prediction == 1 else "down",
            "direction_numeric": answer.prediction,
            "probability": {"down": answer.probability_down, "up": answer.probability_up},
            "confidence": answer.confidence,
            "accuracy": accuracy,
            "accuracy_period": "7 days",
            "imputed_features": answer.imputed_features,
            "feature_hour": result.feature_ts,
            "target_hour": result.feature_ts + HOUR,
            "bitcoin_price": result.close,
        },
        "model_info": {
            "feature_set": result.feature_set,
            "model_type": result.model_type,
            "model_version": result.model.version,
            "features_used": len(result.model.feature_names),
        },
        "performance": {
            "response_time_ms": response_time_ms,
            "cached_features": result.cached_features,
        },
        "timestamp": clock.now(),
        "prediction_id": prediction_id,
    }


def log_shadow_predictions(
    predictor: Predictor,
    logger: PredictionLogger,
    shadows: Sequence[ModelVersionInfo],
) -> dict[str, int]:
    """Each shadow model's answer on the newest feature row, logged with source ``shadow``.

    They reuse the row the champion answered from; the outcome job scores them like any
    prediction; client-facing reads leave them out. A shadow that cannot load is skipped
    (and said), never allowed to stop the champion's hour.
    """
    made: dict[str, int] = {}
    for model in shadows:
        if model.feature_version != FEATURE_VERSION:
            log.warning(
                "shadow %s skipped: built for features %s", model.version, model.feature_version
            )
            continue
        started = time.perf_counter()
        try:
            result = predictor.predict_shadow(model)
        except BtcmlopsError as exc:
            log.warning("shadow %s skipped: %s", model.version, exc)
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        log_prediction(logger, result, source=SHADOW_SOURCE, response_time_ms=elapsed_ms)
        made[model.version] = result.answer.prediction
    return made


def log_prediction(
    logger: PredictionLogger, result: Prediction, *, source: str, response_time_ms: float
) -> int:
    """Hand one prediction with its context to the background writer; its id."""
    answer = result.answer
    return logger.log_prediction(
        feature_set=result.feature_set,
        model_type=result.model_type,
        model_version=result.model.version,
        prediction=answer.prediction,
        probability_down=answer.probability_down,
        probability_up=answer.probability_up,
        confidence=answer.confidence,
        features=result.features,
        response_time_ms=response_time_ms,
        cached_features=result.cached_features,
        bitcoin_price=result.close,
        feature_ts=result.feature_ts,
        source=source,
        imputed_features=answer.imputed_features,
    )
