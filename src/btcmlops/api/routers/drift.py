"""``/drift``: feature and model drift, the summary, history, the latest stored check,
distributions and the hourly sequential detector."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from btcmlops.api.deps import ServicesDep, require_read_access
from btcmlops.api.schemas.common import ErrorResponse, FeatureSetName, ModelTypeName
from btcmlops.api.schemas.drift import (
    DriftDistributionResponse,
    DriftHistoryResponse,
    DriftSummaryResponse,
    FeatureDriftResponse,
    LatestDriftCheckResponse,
    ModelDriftResponse,
    SequentialDriftResponse,
    SequentialEvidencePoint,
    SequentialWindow,
)
from btcmlops.mlops.drift.sequential_status import THRESHOLD
from btcmlops.severity import SEVERITIES

router = APIRouter(
    prefix="/drift",
    tags=["drift"],
    dependencies=[Depends(require_read_access)],
    responses={422: {"model": ErrorResponse}},
)
REFERENCE_DAYS = Query(7, gt=0, le=365, description="Days before the current window.")
CURRENT_DAYS = Query(1, gt=0, le=90, description="The most recent days.")
RECORD = Query(
    False,
    description="Also store this check in drift_reports. The daily job stores its checks; "
    "reads from dashboards and scripts do not, so polling never floods the history.",
)


@router.get(
    "/features",
    response_model=FeatureDriftResponse,
    summary="KS and PSI of every monitored feature, reference vs current",
)
def drift_features(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    reference_days: float = REFERENCE_DAYS,
    current_days: float = CURRENT_DAYS,
    record: bool = RECORD,
) -> dict:
    analysis = services.drift.detect_feature_drift(
        feature_set, reference_days, current_days, record=record
    )
    return {"success": True, "drift_analysis": analysis}


@router.get(
    "/model",
    response_model=ModelDriftResponse,
    # window_note and message are present only when they apply
    response_model_exclude_unset=True,
    summary="Accuracy and calibration of a model, reference vs current",
)
def drift_model(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
    reference_days: float = REFERENCE_DAYS,
    current_days: float = CURRENT_DAYS,
    record: bool = RECORD,
) -> dict:
    analysis = services.drift.detect_model_drift(
        feature_set, model_type, reference_days, current_days, record=record
    )
    return {"success": True, "drift_analysis": analysis}


@router.get(
    "/summary",
    response_model=DriftSummaryResponse,
    summary="Both analyses, the overall severity and recommendations",
)
def drift_summary(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
    reference_days: float = REFERENCE_DAYS,
    current_days: float = CURRENT_DAYS,
    record: bool = RECORD,
) -> dict:
    result = services.drift.get_drift_summary(
        feature_set, model_type, reference_days, current_days, record=record
    )
    return {"success": True, "summary": result}


@router.get(
    "/history",
    response_model=DriftHistoryResponse,
    summary="Stored drift checks of the last days, oldest first",
)
def drift_history(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    days: float = Query(30, gt=0, le=365),
) -> dict:
    reports = services.drift.history(feature_set, days)
    return {
        "success": True,
        "count": len(reports),
        "reports": reports,
        # lowest first; "not enough data" is a status, never in this list
        "severity_order": list(SEVERITIES),
    }


@router.get(
    "/latest",
    response_model=LatestDriftCheckResponse,
    summary="The latest stored drift check of a pair: summary, feature and model checks",
)
def drift_latest(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
) -> LatestDriftCheckResponse:
    stored = services.drift.latest(feature_set, model_type)
    if stored is None:
        return LatestDriftCheckResponse(
            status="none",
            feature_set=feature_set,
            model_type=model_type,
            checked_at=None,
            summary=None,
            features=None,
            model=None,
            message=f"no drift check of {feature_set}/{model_type} is stored yet: the "
            "scheduler stores one daily at 00:10 UTC (`btcmlops demo` replays them)",
        )
    return LatestDriftCheckResponse(
        status="stored",
        feature_set=stored.feature_set,
        model_type=stored.model_type,
        checked_at=stored.checked_at,
        summary=stored.summary,
        features=stored.features,
        model=stored.model,
    )


@router.get(
    "/distribution",
    response_model=DriftDistributionResponse,
    summary="Reference and current distribution of one feature",
)
def drift_distribution(
    services: ServicesDep,
    feature: str = Query(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$"),
    feature_set: FeatureSetName = Query("vader"),
    reference_days: float = REFERENCE_DAYS,
    current_days: float = CURRENT_DAYS,
) -> dict:
    shown = services.drift.distribution(feature_set, feature, reference_days, current_days)
    return {"success": True, **shown}


@router.get(
    "/sequential",
    response_model=SequentialDriftResponse,
    summary="The hourly sequential drift detector of a feature set: state, alarm, evidence",
)
def drift_sequential(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    days: float = Query(30, gt=0, le=365, description="Days of hourly evidence points."),
) -> SequentialDriftResponse:
    status = services.sequential.status(feature_set)
    points = services.sequential.points(feature_set, days)
    windows = status.windows
    return SequentialDriftResponse(
        feature_set=status.feature_set,
        status=status.status,
        reason=status.reason,
        mtbf_days=status.mtbf_hours / 24,
        smoothing=status.smoothing,
        fitted_at=status.fitted_at,
        fit_reason=status.fit_reason,
        reference=None
        if windows is None
        else SequentialWindow(start=windows.reference_start, end=windows.reference_end),
        history=None
        if windows is None
        else SequentialWindow(start=windows.history_start, end=windows.reference_start),
        last_hour=status.last_hour,
        alarm=status.alarm,
        alarm_at=status.alarm_at,
        change_at=status.change_at,
        statistic=status.statistic,
        threshold=THRESHOLD,
        points=[
            SequentialEvidencePoint(hour=p.hour, statistic=p.statistic, alarm=p.alarm)
            for p in points
        ],
    )
