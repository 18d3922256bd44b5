"""Prediction logging: off the request path, exactly once, surviving store outages."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from btcmlops.db.models import FeatureSnapshot, PredictionLog
from btcmlops.db.store import Store
from btcmlops.mlops.predictions.ids import (
    EPOCH,
    MAX_SEQUENCE,
    PredictionIdGenerator,
    register_node,
)
from btcmlops.mlops.predictions.queries import PredictionQueries
from btcmlops.mlops.predictions.spool import Spool
from btcmlops.mlops.predictions.writer import PredictionLogger

from support import wait_until

DEAD_URL = "postgresql+psycopg://nobody@127.0.0.1:1/nowhere"


def make_logger(store, clock, settings, node=1, **overrides):
    settings = settings.model_copy(update={"logging_flush_seconds": 0.02, **overrides})
    return PredictionLogger(
        store, clock, settings, PredictionIdGenerator(node), replay_interval_seconds=0.05
    ).start()


def log_one(logger, clock, i=0, feature_set="vader", prediction=1, confidence=0.6):
    return logger.log_prediction(
        feature_set=feature_set,
        model_type="random_forest",
        model_version="v1",
        prediction=prediction,
        probability_down=1 - confidence if prediction else confidence,
        probability_up=confidence if prediction else 1 - confidence,
        confidence=confidence,
        features={"ret_1h": 0.001 * i, "broken": float("nan")},
        response_time_ms=1.5,
        cached_features=True,
        bitcoin_price=40_000.0 + i,
        feature_ts=clock.now().replace(minute=0) - timedelta(hours=1),
    )


def stored_ids(store):
    with store.session() as session:
        return list(session.scalars(select(PredictionLog.id)))


def test_ids_are_unique_increasing_and_fit_in_53_bits():
    seconds = iter([EPOCH + 10] * (MAX_SEQUENCE + 5) + [EPOCH + 11] * 10)
    generator = PredictionIdGenerator(node=7, wall_seconds=lambda: next(seconds))
    ids = [generator.next_id() for _ in range(MAX_SEQUENCE + 10)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert max(ids) < 2**53


def test_ids_from_many_threads_never_collide():
    generator = PredictionIdGenerator(node=3)
    results: list[list[int]] = [[] for _ in range(4)]

    def work(slot):
        results[slot].extend(generator.next_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for chunk in results for i in chunk]
    assert len(set(every)) == 20_000


def test_two_registered_workers_get_different_nodes(store, clock):
    assert register_node(store, clock) != register_node(store, clock)


def test_every_logged_prediction_is_stored_once_with_its_id(store, clock, settings):
    logger = make_logger(store, clock, settings)
    ids = [log_one(logger, clock, i) for i in range(1_200)]
    assert logger.flush(timeout=30)
    logger.close()
    assert sorted(stored_ids(store)) == sorted(ids)
    with store.session() as session:
        row = session.get(PredictionLog, ids[5])
        snapshot = session.get(FeatureSnapshot, row.features_sha256)
        snapshots = session.scalar(select(func.count()).select_from(FeatureSnapshot))
    assert snapshot.feature_values == {"ret_1h": 0.005, "broken": None}
    assert snapshots == 1_200  # each record here has its own values; equal ones share a row
    assert row.target_ts - row.feature_ts == timedelta(hours=1)
    assert row.outcome_status == "pending"


def test_predictions_of_the_same_row_share_one_snapshot(store, clock, settings):
    logger = make_logger(store, clock, settings)
    shared = {"ret_1h": 0.01, "vol": float("inf")}
    ids = [
        logger.log_prediction(
            feature_set="vader",
            model_type="random_forest",
            model_version="v1",
            prediction=1,
            probability_down=0.4,
            probability_up=0.6,
            confidence=0.6,
            features=shared,
            response_time_ms=1.0,
            cached_features=True,
            bitcoin_price=40_000.0,
            feature_ts=clock.now(),
        )
        for _ in range(50)
    ]
    assert logger.flush()
    detail = PredictionQueries(store, clock).get_prediction(ids[0])
    assert detail["features"] == {"ret_1h": 0.01, "vol": None}
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(FeatureSnapshot)) == 1
    logger.close()


def test_store_outage_spools_and_replays_exactly_once(store, clock, settings):
    logger = make_logger(store, clock, settings)
    before = [log_one(logger, clock, i) for i in range(100)]
    assert logger.flush()

    from btcmlops.db.engine import make_engine

    logger.store = Store(make_engine(DEAD_URL))
    during = [log_one(logger, clock, i) for i in range(250)]
    assert logger.flush()
    assert logger.health().state == "spooling"
    assert logger.health().spooled >= 250

    logger.store = store  # the store comes back
    after = [log_one(logger, clock, i) for i in range(50)]
    assert logger.flush()
    logger.close()

    ids = stored_ids(store)
    assert len(ids) == len(set(ids)), "duplicates"
    assert sorted(ids) == sorted(before + during + after), "lost records"
    assert not list(settings.spool_dir.glob("predictions-*"))


def test_records_spooled_at_shutdown_are_replayed_by_the_next_process(store, clock, settings):
    from btcmlops.db.engine import make_engine

    logger = make_logger(store, clock, settings)
    logger.store = Store(make_engine(DEAD_URL))
    ids = [log_one(logger, clock, i) for i in range(40)]
    logger.close()  # store still down: everything goes to the spool
    assert stored_ids(store) == []
    spooled = list(settings.spool_dir.glob("predictions-*.jsonl"))
    assert len(spooled) == 1

    # The next process: a different pid owns the new logger; the old file is an orphan.
    next_logger = PredictionLogger(
        store,
        clock,
        settings,
        PredictionIdGenerator(2),
        spool=Spool(settings.spool_dir, pid=2**22 + 12345),
        replay_interval_seconds=0.01,
    )
    spooled[0].rename(settings.spool_dir / "predictions-999999.jsonl")  # a dead pid's file
    next_logger.start()
    log_one(next_logger, clock)
    assert next_logger.flush()
    next_logger.close()
    stored = stored_ids(store)
    assert set(ids) <= set(stored)
    assert len(stored) == len(set(stored)) == 41


def test_unwritable_spool_counts_the_loss_but_keeps_answering(store, clock, settings, tmp_path):
    from btcmlops.db.engine import make_engine

    logger = make_logger(store, clock, settings)
    logger.spool.directory.mkdir(parents=True, exist_ok=True)
    logger.spool.path.symlink_to("/dev/full")  # every write fails with ENOSPC, like a full disk
    logger.store = Store(make_engine(DEAD_URL))
    ids = [log_one(logger, clock, i) for i in range(30)]
    assert len(set(ids)) == 30  # every prediction still got its answer and id
    assert logger.flush()
    health = logger.health()
    assert health.lost == 30
    assert "lost" in (health.last_error or "")
    logger.close()


def commits_then_fail(store, *, times: int, stored: bool):
    """Make the next ``times`` commits of ``store`` fail, after the database committed
    (``stored``) or before: how a connection that drops at the commit looks to the writer."""
    remaining = [times]

    def fail(session):
        if remaining[0] > 0:
            remaining[0] -= 1
            raise OperationalError("COMMIT", {}, ConnectionError("connection dropped"))

    event.listen(store._sessions, "after_commit" if stored else "before_commit", fail)
    return lambda: event.remove(store._sessions, "after_commit" if stored else "before_commit",
                                fail)  # fmt: skip


@pytest.mark.parametrize("stored", [True, False])
def test_a_failed_commit_that_cannot_be_spooled_is_counted_as_the_store_says(
    store, clock, settings, stored
):
    logger = make_logger(store, clock, settings)
    logger.spool.directory.mkdir(parents=True, exist_ok=True)
    logger.spool.path.symlink_to("/dev/full")  # nothing can be spooled
    undo = commits_then_fail(store, times=1, stored=stored)
    ids = [log_one(logger, clock, i) for i in range(12)]
    assert logger.flush()
    undo()
    logger.spool.path.unlink()  # the disk has room again; the store answers the next ping
    wait_until(lambda: logger.health().state == "ok", timeout=10, what="the store to answer")
    health = logger.health()
    kept = set(stored_ids(store))
    # every answered prediction is stored or counted lost, never both, never neither
    assert health.lost == len(set(ids) - kept)
    assert health.written == len(kept) and kept <= set(ids)
    if stored:  # the failed commit had gone through: nothing was lost
        assert health.lost == 0 and kept == set(ids)
    else:
        assert health.lost > 0
    logger.close()
    assert logger.health().lost == health.lost


def test_accuracy_and_statistics_match_hand_counts(store, clock, settings):
    logger = make_logger(store, clock, settings)
    # 6 up predictions (4 right), 4 down predictions (1 right), 2 pending, 1 other set
    plan = [(1, 1, 0.7)] * 4 + [(1, 0, 0.6)] * 2 + [(0, 0, 0.55)] + [(0, 1, 0.65)] * 3
    ids = []
    for prediction, actual, confidence in plan:
        pid = log_one(logger, clock, prediction=prediction, confidence=confidence)
        ids.append((pid, actual))
    pending = [log_one(logger, clock) for _ in range(2)]
    log_one(logger, clock, feature_set="finbert")
    assert logger.flush()
    for pid, actual in ids:
        logger.update_prediction_outcome(pid, actual, 41_000.0)
    queries = PredictionQueries(store, clock)
    stats = queries.get_model_accuracy("vader", "random_forest", days=7)
    assert stats["total_predictions"] == 10
    assert stats["correct_predictions"] == 5
    assert stats["accuracy"] == pytest.approx(0.5)
    assert (stats["up_predictions"], stats["up_correct"]) == (6, 4)
    assert stats["up_accuracy"] == pytest.approx(4 / 6)
    assert (stats["down_predictions"], stats["down_correct"]) == (4, 1)
    assert stats["avg_confidence"] == pytest.approx((0.7 * 4 + 0.6 * 2 + 0.55 + 0.65 * 3) / 10)
    assert stats["avg_confidence_when_correct"] == pytest.approx((0.7 * 4 + 0.55) / 5)
    assert stats["avg_confidence_when_incorrect"] == pytest.approx((0.6 * 2 + 0.65 * 3) / 5)
    assert stats["pending_predictions"] == 2
    low, high = stats["accuracy_interval_95"]
    assert low < 0.5 < high

    totals = queries.get_prediction_statistics()
    assert totals["total_predictions"] == 13
    assert totals["predictions_with_outcomes"] == 10
    assert totals["overall_accuracy"] == pytest.approx(0.5)
    assert (totals["vader_predictions"], totals["finbert_predictions"]) == (12, 1)
    assert totals["pending_outcomes"] == 3
    assert totals["avg_response_time_ms"] == pytest.approx(1.5)
    recent = queries.get_recent_predictions("vader", only_with_outcomes=True, limit=3)
    assert len(recent) == 3 and all(r["actual_direction"] is not None for r in recent)
    assert pending[0] not in {r["id"] for r in recent}
    logger.close()


def test_accuracy_without_outcomes_is_null_with_a_message(store, clock, settings):
    logger = make_logger(store, clock, settings)
    log_one(logger, clock)
    assert logger.flush()
    stats = PredictionQueries(store, clock).get_model_accuracy("vader", "random_forest")
    assert stats["accuracy"] is None and "outcome" in stats["message"]
    logger.close()


def test_statistics_run_in_sql_not_python(store, clock, settings):
    logger = make_logger(store, clock, settings)
    for i in range(20):
        log_one(logger, clock, i)
    assert logger.flush()
    statements = []
    from sqlalchemy import event

    def capture(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        PredictionQueries(store, clock).get_model_accuracy("vader", "random_forest")
        PredictionQueries(store, clock).get_prediction_statistics()
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    aggregates = [s for s in statements if "prediction_logs" in s]
    assert len(aggregates) == 2
    assert all("sum(" in s.lower() for s in aggregates)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == 20
    logger.close()
