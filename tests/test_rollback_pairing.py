"""The hourly rollback check pairs two versions' outcomes in SQL exactly as the paired-hours
reader does in Python."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from btcmlops.db.models import PredictionLog
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.deployment_pairing import DeploymentPairing, paired_counts

OLD, NEW = "vader-random_forest-old", "vader-random_forest-new"


def log_row(row_id, version, feature_ts, status, actual, p_up):  # type: ignore[no-untyped-def]
    return PredictionLog(
        id=row_id,
        feature_set="vader",
        model_type="random_forest",
        model_version=version,
        prediction=int(p_up > 0.5),
        probability_down=1 - p_up,
        probability_up=p_up,
        confidence=0.6,
        feature_ts=feature_ts,
        target_ts=feature_ts + timedelta(hours=1),
        response_time_ms=1.0,
        cached_features=True,
        predicted_at=feature_ts,
        source="scheduled",
        outcome_status=status,
        actual_direction=actual if status == "resolved" else None,
    )


def test_paired_counts_equal_the_paired_hours_counts(store, start_time):
    """Both versions on most hours, some hours twice (an API call beside the hourly job),
    some pending or expired, a few outside the window."""
    rng = np.random.default_rng(4)
    rows, next_id = [], 1
    for hour in range(300):
        at = start_time + timedelta(hours=hour)
        actual = int(rng.random() < 0.5)
        for version in (OLD, NEW):
            for _ in range(1 + int(rng.random() < 0.15)):
                if rng.random() < 0.1:
                    continue
                draw = rng.random()
                status = "pending" if draw < 0.05 else "expired" if draw < 0.1 else "resolved"
                p_up = 0.5 if rng.random() < 0.03 else float(rng.random())
                # a manual outcome may disagree with the prices: the challenger's counts
                seen = actual if rng.random() < 0.97 else 1 - actual
                rows.append(log_row(next_id, version, at, status, seen, p_up))
                next_id += int(rng.integers(1, 4))
    with store.session() as session:
        session.add_all(rows)
    since, until = start_time + timedelta(hours=20), start_time + timedelta(hours=280)

    expected = queries.paired_hours(store, "BTCUSD", OLD, NEW, since, until, with_last_hour=False)
    counts = paired_counts(store, OLD, NEW, since, until)

    assert counts == expected.counts()
    assert counts.hours > 150


def test_paired_counts_of_versions_without_outcomes_are_zero(store, start_time):
    counts = paired_counts(store, OLD, NEW, start_time, start_time + timedelta(days=1))
    assert counts.hours == 0
    assert (
        counts
        == queries.paired_hours(
            store,
            "BTCUSD",
            OLD,
            NEW,
            start_time,
            start_time + timedelta(days=1),
            with_last_hour=False,
        ).counts()
    )


def test_the_kept_pairing_reads_only_new_outcomes_and_counts_as_a_full_read(store, start_time):
    """Outcomes resolved in hourly batches, a few late and a few older duplicates resolved
    after a newer row of the same hour: after every batch the kept pairing's counts equal a
    full read's (the log-loss sum up to its summation order)."""
    from sqlalchemy import update

    rng = np.random.default_rng(5)
    rows, next_id, due = [], 1, {}
    for hour in range(200):
        at = start_time + timedelta(hours=hour)
        actual = int(rng.random() < 0.5)
        for version in (OLD, NEW):
            for _ in range(1 + int(rng.random() < 0.15)):
                if rng.random() < 0.1:
                    continue
                rows.append(log_row(next_id, version, at, "pending", None, float(rng.random())))
                # most resolve the hour after their target, some later, one in ten never
                delay = 2 if rng.random() < 0.8 else int(rng.integers(3, 30))
                if rng.random() > 0.1:
                    due[next_id] = (hour + delay, actual)
                next_id += int(rng.integers(1, 4))
    with store.session() as session:
        session.add_all(rows)
    since = start_time + timedelta(hours=10)
    pairing = DeploymentPairing(OLD, NEW, since)
    for step in range(0, 240):
        now = start_time + timedelta(hours=step)
        ready = [row_id for row_id, (at, _) in due.items() if at == step]
        with store.session() as session:
            for row_id in ready:
                session.execute(
                    update(PredictionLog)
                    .where(PredictionLog.id == row_id)
                    .values(
                        outcome_status="resolved",
                        actual_direction=due[row_id][1],
                        outcome_recorded_at=now,
                    )
                )
        if step % 7 and step != 239:
            continue  # the check does not run every hour here: batches pile up
        kept = pairing.counts(store)
        full = paired_counts(store, OLD, NEW, since, now)
        assert replace(kept, challenger_log_loss_sum=0.0) == replace(
            full, challenger_log_loss_sum=0.0
        )
        assert kept.challenger_log_loss_sum == pytest.approx(full.challenger_log_loss_sum)
    assert kept.hours > 100
