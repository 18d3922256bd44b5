"""``/predictions``: the prediction log, accuracy and statistics; manual outcomes."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path, Query

from btcmlops.api.deps import ServicesDep, require_api_key, require_read_access
from btcmlops.api.schemas.common import ErrorResponse, FeatureSetName, ModelTypeName
from btcmlops.api.schemas.predictions import (
    AccuracyResponse,
    OutcomeRequest,
    OutcomeResponse,
    PredictionResponse,
    RecentPredictionsResponse,
    StatisticsResponse,
    TimelineResponse,
)
from btcmlops.mlops.predictions.timeline import prediction_timeline

router = APIRouter(prefix="/predictions", tags=["predictions"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 422)}
PREDICTION_ID = Path(..., ge=1, le=2**53, description="The id /predict returned.")


@router.get(
    "/recent",
    response_model=RecentPredictionsResponse,
    dependencies=[Depends(require_read_access)],
    summary="The newest predictions, optionally only those with outcomes",
)
def recent_predictions(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    model_type: ModelTypeName | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    only_with_outcomes: bool = Query(False),
) -> dict:
    predictions = services.predictions.get_recent_predictions(
        feature_set, model_type, limit, only_with_outcomes
    )
    return {
        "success": True,
        "count": len(predictions),
        "predictions": predictions,
        "filters": {
            "feature_set": feature_set,
            "model_type": model_type,
            "limit": limit,
            "only_with_outcomes": only_with_outcomes,
        },
    }


@router.get(
    "/accuracy",
    response_model=AccuracyResponse,
    dependencies=[Depends(require_read_access)],
    summary="Realised accuracy of one model over the last days, by direction and confidence",
)
def prediction_accuracy(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
    days: int = Query(7, ge=1, le=365),
) -> dict:
    stats = services.predictions.get_model_accuracy(feature_set, model_type, days)
    return {"success": True, "accuracy_stats": stats}


@router.get(
    "/statistics",
    response_model=StatisticsResponse,
    dependencies=[Depends(require_read_access)],
    summary="Totals over every logged prediction",
)
def prediction_statistics(services: ServicesDep) -> dict:
    return {"success": True, "statistics": services.predictions.get_prediction_statistics()}


@router.get(
    "/timeline",
    response_model=TimelineResponse,
    dependencies=[Depends(require_read_access)],
    summary="One prediction per hour with rolling realised and estimated accuracy",
)
def predictions_timeline(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
    days: float = Query(30, gt=0, le=365),
    window: int = Query(48, ge=5, le=1000, description="Resolved predictions per rolling point."),
) -> dict:
    points = prediction_timeline(
        services.store, services.clock, feature_set, model_type, days=days, window=window
    )
    champion = services.registry.champion(feature_set, model_type)
    baselines = (champion.metrics.get("baselines", {}) if champion else {}) or {}
    return {
        "success": True,
        "feature_set": feature_set,
        "model_type": model_type,
        "window": window,
        "points": points,
        "baselines": {
            name: (baselines.get(name) or {}).get("accuracy")
            for name in ("majority_class", "last_hour")
        },
    }


@router.get(
    "/{prediction_id}",
    response_model=PredictionResponse,
    responses=ERRORS,
    dependencies=[Depends(require_read_access)],
    summary="One prediction with its feature snapshot and outcome",
)
def get_prediction(services: ServicesDep, prediction_id: int = PREDICTION_ID) -> dict:
    return {"success": True, "prediction": services.predictions.get_prediction(prediction_id)}


@router.post(
    "/{prediction_id}/outcome",
    response_model=OutcomeResponse,
    responses=ERRORS,
    dependencies=[Depends(require_api_key)],
    summary="Record what actually happened, by hand",
)
def record_outcome(
    services: ServicesDep,
    prediction_id: int = PREDICTION_ID,
    outcome: OutcomeRequest = Body(...),
) -> dict:
    updated = services.logger.update_prediction_outcome(
        prediction_id, outcome.actual_direction, outcome.bitcoin_price_1h_later
    )
    return {"success": True, "prediction": updated}
