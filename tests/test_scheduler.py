"""The scheduler: the hourly jobs on a replay clock, run records, backoff, one leader."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import JobRun, PredictionLog, PriceBar
from btcmlops.db.store import Store
from btcmlops.ingest.world import SimulatedWorld
from btcmlops.mlops.job_runs import JobRunner
from btcmlops.mlops.leases import Leases
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.runtime import Runtime
from btcmlops.mlops.scheduler import SCHEDULER_LEASE, Scheduler
from btcmlops.testing import build_trained_home

from support import clone_database, fresh_database, reopen_home

END = parse_utc("2024-03-01T00:00:00Z")
PAIR = ("vader", "logistic_regression")


@pytest.fixture(scope="module")
def template(backend, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp(f"scheduler-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        built = build_trained_home(
            store, settings, END, days=24, pairs=(PAIR,), with_importances=False
        )
        SimulatedWorld(built.simulator.config).save(settings.home)
        store.close()
        yield built


@pytest.fixture
def runtime(template, backend, tmp_path, request):
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    url = clone_database(backend, template.settings.effective_database_url, tmp_path, admin)
    shutil.copytree(template.settings.home, tmp_path / "home")
    home = reopen_home(url, tmp_path / "home", template, END)
    context = AppContext(settings=home.settings, clock=home.clock, _store=home.store)
    running = Runtime(context).start()
    yield running
    running.close()
    home.store.close()


def count(runtime, *conditions, model=JobRun):
    with runtime.store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*conditions))


@pytest.mark.slow
def test_the_hourly_jobs_continue_the_world_and_predict_once_per_hour(runtime):
    jobs = PipelineJobs(runtime, model_types=(PAIR[1],))
    bars_before = count(runtime, model=PriceBar)
    for _ in range(3):
        runtime.clock.advance(hours=1)
        jobs.hourly()
        jobs.hourly()  # a second run in the same hour changes nothing
    assert count(runtime, model=PriceBar) == bars_before + 3
    runtime.logger.flush()
    scheduled = count(runtime, PredictionLog.source == "scheduled", model=PredictionLog)
    assert scheduled == 3
    with runtime.store.session() as session:
        statuses = dict(
            session.execute(
                select(JobRun.job, func.count()).where(JobRun.status == "ok").group_by(JobRun.job)
            ).all()
        )
    for job in ("ingest", "sentiment", "features", "predictions", "outcomes", "sequential_drift"):
        assert statuses[job] == 6, job
    # The predictions of the first two hours have closed by now: their outcomes are in.
    resolved = count(runtime, PredictionLog.outcome_status == "resolved", model=PredictionLog)
    assert resolved >= 1


def test_a_failing_job_is_recorded_and_never_raises(runtime):
    runner = JobRunner(runtime)

    def broken():
        raise RuntimeError("exchange on fire")

    assert runner.run("ingest", broken) is None
    assert runner.run("ingest", broken) is None
    assert runner.states["ingest"].consecutive_failures == 2
    runner.run("ingest", lambda: {"bars": 1})
    assert runner.states["ingest"].consecutive_failures == 0
    with runtime.store.session() as session:
        rows = session.scalars(select(JobRun).order_by(JobRun.id)).all()
    assert [row.status for row in rows] == ["failed", "failed", "ok"]
    assert "exchange on fire" in rows[0].error and rows[2].detail == {"bars": 1}
    assert all(row.duration_seconds >= 0 for row in rows)


def test_a_failed_job_is_retried_with_growing_backoff(runtime):
    scheduler = Scheduler(runtime)
    scheduler.leader = True
    scheduler.jobs.ingest = lambda: (_ for _ in ()).throw(RuntimeError("offline"))
    scheduler._scheduler.start(paused=True)
    try:
        delays = []
        for _ in range(3):
            before = scheduler._wall.now()
            scheduler._guarded("ingest", "ingest")
            retry = scheduler._scheduler.get_job("ingest-retry")
            delays.append((retry.next_run_time - before).total_seconds())
        assert delays[0] == pytest.approx(60, abs=5)
        assert delays[1] == pytest.approx(120, abs=5)
        assert delays[2] == pytest.approx(240, abs=5)
    finally:
        scheduler._scheduler.shutdown(wait=False)


def test_only_one_scheduler_leads_and_another_takes_over(runtime):
    first = Scheduler(runtime)
    second_runtime = Runtime(runtime.context)
    second_runtime.leases = Leases(runtime.store, holder="second-process")
    second = Scheduler(second_runtime)
    first._claim()
    second._claim()
    assert (first.leader, second.leader) == (True, False)
    calls = []
    second.jobs.ingest = lambda: calls.append("ran") or {}
    second._guarded("ingest", "ingest")
    assert calls == []  # a standby scheduler never runs jobs
    first.shutdown()  # releases the lease
    second._claim()
    assert second.leader is True
    assert Leases(runtime.store).current(SCHEDULER_LEASE).holder == "second-process"
    second.shutdown()


def test_daily_checks_record_drift_and_retraining_decisions(runtime):
    jobs = PipelineJobs(runtime, model_types=(PAIR[1],))
    runtime.clock.advance(days=1)
    drift = jobs.drift_check()
    assert f"{PAIR[0]}/{PAIR[1]}" in drift
    decisions = jobs.retraining_check()
    assert decisions[f"{PAIR[0]}/{PAIR[1]}"] in ("no", "kept", "deployed", "failed")
    assert runtime.retraining.checks(*PAIR)
