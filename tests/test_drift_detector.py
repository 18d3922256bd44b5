"""Drift checks on the store: windows from the clock, model drift tests, summary, history,
the latest stored check (and its API answer)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from btcmlops.api.app import create_app
from btcmlops.clock import ManualClock, parse_utc
from btcmlops.db.models import ChampionChange, DriftReport, FeatureRow, PredictionLog
from btcmlops.features.schema import FEATURE_VERSION, feature_names, monitored_feature_names
from btcmlops.mlops.drift.monitor import DriftDetector

from support import bounded_in_message, registry_row

H = timedelta(hours=1)


def add_feature_rows(store, start, hours, shift_from=None, shift=0.0, seed=1):
    rng = np.random.default_rng(seed)
    names = feature_names("vader")
    rows = []
    for i in range(hours):
        values = rng.normal(size=len(names))
        if shift_from is not None and i >= shift_from:
            values[:10] += shift  # the first ten features (all monitored price returns) move
        rows.append(
            FeatureRow(
                feature_set="vader",
                feature_version=FEATURE_VERSION,
                ts=start + i * H,
                close=40_000.0,
                feature_values={n: float(v) for n, v in zip(names, values, strict=True)},
                missing_count=0,
                built_at=start,
            )
        )
    with store.session() as session:
        session.add_all(rows)


def add_predictions(store, start, count, accuracy, *, seed, first_id, version="v1", source="api"):
    """``count`` resolved predictions an hour apart with exactly round(accuracy*count) right."""
    rng = np.random.default_rng(seed)
    right = np.zeros(count, dtype=bool)
    right[: round(accuracy * count)] = True
    rng.shuffle(right)
    rows = []
    for i in range(count):
        predicted_at = start + i * (timedelta(days=1) / count)
        p_up = float(rng.uniform(0.5, 0.7))
        actual = 1 if right[i] else 0
        rows.append(
            PredictionLog(
                id=first_id + i,
                feature_set="vader",
                model_type="random_forest",
                model_version=version,
                source=source,
                prediction=1,
                probability_down=1 - p_up,
                probability_up=p_up,
                confidence=p_up,
                feature_ts=predicted_at,
                target_ts=predicted_at + H,
                response_time_ms=1.0,
                cached_features=True,
                predicted_at=predicted_at,
                outcome_status="resolved",
                actual_direction=actual,
                prediction_correct=bool(right[i]),
            )
        )
    with store.session() as session:
        session.add_all(rows)


@pytest.fixture
def detector(store, clock, settings):
    return DriftDetector(store, clock, settings)


def test_feature_drift_uses_clock_windows_and_only_monitored_features(
    store, clock, start_time, detector
):
    add_feature_rows(store, start_time, 8 * 24, shift_from=7 * 24, shift=2.0)
    clock.set(start_time + 8 * 24 * H)
    analysis = detector.detect_feature_drift("vader", reference_days=7, current_days=1)
    assert analysis["status"] == "success"
    assert (analysis["reference_samples"], analysis["current_samples"]) == (168, 24)
    tested = {row["feature"] for row in analysis["drift_results"]}
    assert tested <= set(monitored_feature_names("vader"))
    assert "close" not in tested and "hour_sin" not in tested
    shifted = set(feature_names("vader")[:10]) & set(monitored_feature_names("vader"))
    assert analysis["drift_severity"] in ("medium", "high")
    assert set(analysis["top_features"]) <= shifted
    assert analysis["drift_results"][0]["feature"] in shifted


def test_each_row_of_the_feature_check_says_whether_its_pvalue_is_a_bound(
    store, clock, start_time, detector
):
    add_feature_rows(store, start_time, 8 * 24, shift_from=7 * 24, shift=2.0)
    clock.set(start_time + 8 * 24 * H)
    analysis = detector.detect_feature_drift("vader", reference_days=7, current_days=1)
    rows = analysis["drift_results"]
    assert all(isinstance(row["ks_pvalue_exact"], bool) for row in rows)
    bounded = {row["feature"] for row in rows if not row["ks_pvalue_exact"]}
    assert bounded  # 168 = 7 x 24 rows: the calm and the clearly shifted are decided by bounds
    assert bounded == bounded_in_message(analysis["message"], [row["feature"] for row in rows])


def test_a_check_stored_before_rows_said_whether_pvalues_are_bounds_is_still_served(
    store, clock, start_time, app_context
):
    add_feature_rows(store, start_time, 10 * 24)
    clock.set(start_time + 10 * 24 * H)
    DriftDetector(store, clock, app_context.settings).get_drift_summary("vader", "random_forest")
    with store.session() as session:
        stored = session.scalars(select(DriftReport).where(DriftReport.kind == "feature")).one()
        old_rows = [
            {key: value for key, value in row.items() if not key.endswith("_exact")}
            for row in stored.report["drift_results"]
        ]
        stored.report = {**stored.report, "drift_results": old_rows}
    pair = {"feature_set": "vader", "model_type": "random_forest"}
    with TestClient(create_app(app_context)) as client:
        latest = client.get("/drift/latest", params=pair)

    assert latest.status_code == 200
    assert latest.json()["features"]["drift_results"] == old_rows


def test_window_parameters_are_honoured(store, clock, start_time, detector):
    add_feature_rows(store, start_time, 10 * 24)
    clock.set(start_time + 10 * 24 * H)
    analysis = detector.detect_feature_drift("vader", reference_days=3, current_days=2)
    assert (analysis["reference_samples"], analysis["current_samples"]) == (72, 48)


def test_too_few_rows_is_a_status_not_a_severity(store, clock, start_time, detector):
    add_feature_rows(store, start_time, 30)
    clock.set(start_time + 30 * H)
    analysis = detector.detect_feature_drift("vader")
    assert analysis["status"] == "insufficient_data"
    assert analysis["drift_severity"] is None


def test_a_real_15_point_drop_over_200_per_side_is_high(store, clock, start_time, detector):
    add_predictions(store, start_time, 200, 0.60, seed=1, first_id=1)
    add_predictions(store, start_time + timedelta(days=1), 200, 0.45, seed=2, first_id=1000)
    clock.set(start_time + timedelta(days=2))
    analysis = detector.detect_model_drift(
        "vader", "random_forest", reference_days=1, current_days=1
    )
    assert analysis["status"] == "success"
    assert analysis["accuracy"]["drop"] == pytest.approx(0.15)
    assert analysis["accuracy"]["drift_detected"] is True
    assert analysis["drift_severity"] == "high"


def make_champion(store, version, took_over):
    """A registry row for ``version`` as the vader/random_forest champion since ``took_over``."""
    with store.session() as session:
        row = registry_row(version, "champion", took_over)
        session.add(row)
        session.flush()
        session.add(
            ChampionChange(
                feature_set="vader",
                model_type="random_forest",
                model_version_id=row.id,
                action="deploy",
                actor="test",
                reason="test",
                changed_at=took_over,
            )
        )


def test_model_drift_compares_one_version_and_cuts_the_window_at_its_takeover(
    store, clock, start_time, detector
):
    # v1 served day 0 well; v2 took over at day 1 and served days 1 and 2; v3 is a shadow
    add_predictions(store, start_time, 200, 0.80, seed=1, first_id=1, version="v1")
    add_predictions(
        store, start_time + timedelta(days=1), 200, 0.60, seed=2, first_id=1000, version="v2"
    )
    add_predictions(
        store, start_time + timedelta(days=2), 200, 0.58, seed=3, first_id=2000, version="v2"
    )
    add_predictions(
        store,
        start_time + timedelta(days=2),
        200,
        0.20,
        seed=4,
        first_id=3000,
        version="v3",
        source="shadow",
    )
    make_champion(store, "v2", start_time + timedelta(days=1))
    clock.set(start_time + timedelta(days=3))
    analysis = detector.detect_model_drift(
        "vader", "random_forest", reference_days=2, current_days=1
    )
    assert analysis["model_version"] == "v2"
    assert "v2" in analysis["window_note"]
    # v1's excellent day 0 and the bad shadow are not in either window
    assert analysis["reference_predictions"] == 200 and analysis["current_predictions"] == 200
    assert analysis["accuracy"]["reference"] == pytest.approx(0.60)
    assert analysis["accuracy"]["current"] == pytest.approx(0.58)
    assert analysis["drift_severity"] == "none"


def test_a_5_point_difference_over_40_per_side_is_not_flagged(store, clock, start_time, detector):
    add_predictions(store, start_time, 40, 0.55, seed=3, first_id=1)
    add_predictions(store, start_time + timedelta(days=1), 40, 0.50, seed=4, first_id=1000)
    clock.set(start_time + timedelta(days=2))
    analysis = detector.detect_model_drift(
        "vader", "random_forest", reference_days=1, current_days=1
    )
    assert analysis["status"] == "success"
    assert analysis["accuracy"]["drift_detected"] is False
    assert analysis["drift_severity"] == "none"


def test_the_model_drift_level_is_a_setting(store, clock, start_time, settings):
    # 60% vs 46% on 100 each: one-sided p = 0.024, real at 0.05, not at 0.01
    add_predictions(store, start_time, 100, 0.60, seed=7, first_id=1)
    add_predictions(store, start_time + timedelta(days=1), 100, 0.46, seed=8, first_id=1000)
    clock.set(start_time + timedelta(days=2))
    verdicts = {}
    for alpha in (0.05, 0.01):
        strict = settings.model_copy(update={"model_drift_alpha": alpha})
        analysis = DriftDetector(store, clock, strict).detect_model_drift(
            "vader", "random_forest", reference_days=1, current_days=1, record=False
        )
        assert 0.01 < analysis["accuracy"]["p_value"] < 0.05
        assert analysis["accuracy"]["alpha"] == alpha
        verdicts[alpha] = analysis["drift_severity"]
    assert verdicts == {0.05: "high", 0.01: "none"}


def test_model_drift_needs_minimum_counts(store, clock, start_time, detector):
    add_predictions(store, start_time, 20, 0.6, seed=5, first_id=1)
    add_predictions(store, start_time + timedelta(days=1), 20, 0.2, seed=6, first_id=1000)
    clock.set(start_time + timedelta(days=2))
    analysis = detector.detect_model_drift(
        "vader", "random_forest", reference_days=1, current_days=1
    )
    assert analysis["status"] == "insufficient_data" and analysis["drift_severity"] is None


def test_calibration_matches_the_offline_definitions(store, clock, start_time, detector):
    from btcmlops.modeling.evaluation import expected_calibration_error

    add_predictions(store, start_time + timedelta(days=1), 100, 0.6, seed=7, first_id=1)
    clock.set(start_time + timedelta(days=2))
    analysis = detector.detect_model_drift(
        "vader", "random_forest", reference_days=1, current_days=1
    )
    with store.session() as session:
        rows = session.query(PredictionLog.probability_up, PredictionLog.actual_direction).all()
    p = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    assert analysis["calibration"]["current_ece"] == pytest.approx(expected_calibration_error(y, p))
    assert analysis["calibration"]["current_brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert analysis["confidence"]["current_calibration_gap"] == pytest.approx(p.mean() - 0.6)


def test_summary_takes_the_worst_real_severity_and_records_every_check(
    store, clock, start_time, detector
):
    add_feature_rows(store, start_time, 8 * 24)
    add_predictions(store, start_time + timedelta(days=6), 200, 0.62, seed=8, first_id=1)
    add_predictions(store, start_time + timedelta(days=7), 200, 0.44, seed=9, first_id=1000)
    clock.set(start_time + 8 * 24 * H)
    summary = detector.get_drift_summary("vader", "random_forest", reference_days=1, current_days=1)
    assert summary["model_drift"]["drift_severity"] == "high"
    assert summary["overall_severity"] == "high"
    assert any("ACTION" in note for note in summary["recommendations"])
    with store.session() as session:
        kinds = sorted(kind for (kind,) in session.query(DriftReport.kind))
    assert kinds == ["feature", "model", "summary"]
    history = detector.history("vader", days=30)
    assert [row["kind"] for row in history] == ["feature", "model", "summary"]


def test_insufficient_model_data_never_outranks_feature_severity(
    store, clock, start_time, detector
):
    add_feature_rows(store, start_time, 8 * 24, shift_from=7 * 24, shift=2.0)
    clock.set(start_time + 8 * 24 * H)
    summary = detector.get_drift_summary("vader", "random_forest")
    assert summary["model_drift"]["status"] == "insufficient_data"
    assert summary["overall_severity"] == summary["feature_drift"]["drift_severity"]
    assert summary["overall_severity"] in ("medium", "high")


def test_distribution_shares_sum_to_one(store, clock, start_time, detector):
    add_feature_rows(store, start_time, 8 * 24, shift_from=7 * 24, shift=2.0)
    clock.set(start_time + 8 * 24 * H)
    shown = detector.distribution("vader", feature_names("vader")[1])
    assert sum(shown["reference_share"]) == pytest.approx(1.0)
    assert sum(shown["current_share"]) == pytest.approx(1.0)
    assert len(shown["edges"]) == len(shown["reference_share"]) + 1


def test_a_feature_set_without_rows_is_insufficient_data_not_an_error(store, clock, detector):
    analysis = detector.detect_feature_drift("finbert")
    assert analysis["status"] == "insufficient_data"
    summary = detector.get_drift_summary("finbert", "random_forest")
    assert summary["overall_severity"] is None and summary["status"] == "insufficient_data"


def test_latest_is_none_until_a_check_is_stored(store, clock, start_time, detector):
    add_feature_rows(store, start_time, 10 * 24)
    clock.set(start_time + 10 * 24 * H)
    assert detector.latest("vader", "random_forest") is None
    detector.get_drift_summary("vader", "random_forest", record=False)  # a read, not stored
    assert detector.latest("vader", "random_forest") is None


def test_latest_is_the_pairs_newest_summary_with_the_checks_recorded_with_it(
    store, clock, start_time, detector
):
    add_feature_rows(store, start_time, 12 * 24, shift_from=11 * 24, shift=2.0)
    clock.set(start_time + 10 * 24 * H)
    detector.get_drift_summary("vader", "random_forest")  # the day before the shift
    checked_at = start_time + 12 * 24 * H
    clock.set(checked_at)
    newest = detector.get_drift_summary("vader", "random_forest")
    clock.set(checked_at + timedelta(minutes=5))
    detector.get_drift_summary("vader", "logistic_regression")  # another pair, stored after

    stored = detector.latest("vader", "random_forest")

    assert stored is not None
    assert (stored.checked_at, stored.feature_set, stored.model_type) == (
        checked_at,
        "vader",
        "random_forest",
    )
    assert stored.summary["overall_severity"] == newest["overall_severity"]
    assert newest["overall_severity"] in ("medium", "high")
    assert stored.features is not None and stored.model is not None
    assert stored.features["windows"]["current_end"] == checked_at.isoformat()
    assert stored.features["drift_severity"] == newest["feature_drift"]["drift_severity"]
    # the feature check of this pair's summary, not the one stored later for the other pair
    assert stored.features["timestamp"] == stored.summary["timestamp"]
    assert (stored.model["model_type"], stored.model["timestamp"]) == (
        "random_forest",
        stored.summary["timestamp"],
    )


def test_latest_sees_only_checks_stored_up_to_the_clock(
    store, clock, start_time, settings, detector
):
    add_feature_rows(store, start_time, 12 * 24)
    first = start_time + 10 * 24 * H
    clock.set(first)
    detector.get_drift_summary("vader", "random_forest")
    clock.set(start_time + 12 * 24 * H)
    detector.get_drift_summary("vader", "random_forest")

    earlier = DriftDetector(store, ManualClock(first + H), settings)  # a replay of that day
    stored = earlier.latest("vader", "random_forest")

    assert stored is not None and stored.checked_at == first


def test_the_api_serves_the_latest_stored_check_and_the_severity_order(
    store, clock, start_time, app_context
):
    add_feature_rows(store, start_time, 10 * 24, shift_from=9 * 24, shift=2.0)
    clock.set(start_time + 10 * 24 * H)
    pair = {"feature_set": "vader", "model_type": "random_forest"}
    with TestClient(create_app(app_context)) as client:
        nothing = client.get("/drift/latest", params=pair)
        summary = client.get("/drift/summary", params={**pair, "record": True}).json()["summary"]
        features = client.get("/drift/features", params={"feature_set": "vader"}).json()
        latest = client.get("/drift/latest", params=pair)
        history = client.get("/drift/history", params={"feature_set": "vader"}).json()

    assert nothing.status_code == 200
    assert nothing.json()["status"] == "none" and nothing.json()["summary"] is None
    assert "00:10 UTC" in nothing.json()["message"]
    assert latest.status_code == 200
    body = latest.json()
    assert (body["status"], body["feature_set"], body["model_type"]) == (
        "stored",
        "vader",
        "random_forest",
    )
    assert parse_utc(body["checked_at"]) == start_time + 10 * 24 * H
    assert body["summary"]["overall_severity"] == summary["overall_severity"]
    assert body["summary"]["recommendations"] == summary["recommendations"]
    assert body["features"]["drift_severity"] == summary["feature_drift"]["drift_severity"]
    assert body["features"].keys() == features["drift_analysis"].keys()
    assert body["model"]["status"] == summary["model_drift"]["status"] == "insufficient_data"
    assert history["severity_order"] == ["none", "low", "medium", "high"]
    assert [row["kind"] for row in history["reports"]] == ["feature", "model", "summary"]
