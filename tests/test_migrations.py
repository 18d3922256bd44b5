"""The migrations are the schema: after ``upgrade`` the database matches the models exactly."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.db import migrate
from btcmlops.db.engine import make_engine
from btcmlops.db.models import Base, FeatureRow
from btcmlops.db.store import Store
from btcmlops.errors import SchemaTooNewError
from btcmlops.features.schema import FEATURE_VERSION
from btcmlops.mlops.drift.sequential_monitor import SequentialMonitor


def test_migrations_produce_the_models_schema(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        before, after = migrate.upgrade(engine)
        assert before is None
        assert after == migrate.head_revision()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_second_upgrade_is_a_no_op(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine)
        before, after = migrate.upgrade(engine)
        assert before == after == migrate.head_revision()
        assert migrate.schema_status(engine) == "current"
    finally:
        engine.dispose()


def test_store_refuses_a_database_newer_than_its_code(empty_database_url):
    Store.open(empty_database_url).close()
    engine = make_engine(empty_database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(SchemaTooNewError, match="9999_from_the_future"):
        Store.open(empty_database_url)


def test_fresh_database_is_upgraded_by_the_store_itself(empty_database_url):
    store = Store.open(empty_database_url)
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    finally:
        store.close()


def test_upgrade_moves_logged_features_into_shared_snapshots(empty_database_url):
    from alembic import command
    from sqlalchemy import func, select

    from btcmlops.db.models import FeatureSnapshot, PredictionLog

    engine = make_engine(empty_database_url)
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        for pid, values in ((1, {"a": 1.0}), (2, {"a": 1.0}), (3, {"a": 2.0})):
            connection.execute(
                text(
                    "INSERT INTO prediction_logs (id, feature_set, model_type, model_version, "
                    "prediction, probability_down, probability_up, confidence, features_json, "
                    "feature_ts, target_ts, imputed_features, source, response_time_ms, "
                    "cached_features, predicted_at, outcome_status) VALUES (:id, 'vader', 'rf', "
                    "'v1', 1, 0.4, 0.6, 0.6, :values, '2024-01-01 00:00:00', "
                    "'2024-01-01 01:00:00', 0, 'api', 1.0, true, '2024-01-01 01:00:00', "
                    "'pending')"
                ),
                {"id": pid, "values": json.dumps(values)},
            )
    migrate.upgrade(engine)
    store = Store(engine)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(FeatureSnapshot)) == 2
        first, second, third = (session.get(PredictionLog, pid) for pid in (1, 2, 3))
        assert first.features_sha256 == second.features_sha256 != third.features_sha256
        assert session.get(FeatureSnapshot, third.features_sha256).feature_values == {"a": 2.0}
    engine.dispose()


def test_upgrade_adds_the_sequential_detector_to_a_database_with_history(empty_database_url):
    from alembic import command

    engine = make_engine(empty_database_url)
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            text(
                "INSERT INTO feature_rows (feature_set, feature_version, ts, close, "
                "feature_values, missing_count, built_at) VALUES ('vader', :version, "
                "'2024-01-01 00:00:00', 40000.0, :values, 0, '2024-01-01 01:00:00')"
            ),
            {"version": FEATURE_VERSION, "values": json.dumps({"log_ret_1h": 0.01})},
        )
    assert "sequential_detectors" not in inspect(engine).get_table_names()

    before, after = migrate.upgrade(engine)

    assert (before, after) == ("0003", migrate.head_revision())
    tables = set(inspect(engine).get_table_names())
    assert {"sequential_detectors", "sequential_points"} <= tables
    store = Store(engine)
    with store.session() as session:
        assert session.scalar(select(FeatureRow.feature_values)) == {"log_ret_1h": 0.01}
    clock = ManualClock(parse_utc("2024-01-01T05:00:00Z"))
    settings = Settings(database_url=empty_database_url, _env_file=None)
    status = SequentialMonitor(store, clock, settings).advance("vader").status
    assert status.reason == "needs 14 days of feature rows; the store holds 0.0"
    engine.dispose()
