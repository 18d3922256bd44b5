"""Every run of a loop job recorded in ``job_runs``: :class:`JobRunner` runs a job, records
its start, duration, outcome and numbers, and never lets an exception escape; it remembers
consecutive failures for the scheduler's backoff. :func:`recent_job_runs` reads them back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import insert, select

from btcmlops.db.models import JobRun
from btcmlops.errors import BtcmlopsError
from btcmlops.jsonable import jsonable
from btcmlops.mlops.results import RecordedJobRun
from btcmlops.mlops.runtime import Runtime

log = logging.getLogger(__name__)

# What a job returns: the numbers of what it did (each job has its own document).
Detail = TypeVar("Detail", bound=Mapping[str, object])

_INSERT_RUN = insert(JobRun.__table__)  # Core: no ORM bulk-insert machinery per row


@dataclass
class JobState:
    consecutive_failures: int = 0
    last_status: str | None = None
    last_error: str | None = None
    last_started_at: datetime | None = None
    last_duration_seconds: float | None = None


class JobRunner:
    """Runs a job, records it in ``job_runs``, and remembers failures for the backoff."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.states: dict[str, JobState] = {}

    def run(self, name: str, job: Callable[[], Detail]) -> Detail | None:
        state = self.states.setdefault(name, JobState())
        started_at = self.runtime.clock.now()
        started = time.perf_counter()
        status, detail, error = "ok", None, None
        try:
            detail = job()
        except Exception as exc:  # a job failure is recorded, never raised
            status = "failed"
            error = str(exc) if isinstance(exc, BtcmlopsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BtcmlopsError):
                log.exception("job %s failed", name)
        duration = time.perf_counter() - started
        state.last_started_at, state.last_duration_seconds = started_at, duration
        state.last_status, state.last_error = status, error
        state.consecutive_failures = 0 if status == "ok" else state.consecutive_failures + 1
        self._record(name, started_at, duration, status, detail, error)
        return detail

    def _record(self, name, started_at, duration, status, detail, error) -> None:  # type: ignore[no-untyped-def]
        try:
            with self.runtime.store.connection() as connection:
                # One prepared INSERT with parameters: a replay records several runs an hour,
                # and building a statement per row (or the ORM's unit of work) costs more
                # than the row.
                connection.execute(
                    _INSERT_RUN,
                    {
                        "job": name,
                        "started_at": started_at,
                        "finished_at": self.runtime.clock.now(),
                        "duration_seconds": duration,
                        "status": status,
                        "detail": jsonable(detail) if detail is not None else None,
                        "error": error,
                    },
                )
        except Exception as exc:  # the store is down: the run still happened
            log.warning("could not record run of %s: %s", name, exc)


def recent_job_runs(runtime: Runtime, limit_per_job: int = 1) -> dict[str, list[RecordedJobRun]]:
    """The latest runs of every job, from the store (any process)."""
    with runtime.store.session() as session:
        names = list(session.scalars(select(JobRun.job).distinct()))
        runs: dict[str, list[RecordedJobRun]] = {}
        for name in names:
            rows = session.scalars(
                select(JobRun)
                .where(JobRun.job == name)
                .order_by(JobRun.started_at.desc(), JobRun.id.desc())
                .limit(limit_per_job)
            )
            runs[name] = [
                {
                    "started_at": row.started_at.isoformat(),
                    "duration_seconds": row.duration_seconds,
                    "status": row.status,
                    "error": row.error,
                    "detail": row.detail,
                }
                for row in rows
            ]
    return runs
