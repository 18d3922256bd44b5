"""``/scheduler``: the jobs of the MLOps loop and how their last runs went."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from btcmlops.api.deps import ServicesDep, require_read_access
from btcmlops.api.schemas.service import SchedulerJobsResponse
from btcmlops.mlops.job_runs import recent_job_runs
from btcmlops.mlops.timetable import TIMETABLE

router = APIRouter(
    prefix="/scheduler", tags=["scheduler"], dependencies=[Depends(require_read_access)]
)


@router.get(
    "/jobs",
    response_model=SchedulerJobsResponse,
    summary="Scheduler jobs: next run here, last run anywhere (from the store)",
)
def scheduler_jobs(services: ServicesDep) -> dict:
    local = services.scheduler.describe() if services.scheduler is not None else {}
    recorded = recent_job_runs(services)
    by_name = {job["name"]: job for job in local.get("jobs", [])}
    listed = []
    for name, _, _ in TIMETABLE:
        last = (recorded.get(name) or [None])[0]
        here = by_name.get(name, {})
        listed.append(
            {
                "name": name,
                "next_run_at": here.get("next_run_at"),
                "last_started_at": last["started_at"] if last else None,
                "last_status": last["status"] if last else None,
                "last_duration_seconds": last["duration_seconds"] if last else None,
                "last_error": last["error"] if last else None,
                "last_detail": last["detail"] if last else None,
                "consecutive_failures": here.get("consecutive_failures", 0),
            }
        )
    return {
        "success": True,
        "running": bool(local.get("running")),
        "leader": bool(local.get("leader")),
        "lease_holder": local.get("lease_holder"),
        "jobs": listed,
    }
