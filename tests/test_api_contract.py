"""Walk the API's original endpoints against a real ``btcmlops serve`` process on a temporary
home and check that each answer has the fields listed here, the contract clients are written
against: fields may be added, never renamed or dropped."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.testing import build_trained_home

from support import free_port, fresh_database, wait_until_listening

# Starts a real `btcmlops serve` process over a trained home.
pytestmark = pytest.mark.e2e

END = parse_utc("2024-03-01T00:00:00Z")

PREDICTION_FIELDS = {
    "success",
    "prediction",
    "model_info",
    "performance",
    "timestamp",
    "prediction_id",
}
PREDICTION_BODY = {
    "direction",
    "direction_numeric",
    "probability",
    "confidence",
    "accuracy",
    "accuracy_period",
}
RECORD_FIELDS = {
    "id", "feature_set", "model_type", "model_version", "prediction", "probability_down",
    "probability_up", "confidence", "actual_direction", "prediction_correct",
    "bitcoin_price_at_prediction", "bitcoin_price_1h_later", "price_change_pct",
    "response_time_ms", "cached_features", "predicted_at", "outcome_recorded_at",
}  # fmt: skip
ACCURACY_FIELDS = {
    "feature_set", "model_type", "period_days", "total_predictions", "correct_predictions",
    "incorrect_predictions", "accuracy", "up_predictions", "up_correct", "up_accuracy",
    "down_predictions", "down_correct", "down_accuracy", "avg_confidence",
    "avg_confidence_when_correct", "avg_confidence_when_incorrect",
}  # fmt: skip
STATISTICS_FIELDS = {
    "total_predictions", "predictions_with_outcomes", "correct_predictions", "overall_accuracy",
    "vader_predictions", "finbert_predictions", "avg_response_time_ms", "pending_outcomes",
}  # fmt: skip


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp(f"contract-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        build_trained_home(store, settings, END)
        store.close()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
        env.update(
            BTCMLOPS_HOME=str(settings.home),
            BTCMLOPS_DATABASE_URL=url,
            BTCMLOPS_NOW=END.isoformat(),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "btcmlops", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_listening(base, process)
            with httpx.Client(base_url=base, timeout=30) as client:
                yield client
        finally:
            process.terminate()
            process.wait(timeout=30)


def fields(payload: dict, expected: set[str]) -> None:
    missing = expected - set(payload)
    assert not missing, f"missing fields {sorted(missing)} in {sorted(payload)}"


def test_root_and_health(server):
    root = server.get("/").json()
    fields(root, {"name", "version", "status", "endpoints"})
    seed_paths = [
        "/",
        "/health",
        "/predict",
        "/predict/both",
        "/models",
        "/models/reload",
        "/predictions/recent",
        "/predictions/accuracy",
        "/predictions/statistics",
    ]
    for path in seed_paths:
        assert path in root["endpoints"].values(), path
    health = server.get("/health").json()
    fields(health, {"status", "timestamp", "loaded_models"})
    assert health["status"] in ("healthy", "degraded", "unhealthy")


def test_predict_and_predict_both(server):
    body = server.post("/predict", params={"feature_set": "vader"}).json()
    fields(body, PREDICTION_FIELDS)
    fields(body["prediction"], PREDICTION_BODY)
    fields(body["prediction"]["probability"], {"down", "up"})
    fields(body["model_info"], {"feature_set", "model_type", "model_version", "features_used"})
    fields(body["performance"], {"response_time_ms", "cached_features"})
    both = server.post("/predict/both").json()
    fields(both, {"vader", "finbert", "agreement", "performance"})
    fields(both["vader"], PREDICTION_FIELDS)
    fields(both["finbert"], {"success", "error"})
    fields(both["performance"], {"total_response_time_ms"})


def test_models_and_reload(server):
    models = server.get("/models").json()
    fields(models, {"success", "available_models"})
    fields(models["available_models"], {"vader", "finbert"})
    fields(models["available_models"]["vader"][0], {"model_type", "versions", "latest", "champion"})
    reload = server.post(
        "/models/reload", params={"feature_set": "vader", "model_type": "random_forest"}
    )
    assert reload.status_code == 200, reload.text
    fields(reload.json(), {"success", "message", "model_info"})
    fields(reload.json()["model_info"], {"feature_set", "model_type", "version", "loaded_at"})


def test_prediction_log_endpoints(server):
    server.post("/predict", params={"feature_set": "vader"})
    recent = server.get("/predictions/recent", params={"feature_set": "vader", "limit": 5})
    body = recent.json()
    fields(body, {"success", "count", "predictions", "filters"})
    assert body["count"] >= 1
    fields(body["predictions"][0], RECORD_FIELDS)
    accuracy = server.get(
        "/predictions/accuracy", params={"feature_set": "vader", "days": 7}
    ).json()
    fields(accuracy, {"success", "accuracy_stats"})
    fields(accuracy["accuracy_stats"], ACCURACY_FIELDS)
    statistics = server.get("/predictions/statistics").json()
    fields(statistics, {"success", "statistics"})
    fields(statistics["statistics"], STATISTICS_FIELDS)


def test_errors_are_json_with_proper_codes(server):
    assert server.post("/predict", params={"feature_set": "bogus"}).status_code == 422
    missing = server.post(
        "/predict", params={"feature_set": "vader", "model_type": "gradient_boosting"}
    )
    assert missing.status_code == 404 and missing.json()["success"] is False


DRIFT_FEATURE_FIELDS = {
    "status",
    "feature_set",
    "reference_period_days",
    "current_period_days",
    "reference_samples",
    "current_samples",
    "features_tested",
    "significant_drift_count",
    "drift_severity",
    "drift_results",
    "timestamp",
}
DRIFT_RESULT_FIELDS = {
    "feature",
    "ks_statistic",
    "ks_pvalue",
    "psi",
    "drift_detected",
    "reference_mean",
    "current_mean",
    "reference_std",
    "current_std",
}


def test_drift_endpoints(server):
    query = {"feature_set": "vader", "reference_days": 7, "current_days": 1}
    features = server.get("/drift/features", params=query).json()
    fields(features, {"success", "drift_analysis"})
    fields(features["drift_analysis"], DRIFT_FEATURE_FIELDS)
    assert features["drift_analysis"]["reference_period_days"] == 7
    if features["drift_analysis"]["drift_results"]:
        fields(features["drift_analysis"]["drift_results"][0], DRIFT_RESULT_FIELDS)
    model = server.get("/drift/model", params={**query, "model_type": "random_forest"}).json()
    fields(model, {"success", "drift_analysis"})
    analysis = model["drift_analysis"]
    fields(analysis, {"status", "reference_predictions", "current_predictions", "accuracy"})
    fields(analysis, {"confidence", "drift_severity", "timestamp"})
    fields(analysis["accuracy"], {"reference", "current", "drop", "drift_detected"})
    fields(
        analysis["confidence"],
        {
            "reference_avg",
            "current_avg",
            "reference_calibration_gap",
            "current_calibration_gap",
            "calibration_degradation",
        },
    )
    summary = server.get("/drift/summary", params={**query, "current_days": 2}).json()
    fields(summary, {"success", "summary"})
    fields(
        summary["summary"],
        {"feature_set", "model_type", "overall_severity", "feature_drift", "model_drift"},
    )
    fields(summary["summary"], {"recommendations", "timestamp"})
    fields(summary["summary"]["feature_drift"], {"drift_severity", "significant_drift_count"})
    fields(summary["summary"]["model_drift"], {"drift_severity", "accuracy_drop"})
    assert summary["summary"]["current_period_days"] == 2  # window parameters honoured
    history = server.get("/drift/history", params={"feature_set": "vader"}).json()
    fields(history, {"success", "count", "reports", "severity_order"})
    assert history["severity_order"] == ["none", "low", "medium", "high"]
    latest = server.get("/drift/latest", params={"feature_set": "vader"}).json()
    fields(latest, {"success", "status", "checked_at", "summary", "features", "model"})
    assert latest["status"] in ("stored", "none")


def test_retrain_endpoints(server):
    check = server.get("/retrain/check", params={"feature_set": "vader"}).json()
    fields(check, {"success", "decision"})
    fields(
        check["decision"],
        {
            "should_retrain",
            "reasons",
            "performance_check",
            "drift_check",
            "schedule_check",
            "data_check",
            "timestamp",
        },
    )
    fields(check["decision"]["data_check"], {"sufficient_data", "sample_count", "min_required"})
    status = server.get("/retrain/status").json()
    fields(status, {"success", "status"})
    fields(status["status"], {"vader", "finbert", "thresholds"})
    fields(
        status["status"]["vader"],
        {"should_retrain", "reasons", "data_available", "data_required"},
    )
    fields(
        status["status"]["thresholds"],
        {"accuracy_degradation", "drift_severity", "min_samples", "min_predictions"},
    )
    executed = server.post(
        "/retrain/execute", params={"feature_set": "vader", "model_type": "random_forest"}
    )
    assert executed.status_code == 200, executed.text
    body = executed.json()
    fields(
        body,
        {
            "success",
            "training_duration_seconds",
            "samples_used",
            "new_model",
            "comparison",
            "deployment",
        },
    )
    fields(body["new_model"], {"test_accuracy", "validation_accuracy", "model_version"})
    fields(
        body["comparison"],
        {"new_is_better", "new_accuracy", "current_accuracy", "accuracy_improvement"},
    )
    fields(body["deployment"], {"deployed", "reason"})
    both = server.post("/retrain/both", params={"model_type": "random_forest"}).json()
    fields(both, {"success", "results"})
    fields(both["results"], {"vader", "finbert"})
    assert both["success"] is False  # finbert has no scores in this home: that side fails
    history = server.get("/retrain/history").json()
    assert history["count"] >= 2
