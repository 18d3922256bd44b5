"""What the daily checks and retraining reuse between calls answers exactly as a fresh read:
decoded feature rows, a drift comparison of the same rows, deserialised artifacts and the
untrusted-type audit of an artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sqlalchemy import delete, select

from btcmlops.clock import HOUR
from btcmlops.db.models import FeatureRow
from btcmlops.errors import ArtifactIntegrityError
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION, model_feature_names, monitored_feature_names
from btcmlops.mlops.drift.monitor import DriftDetector
from btcmlops.mlops.retraining.queries import VersionOutcomes
from btcmlops.modeling.artifacts import TypeAudit, VerifiedPipelines, sha256_hex, write_artifact
from btcmlops.modeling.feature_cache import FeatureFrameCache
from btcmlops.modeling.model_types import build_pipeline

from support import store_feature_rows

COLUMNS = monitored_feature_names("vader")[:6]


def _fresh(store, start, end, columns=COLUMNS) -> pd.DataFrame:
    return load_feature_frame(store, "vader", FEATURE_VERSION, columns, start=start, end=end)


def test_the_cache_answers_as_a_fresh_read_as_rows_arrive(store, start_time):
    cache = FeatureFrameCache(store)
    store_feature_rows(store, start_time, 48, seed=1)
    end = start_time + 48 * HOUR
    pd.testing.assert_frame_equal(
        cache.load("vader", FEATURE_VERSION, COLUMNS, start=start_time, end=end),
        _fresh(store, start_time, end),
    )
    store_feature_rows(store, end, 24, seed=2)
    for start, until in [(start_time + 5 * HOUR, end + 24 * HOUR), (None, None)]:
        pd.testing.assert_frame_equal(
            cache.load("vader", FEATURE_VERSION, COLUMNS, start=start, end=until),
            _fresh(store, start, until),
        )


def test_a_rebuild_with_new_values_is_read_again(store, start_time):
    cache = FeatureFrameCache(store)
    store_feature_rows(store, start_time, 30, seed=1)
    first = cache.load("vader", FEATURE_VERSION, COLUMNS)
    with store.session() as session:
        rows = list(session.scalars(select(FeatureRow).order_by(FeatureRow.ts)))
        rebuilt = [
            FeatureRow(
                feature_set=row.feature_set,
                feature_version=row.feature_version,
                ts=row.ts,
                close=row.close,
                feature_values={name: -value for name, value in row.feature_values.items()},
                missing_count=0,
                built_at=start_time + 40 * HOUR,
            )
            for row in rows
        ]
        session.execute(delete(FeatureRow))
        session.add_all(rebuilt)  # SQLite may hand the new rows the old ids
    again = cache.load("vader", FEATURE_VERSION, COLUMNS)
    pd.testing.assert_frame_equal(again, _fresh(store, None, None))
    np.testing.assert_allclose(again.to_numpy(), -first.to_numpy())


def test_an_empty_window_is_an_empty_frame_with_the_columns(store, start_time):
    frame = FeatureFrameCache(store).load("vader", FEATURE_VERSION, COLUMNS, start=start_time)
    pd.testing.assert_frame_equal(frame, _fresh(store, start_time, None))
    assert list(frame.columns) == COLUMNS


def test_reads_of_more_column_sets_than_it_keeps_are_still_exact(store, start_time):
    cache = FeatureFrameCache(store, max_entries=1)
    store_feature_rows(store, start_time, 30, seed=6)
    for columns in (COLUMNS, COLUMNS[:2], COLUMNS):
        pd.testing.assert_frame_equal(
            cache.load("vader", FEATURE_VERSION, columns),
            _fresh(store, None, None, columns),
        )


def test_training_data_through_the_cache_is_the_same(store, clock, settings, start_time):
    from btcmlops.modeling.training import load_training_data

    store_feature_rows(store, start_time, 60, seed=3)
    clock.set(start_time + 61 * HOUR)
    cache = FeatureFrameCache(store)
    columns = model_feature_names("vader")
    for _ in range(2):
        cached = load_training_data(
            store, "vader", clock=clock, settings=settings, columns=columns, frames=cache
        )
        fresh = load_training_data(store, "vader", clock=clock, settings=settings, columns=columns)
        pd.testing.assert_frame_equal(cached.features, fresh.features)


def test_a_repeated_drift_check_reuses_the_comparison_only_for_the_same_rows(
    store, clock, settings, start_time, monkeypatch
):
    store_feature_rows(store, start_time, 24 * 30, seed=4)
    clock.set(start_time + 24 * 30 * HOUR)
    detector = DriftDetector(store, clock, settings)
    compared = []
    import btcmlops.mlops.drift.monitor as monitor

    real = monitor.compare_features
    monkeypatch.setattr(
        monitor, "compare_features", lambda *a, **k: compared.append(1) or real(*a, **k)
    )
    first = detector.detect_feature_drift("vader", record=False)
    second = detector.detect_feature_drift("vader", record=False)
    assert len(compared) == 1
    assert first == second
    store_feature_rows(store, start_time + 24 * 30 * HOUR, 1, seed=5)
    clock.set(clock.now() + HOUR)
    third = detector.detect_feature_drift("vader", record=False)
    assert len(compared) == 2
    assert third == DriftDetector(store, clock, settings).detect_feature_drift(
        "vader", record=False
    )


# ----------------------------------------------------------------------------- artifacts


@pytest.fixture(scope="module")
def forest_bytes() -> bytes:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    y = (rng.random(300) > 0.5).astype(int)
    return sio.dumps(build_pipeline("random_forest", seed=1).fit(x, y))


def test_the_type_audit_answers_as_skops(forest_bytes):
    audit = TypeAudit()
    expected = sorted(sio.get_untrusted_types(data=forest_bytes))
    assert audit.untrusted_types(forest_bytes) == expected
    assert audit.untrusted_types(forest_bytes) == expected  # from its memory


def test_an_audit_of_other_types_is_not_answered_from_memory(forest_bytes):
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    y = (rng.random(300) > 0.5).astype(int)
    boosted = sio.dumps(build_pipeline("gradient_boosting", seed=1).fit(x, y))
    audit = TypeAudit()
    audit.untrusted_types(forest_bytes)
    assert audit.untrusted_types(boosted) == sorted(sio.get_untrusted_types(data=boosted))
    assert audit.untrusted_types(boosted) != audit.untrusted_types(forest_bytes)


def test_a_pipeline_loaded_again_is_the_same_object_until_its_file_changes(tmp_path, forest_bytes):
    path = tmp_path / "model.skops"
    write_artifact(path, forest_bytes)
    pipelines = VerifiedPipelines()
    expected = {"model_type": "random_forest", "feature_names": ["a", "b", "c", "d"]}
    first = pipelines.load(path, expected_sha256=sha256_hex(forest_bytes), label="m", **expected)
    again = pipelines.load(path, expected_sha256=sha256_hex(forest_bytes), label="m", **expected)
    assert again is first
    write_artifact(path, forest_bytes + b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not match the registry"):
        pipelines.load(path, expected_sha256=sha256_hex(forest_bytes), label="m", **expected)
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        pipelines.load(path, expected_sha256=sha256_hex(forest_bytes), label="m", **expected)


def test_outcomes_after_an_instant_are_the_tail(start_time):
    hours = pd.date_range(start_time, periods=5, freq="h")
    outcomes = VersionOutcomes(hours, np.array([1, 0, 1, 1, 0]), np.linspace(0.1, 0.9, 5))
    tail = outcomes.where(outcomes.target_ts > start_time + 2 * HOUR)
    assert list(tail.target_ts) == list(hours[3:])
    assert tail.actual.tolist() == [1, 0]
