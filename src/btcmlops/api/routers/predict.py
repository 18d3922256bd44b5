"""``POST /predict`` and ``POST /predict/both``: answer from memory, log off the request path."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from btcmlops.api.deps import ServicesDep, require_read_access
from btcmlops.api.schemas.common import ErrorResponse, FeatureSetName, ModelTypeName
from btcmlops.api.schemas.predictions import (
    PredictBothResponse,
    PredictFailure,
    PredictResponse,
)
from btcmlops.api.services import Services
from btcmlops.errors import BtcmlopsError
from btcmlops.mlops.predictions.results import PredictAnswer
from btcmlops.mlops.predictions.serving import predict_and_log

router = APIRouter(tags=["predictions"], dependencies=[Depends(require_read_access)])
ERRORS = {code: {"model": ErrorResponse} for code in (404, 422, 503)}


def _predict_now(
    services: Services, feature_set: str, model_type: str, use_cached_features: bool
) -> PredictAnswer:
    return predict_and_log(
        services.predictor,
        services.logger,
        services.clock,
        feature_set,
        model_type,
        use_cached_features=use_cached_features,
        source="api",
        live_accuracy=services.accuracy.get,
    )


async def _predict(
    services: Services, feature_set: str, model_type: str, use_cached_features: bool
) -> PredictAnswer:
    # Answers from memory stay on the event loop; anything that may touch the store or the
    # disk (first load, uncached features) goes to the thread pool.
    if use_cached_features and services.predictor.is_warm(feature_set, model_type):
        return _predict_now(services, feature_set, model_type, True)
    return await run_in_threadpool(
        _predict_now, services, feature_set, model_type, use_cached_features
    )


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    summary="Predict the next hour's direction with the champion of a feature set",
)
async def predict(
    services: ServicesDep,
    feature_set: FeatureSetName = Query(..., description="vader or finbert"),
    model_type: ModelTypeName = Query("random_forest"),
    use_cached_features: bool = Query(
        True, description="false reads the newest row from the store"
    ),
) -> dict:
    return await _predict(services, feature_set, model_type, use_cached_features)


@router.post(
    "/predict/both",
    response_model=PredictBothResponse,
    responses=ERRORS,
    summary="Predict with both feature sets and say whether they agree",
)
async def predict_both(
    services: ServicesDep,
    model_type: ModelTypeName = Query("random_forest"),
    use_cached_features: bool = Query(True),
) -> dict:
    started = time.perf_counter()
    answers: dict[str, PredictAnswer | dict[str, object]] = {}
    for feature_set in ("vader", "finbert"):
        try:
            answers[feature_set] = await _predict(
                services, feature_set, model_type, use_cached_features
            )
        except BtcmlopsError as exc:
            answers[feature_set] = PredictFailure(
                error=type(exc).__name__, detail=str(exc)
            ).model_dump()
    directions = [a["prediction"]["direction"] for a in answers.values() if a.get("success")]
    return {
        "success": all(a.get("success") for a in answers.values()),
        **answers,
        "agreement": directions[0] == directions[1] if len(directions) == 2 else None,
        "performance": {"total_response_time_ms": (time.perf_counter() - started) * 1000},
    }
