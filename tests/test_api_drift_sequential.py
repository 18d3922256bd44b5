"""``GET /drift/sequential``: a feature set's hourly sequential detector over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from btcmlops.api.app import create_app
from btcmlops.clock import HOUR, parse_utc
from btcmlops.context import AppContext
from btcmlops.mlops.drift.sequential import SequentialDetector

from support import store_feature_rows

DAY = timedelta(days=1)


@pytest.fixture
def client(store, clock, settings):
    context = AppContext(settings=settings, clock=clock, _store=store)
    with TestClient(create_app(context)) as test_client:
        yield test_client


def test_an_unfitted_detector_says_how_many_days_of_rows_it_needs(client, store, clock, start_time):
    store_feature_rows(store, start_time, 77, seed=1)  # 3.2 days
    clock.set(start_time + 77 * HOUR)

    response = client.get("/drift/sequential", params={"feature_set": "vader"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "feature_set": "vader",
        "status": "not_fitted",
        "reason": "needs 14 days of feature rows; the store holds 3.2",
        "mtbf_days": 90.0,
        "smoothing": SequentialDetector().smoothing,
        "fitted_at": None,
        "fit_reason": None,
        "reference": None,
        "history": None,
        "last_hour": None,
        "alarm": False,
        "alarm_at": None,
        "change_at": None,
        "statistic": None,
        "threshold": 1.0,
        "points": [],
    }


def test_a_fitted_detector_shows_its_windows_and_its_evidence_hour_by_hour(
    client, store, clock, start_time
):
    store_feature_rows(store, start_time, 14 * 24, seed=2)
    clock.set(start_time + 14 * DAY)
    monitor = client.app.state.services.sequential
    monitor.advance("vader")
    fed_from = start_time + 14 * DAY
    store_feature_rows(store, fed_from, 5, seed=3)
    clock.set(fed_from + 5 * HOUR)
    fed = monitor.advance("vader")

    body = client.get("/drift/sequential", params={"feature_set": "vader", "days": 30}).json()

    assert body["status"] == "fitted" and body["reason"] is None
    assert body["fit_reason"] == "first fit"
    assert parse_utc(body["fitted_at"]) == start_time + 14 * DAY
    assert window(body["history"]) == (start_time, start_time + 7 * DAY)
    assert window(body["reference"]) == (start_time + 7 * DAY, start_time + 14 * DAY)
    assert parse_utc(body["last_hour"]) == fed_from + 4 * HOUR
    assert body["alarm"] is False and body["alarm_at"] is None and body["change_at"] is None
    assert body["statistic"] == fed.status.statistic and body["threshold"] == 1.0
    assert hours(body["points"]) == [fed_from + i * HOUR for i in range(5)]
    assert body["points"][-1]["statistic"] == fed.status.statistic
    assert body["points"][-1]["alarm"] is False
    # ``days`` counts back from the current hour: 0.1 days are the last 2.4 hours
    recent = client.get("/drift/sequential", params={"feature_set": "vader", "days": 0.1}).json()
    assert hours(recent["points"]) == [fed_from + 3 * HOUR, fed_from + 4 * HOUR]


def window(answer: dict) -> tuple:
    return parse_utc(answer["start"]), parse_utc(answer["end"])


def hours(points: list[dict]) -> list:
    return [parse_utc(point["hour"]) for point in points]


def test_the_configured_mean_time_between_false_alarms_is_reported(
    store, clock, settings, start_time
):
    settings = settings.model_copy(update={"drift_sequential_mtbf_days": 30})
    context = AppContext(settings=settings, clock=clock, _store=store)
    with TestClient(create_app(context)) as client:
        body = client.get("/drift/sequential", params={"feature_set": "finbert"}).json()
    assert body["mtbf_days"] == 30.0
    assert body["reason"] == "needs 14 days of feature rows; the store holds none"


@pytest.mark.parametrize(
    ("params", "named"),
    [({"feature_set": "textblob"}, "feature_set"), ({"days": 0}, "days")],
)
def test_a_bad_query_is_a_422_like_the_other_drift_routes(client, params, named):
    response = client.get("/drift/sequential", params=params)
    latest = client.get("/drift/latest", params={"feature_set": "textblob"})

    assert response.status_code == latest.status_code == 422
    body = response.json()
    assert body["success"] is False and body["error"] == latest.json()["error"]
    assert body["detail"].startswith(f"{named}:")
    if named == "feature_set":
        assert "'vader'" in body["detail"] and "'finbert'" in body["detail"]
