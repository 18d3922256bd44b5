"""The hourly sequential drift detector in the service: fitted once the store holds two weeks
of feature rows, fed every new row, restored exactly after a restart, alarming on a change,
triggering retraining, refitted after a retraining or a rollback. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from btcmlops.clock import HOUR
from btcmlops.context import AppContext
from btcmlops.db.models import (
    ChampionChange,
    RetrainingRun,
    SequentialDetectorFit,
    SequentialPoint,
)
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION, monitored_feature_names
from btcmlops.mlops.drift import sequential
from btcmlops.mlops.drift.sequential import SequentialDetector
from btcmlops.mlops.drift.sequential_monitor import SequentialMonitor
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.retraining import AutomatedRetraining
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.registry import ModelRegistry

from support import registry_row, store_feature_rows

DAY = timedelta(days=1)
PAIR = ("vader", "random_forest")


@pytest.fixture
def fits(monkeypatch):
    """Counts the detector's fits (the real fit still runs)."""
    calls = []
    real_fit = sequential.SequentialDetector.fit

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(sequential.SequentialDetector, "fit", counted)
    return calls


def rows_until(store, clock, start: datetime, hours: int, *, seed: int, shift: float = 0.0):
    """Store ``hours`` rows from ``start`` and move the clock to when the last has closed."""
    moved = store_feature_rows(store, start, hours, seed=seed, shift=shift)
    clock.set(max(clock.now(), start + hours * HOUR))
    return moved


def stored_points(store) -> list[tuple[datetime, float, bool]]:
    with store.session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    SequentialPoint.hour, SequentialPoint.statistic, SequentialPoint.alarm
                ).order_by(SequentialPoint.hour)
            )
        ]


def declare_champion(store, at: datetime) -> list[int]:
    """Two registry rows of the pair, the second the champion since ``at`` (no artifacts:
    the policy reads the rows only). Returns their ids, oldest first."""
    ids = []
    with store.session() as session:
        for number, status in ((1, "archived"), (2, "champion")):
            row = registry_row(f"vader-random_forest-v{number}", status, at, PAIR)
            session.add(row)
            session.flush()
            ids.append(row.id)
        session.add(
            ChampionChange(
                feature_set=PAIR[0],
                model_type=PAIR[1],
                model_version_id=ids[1],
                previous_model_version_id=ids[0],
                action="deploy",
                actor="test",
                reason="test",
                changed_at=at,
            )
        )
    return ids


def feed_hour_by_hour(store, clock, monitor, start: datetime, hours: int, *, seed, shift=0.0):
    """One row per hour from ``start``, the monitor run after each (as the scheduler does)."""
    updates = []
    for hour in range(hours):
        rows_until(store, clock, start + hour * HOUR, 1, seed=seed + hour, shift=shift)
        updates.append(monitor.advance("vader"))
    return updates


# ------------------------------------------------------------------------------ fitting


def test_it_fits_once_the_store_holds_two_weeks_split_in_half(store, clock, settings, start_time):
    monitor = SequentialMonitor(store, clock, settings)
    rows_until(store, clock, start_time, 240, seed=1)

    early = monitor.advance("vader")

    assert early.status.status == "not_fitted"
    assert early.status.reason == "needs 14 days of feature rows; the store holds 10.0"
    assert monitor.status("vader").reason == early.status.reason
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(SequentialDetectorFit)) == 0

    rows_until(store, clock, start_time + 240 * HOUR, 96, seed=2)
    fitted = monitor.advance("vader")

    # 14 days stored, fit_days 28: seven days of history, then seven of reference
    assert fitted.status.status == "fitted" and fitted.refitted == "first fit"
    windows = fitted.status.windows
    assert (windows.history_start, windows.reference_start, windows.reference_end) == (
        start_time,
        start_time + 7 * DAY,
        start_time + 14 * DAY,
    )
    assert fitted.rows == 0 and fitted.status.alarm is False
    stored = monitor.status("vader")
    assert stored.status == "fitted" and stored.fitted_at == clock.now()
    assert stored.last_hour == start_time + 14 * DAY - HOUR
    assert stored.mtbf_hours == 90 * 24 and stored.smoothing == SequentialDetector().smoothing


