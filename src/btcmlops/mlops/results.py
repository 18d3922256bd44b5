"""The documents the loop's jobs and the scheduler answer with, and the shape of JSON.

Each job of :class:`~btcmlops.mlops.pipeline_jobs.PipelineJobs` returns the numbers of what it
did; :class:`~btcmlops.mlops.job_runs.JobRunner` stores them in ``job_runs.detail`` and the
``/scheduler/jobs`` answer shows them. ``JsonValue`` types a document read back from a JSON
column, whose keys depend on what wrote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]


# ------------------------------------------------------------------------ the hourly jobs
class IngestSkipped(TypedDict):
    skipped: str


# "from" (the first hour fetched) is absent when no hour was missing
SimulatedIngest = TypedDict(
    "SimulatedIngest", {"bars": int, "articles": int, "from": NotRequired[datetime]}
)


class LiveIngest(TypedDict):
    inserted: int
    failed_sources: list[str]


class ScorerUnavailable(TypedDict):
    unavailable: str


class ScoredArticles(TypedDict):
    scored: int
    failed: int


class OutcomesRun(TypedDict):
    resolved: int
    expired: int
    pending: int
    rollbacks: list[str]


class JobError(TypedDict):
    error: str


# ------------------------------------------------------------------------ the scheduler
class ScheduledJob(TypedDict):
    """One job of the timetable in this process: its next slot and its last run here."""

    name: str
    next_run_at: str | None
    last_started_at: datetime | None
    last_status: str | None
    last_duration_seconds: float | None
    last_error: str | None
    consecutive_failures: int


class SchedulerDescription(TypedDict):
    running: bool
    leader: bool
    lease_holder: str | None
    jobs: list[ScheduledJob]


class RecordedJobRun(TypedDict):
    """One run of a job as ``job_runs`` keeps it (any process)."""

    started_at: str
    duration_seconds: float | None
    status: str
    error: str | None
    detail: JsonObject | None
