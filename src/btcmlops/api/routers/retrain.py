"""``/retrain``: the decision, execution (synchronous or as a job), status and history."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from btcmlops.api.deps import ServicesDep, require_api_key, require_read_access
from btcmlops.api.schemas.common import ErrorResponse, FeatureSetName, ModelTypeName
from btcmlops.api.schemas.retraining import (
    RetrainBothResponse,
    RetrainCheckResponse,
    RetrainChecksResponse,
    RetrainFailure,
    RetrainHistoryResponse,
    RetrainJobResponse,
    RetrainOutcome,
    RetrainStarted,
    RetrainStatusResponse,
    ShadowsResponse,
)
from btcmlops.errors import NotFoundError

router = APIRouter(prefix="/retrain", tags=["retraining"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 409, 422)}


@router.get(
    "/check",
    response_model=RetrainCheckResponse,
    # a sub-check's numbers are present only when the check got that far
    response_model_exclude_unset=True,
    dependencies=[Depends(require_read_access)],
    summary="Should this pair retrain now? Every check with its numbers",
)
def retrain_check(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
) -> dict:
    return {
        "success": True,
        "decision": services.retraining.should_retrain(feature_set, model_type),
    }


@router.post(
    "/execute",
    response_model=RetrainOutcome | RetrainFailure,
    response_model_exclude_unset=True,  # a failure that never started has no job id
    responses={
        **ERRORS,
        202: {"model": RetrainStarted, "description": "Accepted: the job runs in the background"},
    },
    dependencies=[Depends(require_api_key)],
    summary="Retrain a pair: train a challenger, meet the champion, deploy if better",
)
async def retrain_execute(
    services: ServicesDep,
    feature_set: FeatureSetName = Query("vader"),
    model_type: ModelTypeName = Query("random_forest"),
    deploy_if_better: bool = Query(True),
    run_async: bool = Query(False, alias="async", description="Answer 202 at once with a job id."),
) -> dict | JSONResponse:
    job = await run_in_threadpool(
        services.retraining.begin,
        feature_set,
        model_type,
        deploy_if_better=deploy_if_better,
        trigger="api",
        reasons=["requested through POST /retrain/execute"],
    )
    future = services.submit_job(job)
    if run_async:
        return JSONResponse(
            status_code=202, content=RetrainStarted(job_id=job.job_id).model_dump(exclude_none=True)
        )
    finished = await run_in_threadpool(services.wait_for, future)
    if finished is None:  # still running after the timeout: hand over the job id
        return JSONResponse(
            status_code=202,
            content=RetrainStarted(
                job_id=job.job_id,
                message="still running after the synchronous timeout; poll "
                f"GET /retrain/jobs/{job.job_id}",
            ).model_dump(),
        )
    return finished


@router.post(
    "/both",
    response_model=RetrainBothResponse,
    response_model_exclude_unset=True,
    responses=ERRORS,
    dependencies=[Depends(require_api_key)],
    summary="Retrain both feature sets; success is false if either failed",
)
def retrain_both(
    services: ServicesDep,
    model_type: ModelTypeName = Query("random_forest"),
    deploy_if_better: bool = Query(True),
) -> dict:
    return services.retraining.retrain_both(
        model_type,
        deploy_if_better,
        trigger="api",
        reasons=["requested through POST /retrain/both"],
    )


@router.get(
    "/status",
    response_model=RetrainStatusResponse,
    dependencies=[Depends(require_read_access)],
    summary="The decision per feature set and the thresholds in force",
)
def retrain_status(
    services: ServicesDep,
    model_type: ModelTypeName = Query("random_forest"),
) -> dict:
    return {"success": True, "status": services.retraining.status(model_type)}


@router.get(
    "/jobs/{job_id}",
    response_model=RetrainJobResponse,
    responses={404: {"model": ErrorResponse}},
    dependencies=[Depends(require_read_access)],
    summary="One retraining job: running, or its recorded result",
)
def retrain_job(
    services: ServicesDep,
    job_id: str = Path(..., min_length=1, max_length=36, pattern=r"^[0-9a-fA-F-]+$"),
) -> dict:
    found = services.retraining.job(job_id)
    if found is None:
        raise NotFoundError(f"no retraining job {job_id}")
    return {"success": True, "job": found}


@router.get(
    "/history",
    response_model=RetrainHistoryResponse,
    dependencies=[Depends(require_read_access)],
    summary="Retraining runs, newest first, deployed or not",
)
def retraining_history(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    model_type: ModelTypeName | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    runs = services.retraining.history(feature_set, model_type, limit)
    return {"success": True, "count": len(runs), "runs": runs}


@router.get(
    "/shadows",
    response_model=ShadowsResponse,
    dependencies=[Depends(require_read_access)],
    summary="Shadow models per pair: the evidence each accrues toward promotion or rollback",
)
def retrain_shadows(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    model_type: ModelTypeName | None = Query(None),
) -> dict:
    pairs = [
        services.retraining.shadow_report(fs, mt)
        for fs, mt in services.registry.champion_pairs()
        if (feature_set is None or fs == feature_set) and (model_type is None or mt == model_type)
    ]
    return {"success": True, "pairs": pairs}


@router.get(
    "/checks",
    response_model=RetrainChecksResponse,
    response_model_exclude_unset=True,
    dependencies=[Depends(require_read_access)],
    summary="Recorded should-retrain checks, newest first",
)
def retrain_checks(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    model_type: ModelTypeName | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    found = services.retraining.checks(feature_set, model_type, limit)
    return {"success": True, "count": len(found), "checks": found}
