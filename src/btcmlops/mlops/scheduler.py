"""The MLOps loop on a timetable: APScheduler runs :class:`PipelineJobs` on the cron triggers
of ``timetable``, while this process holds the ``scheduler`` lease.

A failed job is retried with exponential backoff (1, 2, 4 ... 30 minutes) instead of waiting
for its next slot; it never stops the scheduler. With several API workers, or a worker and a
``btcmlops scheduler`` process, exactly one runs the jobs: the one holding the ``scheduler``
lease (``mlops.leases``), renewed every 20 seconds. If it dies, another takes over within a
minute. The jobs are ``pipeline_jobs``', the record of each run ``job_runs``'.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import timedelta

from btcmlops.clock import SystemClock
from btcmlops.mlops.job_runs import JobState
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.results import ScheduledJob, SchedulerDescription
from btcmlops.mlops.runtime import Runtime
from btcmlops.mlops.timetable import TIMETABLE

log = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"
LEASE_TTL = timedelta(seconds=60)
HEARTBEAT_SECONDS = 20
BACKOFF_MINUTES = (1, 2, 4, 8, 16, 30)


class Scheduler:
    """APScheduler running :class:`PipelineJobs` while this process holds the lease."""

    def __init__(self, runtime: Runtime, jobs: PipelineJobs | None = None) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runtime = runtime
        self.jobs = jobs or PipelineJobs(runtime)
        self.runner = self.jobs.runner
        self.leader = False
        self._wall = SystemClock()
        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True})
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def start(self) -> Scheduler:
        for name, method, cron in TIMETABLE:
            self._scheduler.add_job(
                self._guarded,
                "cron",
                args=[name, method],
                id=name,
                name=name,
                misfire_grace_time=600,
                max_instances=1,
                **cron,
            )
        self._scheduler.start()
        self._claim()
        self._heartbeat = threading.Thread(target=self._beat, name="scheduler-lease", daemon=True)
        self._heartbeat.start()
        return self

    def _claim(self) -> None:
        try:
            held = self.runtime.leases.acquire(SCHEDULER_LEASE, LEASE_TTL)
        except Exception as exc:  # the store is down: do not run jobs we cannot coordinate
            log.warning("scheduler lease check failed: %s", exc)
            held = False
        if held != self.leader:
            log.info("scheduler %s", "leading" if held else "standing by")
        self.leader = held

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._claim()

    def _guarded(self, name: str, method: str, retry: bool = False) -> None:
        if not self.leader:
            return
        self.runner.run(name, getattr(self.jobs, method))
        state = self.runner.states[name]
        if state.last_status == "failed":
            step = min(state.consecutive_failures, len(BACKOFF_MINUTES)) - 1
            when = self._wall.now() + timedelta(minutes=BACKOFF_MINUTES[step])
            self._scheduler.add_job(
                self._guarded,
                "date",
                run_date=when,
                args=[name, method, True],
                id=f"{name}-retry",
                replace_existing=True,
                misfire_grace_time=600,  # a busy process runs it late rather than never
            )

    def shutdown(self) -> None:
        self._stop.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self.leader:
            with contextlib.suppress(Exception):  # if the store is down, the lease lapses
                self.runtime.leases.release(SCHEDULER_LEASE)
        self.leader = False

    def stop(self) -> None:
        """Ask ``run_forever`` to return (safe from a signal handler)."""
        self._stop.set()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.shutdown()

    def describe(self) -> SchedulerDescription:
        jobs: list[ScheduledJob] = []
        for name, _, _ in TIMETABLE:
            job = self._scheduler.get_job(name)
            state = self.runner.states.get(name, JobState())
            jobs.append(
                {
                    "name": name,
                    "next_run_at": job.next_run_time.isoformat()
                    if job and job.next_run_time
                    else None,
                    "last_started_at": state.last_started_at,
                    "last_status": state.last_status,
                    "last_duration_seconds": state.last_duration_seconds,
                    "last_error": state.last_error,
                    "consecutive_failures": state.consecutive_failures,
                }
            )
        holder = None
        try:
            lease = self.runtime.leases.current(SCHEDULER_LEASE)
            holder = lease.holder if lease else None
        except Exception:
            holder = None
        return {"running": True, "leader": self.leader, "lease_holder": holder, "jobs": jobs}