def test_with_more_rows_than_needed_it_fits_on_the_latest_fit_days(
    store, clock, settings, start_time
):
    settings = settings.model_copy(update={"drift_sequential_fit_days": 7})
    rows_until(store, clock, start_time, 20 * 24, seed=3)

    fitted = SequentialMonitor(store, clock, settings).advance("vader")

    windows = fitted.status.windows
    end = start_time + 20 * DAY
    assert (windows.history_start, windows.reference_start, windows.reference_end) == (
        end - 14 * DAY,
        end - 7 * DAY,
        end,
    )


# ------------------------------------------------------------------------------ feeding


def test_every_new_row_is_fed_once_and_stored_with_the_state(
    store, clock, settings, start_time, fits
):
    monitor = SequentialMonitor(store, clock, settings)
    rows_until(store, clock, start_time, 14 * 24, seed=4)
    monitor.advance("vader")
    new_rows = start_time + 14 * DAY

    fed = monitor.advance("vader")  # nothing new yet
    assert fed.rows == 0
    rows_until(store, clock, new_rows, 5, seed=5)
    fed = monitor.advance("vader")
    again = monitor.advance("vader")

    assert (fed.rows, again.rows) == (5, 0)
    points = stored_points(store)
    assert [hour for hour, _, _ in points] == [new_rows + i * HOUR for i in range(5)]
    assert points[-1][1] == fed.status.statistic
    with store.session() as session:
        fit = session.scalar(select(SequentialDetectorFit))
    assert fit.last_hour == new_rows + 4 * HOUR
    assert fit.statistic == fed.status.statistic
    assert fit.state["hours"] == 5
    assert len(fits) == 1  # kept in memory between hours: fitted once


def test_a_retraining_while_the_detector_is_quiet_leaves_its_reference_alone(
    store, clock, settings, start_time
):
    """Only a retraining after an alarm acts on it; one for the schedule or the performance
    check must not move the reference (nor cost a refit every day)."""
    monitor = SequentialMonitor(store, clock, settings)
    rows_until(store, clock, start_time, 14 * 24, seed=4)
    first = monitor.advance("vader")
    with store.session() as session:
        session.add(
            RetrainingRun(
                job_id="scheduled-1",
                feature_set=PAIR[0],
                model_type=PAIR[1],
                trigger="schedule",
                reasons=["the champion is 7 days old"],
                status="succeeded",
                decision="deployed",
                started_at=clock.now(),
                finished_at=clock.now() + HOUR,
            )
        )
    rows_until(store, clock, start_time + 14 * DAY, 2, seed=5)
    fed = monitor.advance("vader")

    assert first.status.alarm is False and fed.refitted is None and fed.rows == 2
    assert fed.status.fitted_at == first.status.fitted_at
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(SequentialDetectorFit)) == 1


def test_a_restart_continues_exactly_as_if_there_had_been_none(
    store, clock, settings, start_time, fits
):
    rows_until(store, clock, start_time, 14 * 24, seed=6)
    SequentialMonitor(store, clock, settings).advance("vader")
    first = SequentialMonitor(store, clock, settings)
    feed_hour_by_hour(store, clock, first, start_time + 14 * DAY, 6, seed=100, shift=0.5)

    restarted = SequentialMonitor(store, clock, settings)  # a new process: nothing in memory
    feed_hour_by_hour(store, clock, restarted, start_time + 14 * DAY + 6 * HOUR, 6, seed=200)
    # the first fit, then one refit on its own rows in each new process
    assert len(fits) == 3

    # The same detector without a restart: fitted on the same rows, fed all twelve.
    names = monitored_feature_names("vader")
    frame = load_feature_frame(store, "vader", FEATURE_VERSION, names, start=start_time)
    split, end = start_time + 7 * DAY, start_time + 14 * DAY
    uninterrupted = SequentialDetector().fit(
        frame[(frame.index >= split) & (frame.index < end)],
        names,
        history=frame[frame.index < split],
    )
    expected = []
    for row in frame[frame.index >= end].to_numpy():
        uninterrupted.update(row)
        expected.append(uninterrupted.statistic)
    assert [statistic for _, statistic, _ in stored_points(store)] == expected
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(SequentialDetectorFit)) == 1


def test_a_detector_moved_on_by_another_process_is_reloaded_not_overwritten(
    store, clock, settings, start_time
):
    rows_until(store, clock, start_time, 14 * 24, seed=7)
    here, elsewhere = (SequentialMonitor(store, clock, settings) for _ in range(2))
    here.advance("vader")
    rows_until(store, clock, start_time + 14 * DAY, 2, seed=8)
    elsewhere.advance("vader")  # another process fed the two rows

    rows_until(store, clock, start_time + 14 * DAY + 2 * HOUR, 1, seed=9)
    update_here = here.advance("vader")

    assert update_here.rows == 1  # only the new row: the stored state was picked up
    assert [hour for hour, _, _ in stored_points(store)] == [
        start_time + 14 * DAY + i * HOUR for i in range(3)
    ]


