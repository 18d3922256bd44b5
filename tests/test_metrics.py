"""GET /metrics: counts and labels, figures equal to what the API answers, a store outage, and
several worker processes adding up in one scrape."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from btcmlops.api.app import create_app
from btcmlops.api.process_metrics import LATENCY_BUCKETS, LoggerMirror
from btcmlops.api.prometheus import prepare_multiprocess_dir
from btcmlops.api.routers.prometheus import install_metrics
from btcmlops.api.scrape_metrics import StoreReadings
from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.engine import make_engine
from btcmlops.db.models import DriftReport, RetrainingRun
from btcmlops.db.store import Store
from btcmlops.mlops.monitoring import MonitoringSnapshot
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.predictions.writer import LoggerHealth
from btcmlops.modeling.training import train_from_store
from btcmlops.severity import severity_rank
from btcmlops.testing import build_trained_home

from support import free_port, fresh_database, node_of

END = parse_utc("2024-03-01T00:00:00Z")
PAIRS = (("vader", "random_forest"), ("vader", "logistic_regression"))
DEAD_URL = "postgresql+psycopg://nobody@127.0.0.1:1/nowhere"

Samples = dict[tuple[str, frozenset], float]


# Built once for the module, without permutation importances (no test here reads them): they
# were two thirds of the time its two champions took to train.
@pytest.fixture(scope="module")
def home(backend, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp(f"metrics-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        try:
            yield build_trained_home(store, settings, END, pairs=PAIRS, with_importances=False)
        finally:
            store.close()


def metrics_client(home, settings: Settings | None = None) -> TestClient:
    context = AppContext(settings=settings or home.settings, clock=home.clock, _store=home.store)
    app = create_app(context)
    install_metrics(app)
    return TestClient(app)


@pytest.fixture
def client(home) -> Iterator[TestClient]:
    with metrics_client(home) as test_client:
        # Every scrape re-reads the store and waits for the read (however busy the machine),
        # so a test sees what it just changed.
        readings = test_client.app.state.metrics.store_readings
        readings.cache_seconds, readings.wait_seconds = 0, 60
        yield test_client


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def matching(samples: Samples, name: str, **labels: str) -> dict[frozenset, float]:
    wanted = set(labels.items())
    return {key: v for (n, key), v in samples.items() if n == name and wanted <= set(key)}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(matching(samples, name, **labels).values())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    found = matching(samples, name, **labels)
    assert len(found) <= 1, f"{name}{labels} is not one series: {found}"
    return next(iter(found.values()), None)


def champion_version(home, feature_set: str, model_type: str) -> str:
    return home.registry.champion(feature_set, model_type).version


# ------------------------------------------------------------------------- in one process


def test_predictions_are_counted_by_pair_source_and_direction(home, client):
    before = scrape(client)
    answers = [
        client.post("/predict", params={"feature_set": fs, "model_type": mt}).json()
        for fs, mt in (PAIRS[0], PAIRS[0], PAIRS[0], PAIRS[1], PAIRS[1])
    ]
    scheduled = PipelineJobs(client.app.state.services).predict()
    after = scrape(client)

    assert set(scheduled) == {f"{fs}/{mt}" for fs, mt in PAIRS}
    for feature_set, model_type in PAIRS:
        for direction in ("up", "down"):
            labels = dict(feature_set=feature_set, model_type=model_type, direction=direction)
            served = sum(
                a["model_info"]["model_type"] == model_type
                and a["prediction"]["direction"] == direction
                for a in answers
            )
            name = "btcmlops_predictions_total"
            assert (
                total(after, name, source="api", **labels)
                - total(before, name, source="api", **labels)
                == served
            )
            by_job = int(scheduled[f"{feature_set}/{model_type}"] == direction)
            assert (
                total(after, name, source="scheduled", **labels)
                - total(before, name, source="scheduled", **labels)
                == by_job
            )
    requests = dict(method="POST", path="/predict", code="200")
    assert total(after, "btcmlops_http_requests_total", **requests) - total(
        before, "btcmlops_http_requests_total", **requests
    ) == len(answers)


def test_latency_is_a_histogram_per_route_template_with_bounded_labels(home, client):
    before = scrape(client)
    pid = client.post("/predict", params={"feature_set": "vader"}).json()["prediction_id"]
    assert client.app.state.services.logger.flush()  # the record is on its way to the store
    assert client.get(f"/predictions/{pid}").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    client.request("BREW", "/predict")
    after = scrape(client)

    def added(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    predict = dict(method="POST", path="/predict", status_class="2xx")
    buckets = matching(after, "btcmlops_http_request_duration_seconds_bucket", **predict)
    assert sorted(float(dict(key)["le"]) for key in buckets) == [*LATENCY_BUCKETS, float("inf")]
    assert added("btcmlops_http_request_duration_seconds_count", **predict) == 1
    # Seconds, not milliseconds: an in-process /predict lands well inside the 1 s bucket.
    bucket = "btcmlops_http_request_duration_seconds_bucket"
    assert added(bucket, le="1.0", **predict) == 1
    requests = "btcmlops_http_requests_total"
    assert added(requests, method="GET", path="/predictions/{prediction_id}", code="200") == 1
    assert added(requests, method="GET", path="unmatched", code="404") == 1
    assert added(requests, method="other", path="/predict") == 1
    paths = {dict(key)["path"] for key in matching(after, requests)}
    assert not any(str(pid) in path or "/no/such" in path for path in paths), paths
    assert "BREW" not in {dict(key)["method"] for key in matching(after, requests)}


def test_accuracy_gauges_equal_what_the_api_answers(home, client):
    made = [
        client.post("/predict", params={"feature_set": fs, "model_type": mt}).json()
        for fs, mt in PAIRS * 3
    ]
    # Outcomes for some, the rest stay pending; the drift window ends before "now".
    for answer, actual in zip(made[:4], (1, 0, 0, 1), strict=True):
        response = client.post(
            f"/predictions/{answer['prediction_id']}/outcome", json={"actual_direction": actual}
        )
        assert response.status_code == 200, response.text
    home.clock.advance(minutes=1)
    samples = scrape(client)

    settings = home.settings
    for feature_set, model_type in PAIRS:
        pair = dict(feature_set=feature_set, model_type=model_type)
        accuracy = client.get("/predictions/accuracy", params={**pair, "days": 7}).json()[
            "accuracy_stats"
        ]
        model = client.get(
            "/drift/model",
            params={
                **pair,
                "reference_days": settings.drift_reference_days,
                "current_days": settings.drift_current_days,
            },
        ).json()["drift_analysis"]
        assert accuracy["accuracy"] is not None
        assert value(samples, "btcmlops_realised_accuracy_ratio", **pair) == accuracy["accuracy"]
        outcomes = value(samples, "btcmlops_realised_accuracy_outcomes", **pair)
        assert outcomes == accuracy["total_predictions"]
        pending = value(samples, "btcmlops_pending_outcomes", **pair)
        assert pending == accuracy["pending_predictions"]
        estimate = model["estimated_accuracy"]
        assert estimate["value"] is not None
        assert value(samples, "btcmlops_estimated_accuracy_ratio", **pair) == estimate["value"]
        assert (
            value(samples, "btcmlops_estimated_accuracy_predictions", **pair)
            == (estimate["predictions"])
        )
        baseline = home.registry.champion(feature_set, model_type).test_accuracy
        assert value(samples, "btcmlops_champion_test_accuracy_ratio", **pair) == baseline


def test_drift_gauges_equal_the_latest_stored_check(home, client):
    pair = {"feature_set": "vader", "model_type": "random_forest"}
    summary = client.get("/drift/summary", params={**pair, "record": "true"}).json()["summary"]
    samples = scrape(client)

    features = summary["feature_drift"]
    if features["status"] == "success":
        expected = severity_rank(features["drift_severity"])
        assert value(samples, "btcmlops_feature_drift_severity", feature_set="vader") == expected
        share = value(samples, "btcmlops_feature_drift_share_ratio", feature_set="vader")
        assert share == features["share_drifted"]
    else:
        assert value(samples, "btcmlops_feature_drift_severity", feature_set="vader") is None
    insufficient = value(samples, "btcmlops_feature_drift_insufficient_data", feature_set="vader")
    assert insufficient == (features["status"] == "insufficient_data")
    overall = summary["overall_severity"]
    expected_overall = None if overall is None else severity_rank(overall)
    assert value(samples, "btcmlops_drift_severity", **pair) == expected_overall
    checked = value(
        samples, "btcmlops_feature_drift_checked_timestamp_seconds", feature_set="vader"
    )
    assert checked == home.clock.now().timestamp()

    # A newer stored check replaces it, whatever it says.
    newer = home.clock.now() + timedelta(hours=1)
    with home.store.session() as session:
        session.add(
            DriftReport(
                kind="feature",
                feature_set="vader",
                status="success",
                severity="high",
                checked_at=newer,
                report={"share_drifted": 0.625},
            )
        )
    samples = scrape(client)
    assert value(samples, "btcmlops_feature_drift_severity", feature_set="vader") == 3
    assert value(samples, "btcmlops_feature_drift_share_ratio", feature_set="vader") == 0.625
    checked = value(
        samples, "btcmlops_feature_drift_checked_timestamp_seconds", feature_set="vader"
    )
    assert checked == newer.timestamp()


def add_runs(home, feature_set: str, model_type: str, *outcomes: tuple[str, str | None]) -> None:
    with home.store.session() as session:
        for status, decision in outcomes:
            session.add(
                RetrainingRun(
                    job_id=str(uuid.uuid4()),
                    feature_set=feature_set,
                    model_type=model_type,
                    trigger="test",
                    reasons=[],
                    status=status,
                    decision=decision,
                    started_at=home.clock.now(),
                )
            )


def test_retraining_outcome_counts_equal_the_rows(home, client):
    add_runs(
        home,
        "vader",
        "random_forest",
        ("succeeded", "deployed"),
        ("succeeded", "deployed"),
        ("succeeded", "kept"),
        ("failed", "failed"),
        ("running", None),
    )
    add_runs(home, "finbert", "random_forest", ("failed", "failed"))
    samples = scrape(client)

    with home.store.session() as session:
        rows = session.execute(
            select(
                RetrainingRun.feature_set,
                RetrainingRun.model_type,
                RetrainingRun.status,
                RetrainingRun.decision,
                func.count(),
            ).group_by(
                RetrainingRun.feature_set,
                RetrainingRun.model_type,
                RetrainingRun.status,
                RetrainingRun.decision,
            )
        ).all()
    for feature_set, model_type in (*PAIRS, ("finbert", "random_forest")):
        pair = dict(feature_set=feature_set, model_type=model_type)
        mine = [row for row in rows if (row[0], row[1]) == (feature_set, model_type)]
        for outcome in ("deployed", "kept"):
            expected = sum(n for _, _, status, decision, n in mine if decision == outcome)
            shown = value(samples, "btcmlops_retraining_runs_total", outcome=outcome, **pair)
            assert (shown or 0) == expected
        failed = sum(n for _, _, status, _, n in mine if status == "failed")
        assert value(samples, "btcmlops_retraining_runs_total", outcome="failed", **pair) == failed
        running = sum(n for _, _, status, _, n in mine if status == "running")
        shown = value(samples, "btcmlops_retraining_runs_in_progress", **pair)
        assert (shown or 0) == running
    # A champion pair without runs shows zeros, so increase() works from its first run.
    pair = dict(feature_set="vader", model_type="logistic_regression")
    assert value(samples, "btcmlops_retraining_runs_total", outcome="kept", **pair) is not None


def test_last_successful_job_runs_come_from_the_store(home, client):
    jobs = PipelineJobs(client.app.state.services)
    jobs.runner.run("outcomes", jobs.resolve_outcomes)
    succeeded_at = home.clock.now()
    home.clock.advance(minutes=5)

    def broken() -> dict:
        raise RuntimeError("the price source answered garbage")

    jobs.runner.run("outcomes", broken)  # a later failure does not move it
    samples = scrape(client)
    shown = value(
        samples, "btcmlops_scheduler_job_last_success_timestamp_seconds", scheduler_job="outcomes"
    )
    assert shown == succeeded_at.timestamp()


def champion_versions(samples: Samples) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for key, shown in matching(samples, "btcmlops_champion_info").items():
        labels = dict(key)
        assert shown == 1
        found.setdefault((labels["feature_set"], labels["model_type"]), []).append(
            labels["version"]
        )
    return found


def test_champion_info_follows_a_promotion(home, client):
    feature_set, model_type = PAIRS[1]
    current = champion_version(home, feature_set, model_type)
    assert champion_versions(scrape(client)) == {
        pair: [champion_version(home, *pair)] for pair in PAIRS
    }

    home.clock.advance(seconds=1)  # a version name carries its registration second
    trained = train_from_store(
        home.store,
        feature_set,
        model_type,
        clock=home.clock,
        settings=home.settings,
        with_importances=False,
    )
    newer = home.registry.register(trained, created_by="test", reason="metrics test")
    response = client.post("/models/promote", params={"version": newer.version})
    assert response.status_code == 200, response.text
    try:
        shown = champion_versions(scrape(client))
        assert shown[(feature_set, model_type)] == [newer.version]
        assert shown[PAIRS[0]] == [champion_version(home, *PAIRS[0])]
    finally:
        client.post(
            "/models/rollback", params={"feature_set": feature_set, "model_type": model_type}
        )
    assert champion_versions(scrape(client))[(feature_set, model_type)] == [current]


def test_store_readings_are_cached_between_scrapes(home, client):
    readings = client.app.state.metrics.store_readings
    readings.cache_seconds = 3600
    pair = dict(feature_set="vader", model_type="logistic_regression", outcome="kept")
    before = value(scrape(client), "btcmlops_retraining_runs_total", **pair)
    add_runs(home, "vader", "logistic_regression", ("succeeded", "kept"))
    assert value(scrape(client), "btcmlops_retraining_runs_total", **pair) == before
    readings.cache_seconds = 0
    assert value(scrape(client), "btcmlops_retraining_runs_total", **pair) == before + 1


def test_the_scrape_answers_with_store_up_0_while_the_store_is_down(home, client, monkeypatch):
    assert value(scrape(client), "btcmlops_store_up") == 1
    client.post("/predict", params={"feature_set": "vader"})
    assert client.app.state.services.logger.flush()
    dead = Store(make_engine(DEAD_URL))
    monkeypatch.setattr(home.store, "session", dead.session)
    monkeypatch.setattr(home.store, "ping", dead.ping)
    try:
        response = client.get("/metrics")
        assert response.status_code == 200
        samples = parse(response.text)
        assert value(samples, "btcmlops_store_up") == 0
        # What is known is still reported: process counters and the last store readings.
        assert total(samples, "btcmlops_predictions_total") >= 1
        assert set(champion_versions(samples)) == set(PAIRS)
        assert value(samples, "btcmlops_store_readings_age_seconds") >= 0
    finally:
        monkeypatch.undo()
        dead.close()
    assert value(scrape(client), "btcmlops_store_up") == 1


def test_lost_prediction_records_are_counted(home, client, monkeypatch):
    services = client.app.state.services
    before = scrape(client)
    dead = Store(make_engine(DEAD_URL))

    def disk_full(records):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(home.store, "session", dead.session)
    monkeypatch.setattr(home.store, "ping", dead.ping)
    monkeypatch.setattr(services.logger.spool, "append", disk_full)
    try:
        for _ in range(3):
            assert client.post("/predict", params={"feature_set": "vader"}).status_code == 200
        assert services.logger.flush()
        during = scrape(client)
    finally:
        monkeypatch.undo()
        dead.close()
    lost = total(during, "btcmlops_prediction_records_lost_total") - total(
        before, "btcmlops_prediction_records_lost_total"
    )
    assert lost == 3
    assert value(during, "btcmlops_prediction_log_spooling") == 1


def test_logger_figures_are_mirrored_once(home, client):
    services = client.app.state.services
    before = scrape(client)
    for _ in range(4):
        client.post("/predict", params={"feature_set": "vader"})
    assert services.logger.flush()
    after = scrape(client)
    again = scrape(client)
    name = "btcmlops_prediction_records_written_total"
    assert total(after, name) - total(before, name) == 4
    assert total(again, name) == total(after, name)
    assert value(after, "btcmlops_prediction_log_queue_depth") == 0
    capacity = value(after, "btcmlops_prediction_log_queue_capacity")
    assert capacity == home.settings.logging_queue_size
    spooled = value(after, "btcmlops_prediction_spool_bytes")
    assert spooled == services.logger.spool.size_bytes()


def test_the_mirror_adds_only_what_changed_since_its_last_look():
    class FakeLogger:
        def __init__(self) -> None:
            self.counts = {"written": 0, "spooled": 0, "replayed": 0, "lost": 0}

        def health(self) -> LoggerHealth:
            return LoggerHealth("ok", 0, 10, spool_bytes=0, last_error=None, **self.counts)

    def written() -> float:
        return REGISTRY.get_sample_value("btcmlops_prediction_records_written_total") or 0.0

    logger = FakeLogger()
    mirror = LoggerMirror(logger)
    start = written()
    logger.counts["written"] = 5
    mirror.sync()
    mirror.sync()
    assert written() - start == 5
    logger.counts["written"] = 7
    mirror.sync()
    assert written() - start == 7


def test_a_scrape_with_an_earlier_reading_answers_without_waiting_for_the_store():
    release = threading.Event()
    first, second = MonitoringSnapshot([], [], {}, {}, {}), MonitoringSnapshot([], [], {}, {}, {})
    results = iter([first, second])

    def read() -> MonitoringSnapshot:
        snapshot = next(results)
        if snapshot is second:
            release.wait(60)  # a slow read of a large store
        return snapshot

    readings = StoreReadings(read, cache_seconds=0, timeout_seconds=60)
    readings.refresh()  # nothing to show yet: waits for the first read
    assert readings.snapshot is first
    readings.refresh()  # stale: starts the slow read, answers with what it has
    assert readings.snapshot is first and readings.store_up() is True
    release.set()
    readings.wait_seconds = 60
    readings.refresh()  # waits for the read in flight
    assert readings.snapshot is second


def test_a_hung_store_costs_the_first_scrape_a_bounded_wait_and_reads_as_down():
    release = threading.Event()
    known = MonitoringSnapshot([], [], {}, {}, {})

    def hung_then_answering() -> MonitoringSnapshot:
        release.wait(60)
        return known

    readings = StoreReadings(hung_then_answering, cache_seconds=0, timeout_seconds=0.05)
    readings.refresh()  # returns after the timeout although the read has not finished
    assert readings.store_up() is False and readings.snapshot is None
    release.set()
    readings.timeout_seconds = 60
    readings.refresh()  # still nothing to show: waits for the read in flight
    assert readings.store_up() is True and readings.snapshot is known


def test_reads_need_the_key_when_reads_are_protected(home):
    protected = home.settings.model_copy(
        update={"api_key": SecretStr("metrics-key"), "protect_reads": True}
    )
    with metrics_client(home, protected) as test_client:
        assert test_client.get("/metrics").status_code == 401
        response = test_client.get("/metrics", headers={"X-API-Key": "metrics-key"})
        assert response.status_code == 200
        assert "btcmlops_build_info" in response.text


def test_openmetrics_is_served_when_asked_for(client):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_preparing_the_multiprocess_folder_removes_only_old_metric_files(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "README").write_text("keep me")
    assert prepare_multiprocess_dir(tmp_path) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["README"]


# ------------------------------------------------------------------------- several workers


def wait_until(condition, what: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stdout.read().decode()}")
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def two_workers(home, tmp_path_factory):
    """``uvicorn btcmlops.server:app --workers 2`` sharing one multiprocess folder."""
    folder = prepare_multiprocess_dir(tmp_path_factory.mktemp("workers"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
    env.update(
        BTCMLOPS_HOME=str(home.settings.home),
        BTCMLOPS_DATABASE_URL=home.settings.database_url,
        BTCMLOPS_NOW=END.isoformat(),
        BTCMLOPS_SERVE_SCHEDULER="false",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    command = [sys.executable, "-m", "uvicorn", "btcmlops.server:app", "--workers", "2"]
    command += ["--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/health"), "the server", process)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.e2e  # two uvicorn worker processes
def test_predictions_through_two_workers_add_up_in_one_scrape(home, two_workers):
    base, process = two_workers
    served: dict[int, int] = {}
    sent = 0
    # A new connection per request lets the kernel hand requests to either worker.
    while sent < 400 and (len(served) < 2 or min(served.values()) < 3):
        response = httpx.post(f"{base}/predict", params={"feature_set": "vader"}, timeout=30)
        assert response.status_code == 200, response.text
        node = node_of(response.json()["prediction_id"])
        served[node] = served.get(node, 0) + 1
        sent += 1
    assert len(served) == 2, f"only one worker answered {sent} requests"

    samples = parse(httpx.get(f"{base}/metrics", timeout=30).text)
    assert total(samples, "btcmlops_predictions_total", source="api") == sent
    requests = dict(method="POST", path="/predict", code="200")
    assert total(samples, "btcmlops_http_requests_total", **requests) == sent
    histogram_count = total(
        samples, "btcmlops_http_request_duration_seconds_count", path="/predict"
    )
    assert histogram_count == sent
    # Store-derived figures are read once per scrape, never summed over the workers.
    assert value(samples, "btcmlops_store_up") == 1
    assert champion_versions(samples) == {pair: [champion_version(home, *pair)] for pair in PAIRS}
    assert value(samples, "btcmlops_build_info") == 1

    # Each worker publishes its logger's figures on its own, scraped or not.
    def written() -> float:
        scraped = parse(httpx.get(f"{base}/metrics", timeout=30).text)
        return total(scraped, "btcmlops_prediction_records_written_total")

    wait_until(lambda: written() >= sent, "both workers' written records", process, timeout=30)
    assert written() == sent
