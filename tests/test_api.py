"""The HTTP API in-process: predictions equal offline ones, bad input gets clear answers."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from btcmlops.api.app import create_app
from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import FeatureRow, PredictionLog
from btcmlops.db.store import Store
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION
from btcmlops.testing import build_trained_home

from support import fresh_database

END = parse_utc("2024-03-01T00:00:00Z")


@pytest.fixture(scope="module")
def home(backend, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp(f"api-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        try:
            yield build_trained_home(
                store,
                settings,
                END,
                pairs=(("vader", "random_forest"), ("vader", "logistic_regression")),
                with_importances=False,  # no test here reads them
            )
        finally:
            store.close()


@pytest.fixture
def client(home):
    context = AppContext(settings=home.settings, clock=home.clock, _store=home.store)
    with TestClient(create_app(context)) as test_client:
        yield test_client


def offline_probabilities(home, feature_set, model_type, ts):
    info = home.champions[(feature_set, model_type)]
    pipeline = home.registry.load_pipeline(info)
    frame = load_feature_frame(
        home.store,
        feature_set,
        FEATURE_VERSION,
        info.feature_names,
        start=ts,
        end=ts + timedelta(hours=1),
    )
    return pipeline.predict_proba(frame)[0], int(pipeline.predict(frame)[0])


@pytest.mark.parametrize("model_type", ["random_forest", "logistic_regression"])
def test_api_prediction_equals_the_offline_pipeline(home, client, model_type):
    response = client.post("/predict", params={"feature_set": "vader", "model_type": model_type})
    assert response.status_code == 200, response.text
    body = response.json()
    ts = parse_utc(body["prediction"]["feature_hour"])
    probabilities, predicted = offline_probabilities(home, "vader", model_type, ts)
    assert body["prediction"]["probability"]["down"] == probabilities[0]
    assert body["prediction"]["probability"]["up"] == probabilities[1]
    assert body["prediction"]["direction_numeric"] == predicted
    assert body["model_info"]["model_version"] == home.champions[("vader", model_type)].version


def test_the_newest_closed_row_is_served_and_logged(home, client):
    body = client.post("/predict", params={"feature_set": "vader"}).json()
    with home.store.session() as session:
        newest = session.scalar(
            select(FeatureRow.ts)
            .where(FeatureRow.feature_set == "vader")
            .order_by(FeatureRow.ts.desc())
        )
    assert parse_utc(body["prediction"]["feature_hour"]) == newest
    assert parse_utc(body["prediction"]["target_hour"]) == newest + timedelta(hours=1)
    client.app.state.services.logger.flush()
    with home.store.session() as session:
        row = session.get(PredictionLog, body["prediction_id"])
    assert row is not None and row.model_version == body["model_info"]["model_version"]
    assert row.source == "api" and row.feature_ts == newest


def test_the_same_row_and_model_give_the_same_answer_computed_once(home, client):
    first = client.post("/predict", params={"feature_set": "vader"}).json()
    second = client.post("/predict", params={"feature_set": "vader"}).json()
    assert first["prediction"] == second["prediction"]
    assert first["prediction_id"] != second["prediction_id"]
    assert second["performance"]["cached_features"] is True


def test_unknown_feature_set_or_model_type_is_422_naming_allowed_values(client):
    response = client.post("/predict", params={"feature_set": "textblob"})
    assert response.status_code == 422
    assert "vader" in response.json()["detail"] and "finbert" in response.json()["detail"]
    response = client.post("/predict", params={"feature_set": "vader", "model_type": "svm"})
    assert response.status_code == 422
    assert "random_forest" in response.json()["detail"]


def test_no_champion_is_404_saying_how_to_train_one(client):
    response = client.post(
        "/predict", params={"feature_set": "vader", "model_type": "gradient_boosting"}
    )
    assert response.status_code == 404
    assert "btcmlops train" in response.json()["detail"]


def test_no_feature_row_is_503_with_the_reason(home, client):
    hidden = update(FeatureRow).where(FeatureRow.feature_set == "vader")
    services = client.app.state.services
    with home.store.session() as session:
        session.execute(hidden.values(feature_version="hidden"))
    services.predictor.forget_features()
    try:
        response = client.post("/predict", params={"feature_set": "vader"})
        assert response.status_code == 503
        assert "features build" in response.json()["detail"]
    finally:
        with home.store.session() as session:
            session.execute(
                update(FeatureRow)
                .where(FeatureRow.feature_version == "hidden")
                .values(feature_version=FEATURE_VERSION)
            )
        services.predictor.forget_features()


def test_predict_both_reports_each_side(client):
    both = client.post("/predict/both").json()
    assert both["vader"]["success"] is True
    assert both["finbert"]["success"] is False and "finbert" in both["finbert"]["detail"]
    assert both["agreement"] is None and both["success"] is False


def test_missing_and_infinite_values_are_imputed_and_counted(home, client):
    with home.store.session() as session:
        row = session.scalars(
            select(FeatureRow)
            .where(FeatureRow.feature_set == "vader")
            .order_by(FeatureRow.ts.desc())
        ).first()
        original = dict(row.feature_values)
        names = home.champions[("vader", "random_forest")].feature_names[:3]
        damaged = {**original, names[0]: None, names[1]: None}
        session.execute(
            update(FeatureRow).where(FeatureRow.id == row.id).values(feature_values=damaged)
        )
    try:
        client.app.state.services.predictor.forget_features()
        body = client.post(
            "/predict", params={"feature_set": "vader", "use_cached_features": "false"}
        ).json()
        assert body["prediction"]["imputed_features"] == 2
        assert body["performance"]["cached_features"] is False
        assert math.isclose(sum(body["prediction"]["probability"].values()), 1.0)
    finally:
        with home.store.session() as session:
            session.execute(
                update(FeatureRow).where(FeatureRow.id == row.id).values(feature_values=original)
            )
        client.app.state.services.predictor.forget_features()


def test_manual_outcome_and_prediction_lookup(home, client):
    pid = client.post("/predict", params={"feature_set": "vader"}).json()["prediction_id"]
    response = client.post(f"/predictions/{pid}/outcome", json={"actual_direction": 1})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"]["outcome_status"] == "resolved"
    detail = client.get(f"/predictions/{pid}").json()["prediction"]
    assert detail["actual_direction"] == 1 and isinstance(detail["features"], dict)
    assert client.get("/predictions/999").status_code == 404
    bad = client.post(f"/predictions/{pid}/outcome", json={"actual_direction": 3})
    assert bad.status_code == 422


def test_errors_never_carry_tracebacks(client):
    for response in (
        client.post("/predict"),
        client.get("/predictions/recent", params={"limit": 0}),
        client.get("/predictions/accuracy", params={"days": 100000}),
        client.get("/predictions/not-a-number"),
    ):
        assert response.status_code == 422
        body = response.json()
        assert body["success"] is False and "Traceback" not in response.text


def test_rollback_reload_and_models_listing(home, client):
    listing = client.get("/models").json()["available_models"]["vader"]
    by_type = {entry["model_type"]: entry for entry in listing}
    assert (
        by_type["random_forest"]["champion"] == home.champions[("vader", "random_forest")].version
    )
    # Nothing to roll back to: the first champion
    response = client.post(
        "/models/rollback", params={"feature_set": "vader", "model_type": "random_forest"}
    )
    assert response.status_code == 404
    reloaded = client.post("/models/reload", params={"feature_set": "vader"}).json()
    assert reloaded["model_info"]["version"] == by_type["random_forest"]["champion"]


def test_health_reports_components(client):
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["loaded_models"] >= 2
    assert body["components"]["store"]["status"] == "ok"
    assert body["components"]["prediction_logging"]["state"] == "ok"