# ------------------------------------------------------------------------------ alarms


@pytest.fixture
def alarmed(store, clock, settings, start_time):
    """A runtime whose detector was fitted on 28 quiet days, then fed, hour by hour through
    the scheduler's job, two quiet days and two days in which ten features moved by 2 sd."""
    rows_until(store, clock, start_time, 28 * 24, seed=10)
    runtime = Runtime(AppContext(settings=settings, clock=clock, _store=store))
    events: list[tuple[str, str]] = []
    jobs = PipelineJobs(runtime, events=lambda kind, message: events.append((kind, message)))
    jobs.sequential_drift()
    quiet_from, change_from = start_time + 28 * DAY, start_time + 30 * DAY
    for hour in range(96):
        at = quiet_from + hour * HOUR
        shift = 2.0 if at >= change_from else 0.0
        rows_until(store, clock, at, 1, seed=1000 + hour, shift=shift)
        jobs.sequential_drift()
    yield runtime, events, change_from
    runtime.close()


def test_a_change_in_the_stored_rows_sets_off_the_alarm_once(alarmed):
    runtime, events, change_from = alarmed
    status = runtime.sequential.status("vader")

    assert status.alarm is True
    assert change_from <= status.alarm_at < change_from + DAY
    # the estimate runs early by up to two days on the detector's benchmark (docs/drift.md)
    assert change_from - 2 * DAY <= status.change_at <= status.alarm_at
    # The hours are those of the rows the detector counted: the same detector fed the same
    # rows in one go alarms at the same row and estimates the same first changed row.
    windows = status.windows
    names = monitored_feature_names("vader")
    frame = load_feature_frame(
        runtime.store, "vader", FEATURE_VERSION, names, start=windows.history_start
    )
    in_fit = frame.index < windows.reference_end
    in_reference = in_fit & (frame.index >= windows.reference_start)
    detector = SequentialDetector().fit(
        frame[in_reference], names, history=frame[frame.index < windows.reference_start]
    )
    fed = frame[~in_fit]
    for row in fed.to_numpy():
        detector.update(row)
    assert fed.index[detector.alarm_hour - 1] == status.alarm_at
    assert fed.index[detector.change_hour - 1] == status.change_at
    with runtime.store.session() as session:
        before_change = session.scalar(
            select(func.count()).where(SequentialPoint.alarm, SequentialPoint.hour < change_from)
        )
        at_alarm = session.scalar(
            select(SequentialPoint.statistic).where(SequentialPoint.hour == status.alarm_at)
        )
    assert before_change == 0
    assert at_alarm >= 1.0
    # one event, when the alarm went off; none for the hours it stayed on
    assert events == [
        (
            "drift",
            f"vader: hourly sequential drift detector {status.alarm_words()} "
            f"(evidence {at_alarm:.2f} of its threshold)",
        )
    ]


def test_an_alarm_makes_should_retrain_retrain_with_the_detectors_reason(alarmed):
    runtime, _, _ = alarmed
    declare_champion(runtime.store, runtime.clock.now())
    status = runtime.sequential.status("vader")
    reason = (
        f"sequential drift detector alarmed at {status.alarm_at:%Y-%m-%d %H:%M} UTC "
        f"(change estimated at {status.change_at:%Y-%m-%d %H:%M} UTC)"
    )
    retraining = AutomatedRetraining(
        runtime.store,
        runtime.clock,
        runtime.settings,
        ModelRegistry(runtime.store, runtime.settings.artifacts_dir, runtime.clock),
        sequential_status=runtime.sequential.status,
    )

    decision = retraining.should_retrain(*PAIR, record=False)

    assert decision["should_retrain"] is True
    assert decision["triggers"] == ["drift"]
    assert decision["reasons"] == [reason]
    sequential_entry = decision["drift_check"]["sequential"]
    assert sequential_entry["alarm"] is True and sequential_entry["triggered"] is True
    assert sequential_entry["alarm_at"] == status.alarm_at
    assert sequential_entry["change_at"] == status.change_at
    assert sequential_entry["statistic"] == status.statistic
    assert sequential_entry["fitted_at"] == status.fitted_at


