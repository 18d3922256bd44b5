"""Outcome resolution from price bars through the one label: ties, gaps, expiry, idempotence."""

from __future__ import annotations

from datetime import timedelta

from btcmlops.db.models import PredictionLog
from btcmlops.ingest.sources import Bar
from btcmlops.ingest.storage import store_bars
from btcmlops.mlops.predictions.outcomes import resolve_outcomes

H = timedelta(hours=1)


def add_bars(store, clock, start, closes, skip=()):
    bars = [
        Bar(start + i * H, c, c + 5, c - 5, c, 1.0) for i, c in enumerate(closes) if i not in skip
    ]
    store_bars(store, bars, symbol="BTCUSD", source="test", clock=clock)


def add_prediction(store, pid, feature_ts, prediction, predicted_at):
    with store.session() as session:
        session.add(
            PredictionLog(
                id=pid,
                feature_set="vader",
                model_type="random_forest",
                model_version="v1",
                prediction=prediction,
                probability_down=0.4,
                probability_up=0.6,
                confidence=0.6,
                feature_ts=feature_ts,
                target_ts=feature_ts + H,
                response_time_ms=1.0,
                cached_features=True,
                predicted_at=predicted_at,
                bitcoin_price_at_prediction=None,
            )
        )


def outcome(store, pid):
    with store.session() as session:
        row = session.get(PredictionLog, pid)
        return (
            row.outcome_status,
            row.actual_direction,
            row.prediction_correct,
            row.bitcoin_price_1h_later,
        )


def test_outcomes_follow_the_label_including_ties(store, clock, start_time):
    add_bars(store, clock, start_time, [100.0, 101.0, 101.0, 99.0, 99.5])
    add_prediction(store, 1, start_time, 1, start_time + H)  # 100 -> 101: up, right
    add_prediction(store, 2, start_time + H, 1, start_time + 2 * H)  # 101 -> 101: tie = down
    add_prediction(store, 3, start_time + 2 * H, 0, start_time + 3 * H)  # 101 -> 99: down, right
    clock.set(start_time + 5 * H)
    summary = resolve_outcomes(store, clock=clock, symbol="BTCUSD")
    assert summary.resolved == 3
    assert outcome(store, 1) == ("resolved", 1, True, 101.0)
    assert outcome(store, 2) == ("resolved", 0, False, 101.0)
    assert outcome(store, 3) == ("resolved", 0, True, 99.0)
    with store.session() as session:
        row = session.get(PredictionLog, 3)
        assert abs(row.price_change_pct - 100 * (99 / 101 - 1)) < 1e-9
        assert row.bitcoin_price_at_prediction == 101.0
        assert row.outcome_recorded_at == clock.now()


def test_a_prediction_is_not_resolved_before_its_target_bar_closes(store, clock, start_time):
    add_bars(store, clock, start_time, [100.0, 101.0])
    add_prediction(store, 1, start_time, 1, start_time + H)
    clock.set(start_time + 2 * H - timedelta(minutes=1))
    assert resolve_outcomes(store, clock=clock, symbol="BTCUSD").resolved == 0
    assert outcome(store, 1)[0] == "pending"
    clock.set(start_time + 2 * H)
    assert resolve_outcomes(store, clock=clock, symbol="BTCUSD").resolved == 1


def test_a_missing_bar_waits_for_the_grace_period_then_expires(store, clock, start_time):
    add_bars(store, clock, start_time, [100.0, 101.0, 102.0], skip={1})
    add_prediction(store, 1, start_time, 1, start_time + H)
    clock.set(start_time + 2 * H + timedelta(hours=5))
    summary = resolve_outcomes(store, clock=clock, symbol="BTCUSD", grace_hours=6)
    assert (summary.resolved, summary.expired, summary.still_pending) == (0, 0, 1)
    clock.set(start_time + 2 * H + timedelta(hours=6))
    summary = resolve_outcomes(store, clock=clock, symbol="BTCUSD", grace_hours=6)
    assert (summary.expired, summary.still_pending) == (1, 0)
    assert outcome(store, 1) == ("expired", None, None, None)


def test_a_late_bar_within_grace_still_resolves(store, clock, start_time):
    add_bars(store, clock, start_time, [100.0])
    add_prediction(store, 1, start_time, 0, start_time + H)
    clock.set(start_time + 4 * H)
    assert resolve_outcomes(store, clock=clock, symbol="BTCUSD").resolved == 0
    add_bars(store, clock, start_time + H, [98.0])
    assert resolve_outcomes(store, clock=clock, symbol="BTCUSD").resolved == 1
    assert outcome(store, 1)[:3] == ("resolved", 0, True)


def test_resolution_is_idempotent_and_leaves_manual_outcomes_alone(store, clock, start_time):
    add_bars(store, clock, start_time, [100.0, 101.0, 102.0])
    add_prediction(store, 1, start_time, 1, start_time + H)
    add_prediction(store, 2, start_time + H, 1, start_time + 2 * H)
    with store.session() as session:
        manual = session.get(PredictionLog, 2)
        manual.outcome_status, manual.actual_direction, manual.prediction_correct = (
            "resolved",
            0,
            False,
        )
    clock.set(start_time + 10 * H)
    first = resolve_outcomes(store, clock=clock, symbol="BTCUSD")
    second = resolve_outcomes(store, clock=clock, symbol="BTCUSD")
    assert (first.resolved, second.resolved) == (1, 0)
    assert outcome(store, 2)[:3] == ("resolved", 0, False)
