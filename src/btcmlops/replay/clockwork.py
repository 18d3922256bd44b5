"""One replayed hour: the jobs the scheduler would run at the hour the clock shows."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from btcmlops.mlops.pipeline_jobs import PipelineJobs


def run_due_jobs(
    jobs: PipelineJobs, hour: datetime, *, skip: Collection[str] = (), daily: bool = True
) -> None:
    """The hourly jobs, then at midnight the daily drift and retraining checks and on Mondays
    the scheduled retraining (the live timetable runs those at 00:10, 00:20 and 01:00; a
    replay runs them in the same order at the top of the hour).

    ``skip`` leaves hourly jobs out by name; ``daily=False`` leaves the daily and weekly jobs
    out (a replay's last step only resolves outcomes).
    """
    jobs.hourly(skip=skip)
    if not daily or hour.hour != 0:
        return
    jobs.runner.run("drift_check", jobs.drift_check)
    jobs.runner.run("retraining_check", jobs.retraining_check)
    if hour.weekday() == 0:
        jobs.runner.run("scheduled_retraining", jobs.scheduled_retraining)