def test_with_the_setting_off_an_alarm_is_reported_but_does_not_trigger(alarmed):
    runtime, _, _ = alarmed
    declare_champion(runtime.store, runtime.clock.now())
    settings = runtime.settings.model_copy(update={"retrain_on_sequential_alarm": False})
    retraining = AutomatedRetraining(
        runtime.store,
        runtime.clock,
        settings,
        ModelRegistry(runtime.store, settings.artifacts_dir, runtime.clock),
        sequential_status=runtime.sequential.status,
    )

    decision = retraining.should_retrain(*PAIR, record=False)

    assert decision["should_retrain"] is False and decision["triggers"] == []
    drift = decision["drift_check"]
    assert drift["triggered"] is False
    assert drift["sequential"]["alarm"] is True and drift["sequential"]["triggered"] is False
    assert "not a trigger" in drift["sequential"]["reason"]


def test_a_finished_retraining_refits_the_detector_and_ends_the_alarm(alarmed):
    runtime, _, _ = alarmed
    store, clock, monitor = runtime.store, runtime.clock, runtime.sequential
    started = clock.now()
    with store.session() as session:
        session.add(
            RetrainingRun(
                job_id="job-1",
                feature_set=PAIR[0],
                model_type=PAIR[1],
                trigger="drift",
                reasons=["sequential drift detector alarmed"],
                status="running",
                started_at=started,
            )
        )
    next_row = clock.now()
    rows_until(store, clock, next_row, 1, seed=1)
    while_running = monitor.advance("vader")
    assert while_running.refitted is None and while_running.status.alarm is True

    with store.session() as session:
        session.execute(
            update(RetrainingRun)
            .where(RetrainingRun.job_id == "job-1")
            .values(status="succeeded", decision="kept", finished_at=clock.now())
        )
    rows_until(store, clock, next_row + HOUR, 1, seed=2)
    refitted = monitor.advance("vader")

    finished = started + HOUR
    assert refitted.refitted == (
        f"retraining of vader/random_forest finished at {finished:%Y-%m-%d %H:%M} UTC (kept)"
    )
    status = refitted.status
    assert status.alarm is False and status.alarm_at is None
    assert status.windows.reference_end == next_row + 2 * HOUR  # the latest rows
    assert status.fit_reason == refitted.refitted
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(SequentialDetectorFit)) == 2
    assert runtime.sequential.status("vader").alarm is False


def test_a_rollback_refits_and_a_shadow_promotion_does_not(alarmed):
    runtime, _, _ = alarmed
    store, clock, monitor = runtime.store, runtime.clock, runtime.sequential
    ids = declare_champion(store, clock.now() - DAY)
    with store.session() as session:
        session.add(
            RetrainingRun(
                job_id="shadow-1",
                feature_set=PAIR[0],
                model_type=PAIR[1],
                trigger="shadow",  # a decision that trained nothing
                reasons=["shadow promotion"],
                status="succeeded",
                decision="deployed",
                started_at=clock.now(),
                finished_at=clock.now(),
            )
        )
    rows_until(store, clock, clock.now(), 1, seed=3)
    assert monitor.advance("vader").refitted is None

    with store.session() as session:
        session.add(
            ChampionChange(
                feature_set=PAIR[0],
                model_type=PAIR[1],
                model_version_id=ids[0],
                previous_model_version_id=ids[1],
                action="auto_rollback",
                actor="auto-rollback",
                reason="test",
                changed_at=clock.now(),
            )
        )
    rolled_back_at = clock.now()
    rows_until(store, clock, clock.now(), 1, seed=4)
    refitted = monitor.advance("vader")

    assert (
        refitted.refitted
        == f"rollback of vader/random_forest at {rolled_back_at:%Y-%m-%d %H:%M} UTC"
    )
    assert refitted.status.alarm is False


def test_a_changed_mean_time_between_false_alarms_refits(store, clock, settings, start_time):
    rows_until(store, clock, start_time, 14 * 24, seed=11)
    SequentialMonitor(store, clock, settings).advance("vader")
    clock.advance(hours=1)
    stricter = settings.model_copy(update={"drift_sequential_mtbf_days": 180})

    refitted = SequentialMonitor(store, clock, stricter).advance("vader")

    assert refitted.refitted == "the mean time between false alarms changed from 90 to 180 days"
    assert SequentialMonitor(store, clock, stricter).status("vader").mtbf_hours == 180 * 24
