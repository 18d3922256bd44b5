"""Prometheus metrics of a server process, exposed at ``GET /metrics``.

The route itself, and ``install_metrics`` that adds it with the request middleware, are in
``api/routers/prometheus.py``; this module never imports them.

Two kinds of metrics, kept apart on purpose:

* **Per process**, counted as things happen: HTTP requests and their latency (the
  :class:`RequestMetrics` middleware), predictions (``mlops.monitoring.count_prediction``)
  and the prediction logger's records and queue (mirrored from ``PredictionLogger.health()``).
  With one process they live in prometheus-client's default registry. With several uvicorn
  workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``btcmlops serve --workers N`` sets it to
  ``$BTCMLOPS_HOME/prometheus`` and empties it at start): every worker writes its values to
  files there and whichever worker answers a scrape sums them.
* **At scrape time**, read by the answering process from what all processes share: the store
  (accuracy, drift, retraining runs, champions, scheduler runs), the spool folder, the build.
  A :class:`ScrapeTimeCollector` produces them on the scrape-time registry, never as
  multiprocess gauges, so they are reported once, not once per worker. Store readings are
  re-read in the background at most every ``STORE_CACHE_SECONDS`` (:class:`StoreReadings`),
  so a scrape never waits for the store; when the store is down the scrape still answers,
  with ``btcmlops_store_up 0`` and the last readings it had (their age in
  ``btcmlops_store_readings_age_seconds``).

Metric objects are module-level because that is how prometheus-client works: one object per
name per process, whichever app or thread updates it.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btcmlops import __version__
from btcmlops.mlops.monitoring import MonitoringSnapshot, read_monitoring_snapshot
from btcmlops.mlops.prediction_logger import PredictionLogger
from btcmlops.mlops.scheduler import Scheduler
from btcmlops.severity import severity_rank

if TYPE_CHECKING:
    from btcmlops.api.services import Services

log = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own switch
STORE_CACHE_SECONDS = 30.0  # the figures move hourly; a week of predictions takes a while to read
STORE_TIMEOUT_SECONDS = 2.0  # a store read still running after this means the store hangs
WORKER_SYNC_SECONDS = 2.0  # how often a worker publishes its logger figures (multiprocess)
# /predict answers in about a millisecond; a synchronous retraining may take a minute.
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # requests no route matched share one label: cardinality stays bounded
JOB_NAMES = tuple(name for name, _, _ in Scheduler.TIMETABLE)

# ------------------------------------------------------------------ per-process metrics

HTTP_REQUESTS = Counter(
    "btcmlops_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ("method", "path", "code"),
)
HTTP_DURATION = Histogram(
    "btcmlops_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by method, route template "
    "and status class.",
    ("method", "path", "status_class"),
    buckets=LATENCY_BUCKETS,
)
RECORDS_WRITTEN = Counter(
    "btcmlops_prediction_records_written_total",
    "Prediction records written to the store by the logger's writer.",
)
RECORDS_SPOOLED = Counter(
    "btcmlops_prediction_records_spooled_total",
    "Prediction records written to the local spool because the store did not take them.",
)
RECORDS_REPLAYED = Counter(
    "btcmlops_prediction_records_replayed_total",
    "Spooled prediction records replayed into the store.",
)
RECORDS_LOST = Counter(
    "btcmlops_prediction_records_lost_total",
    "Prediction records lost: the queue was full or the store down, and the spool unwritable.",
)
QUEUE_DEPTH = Gauge(
    "btcmlops_prediction_log_queue_depth",
    "Prediction records waiting on the in-process queue for the writer.",
    multiprocess_mode="livesum",
)
QUEUE_CAPACITY = Gauge(
    "btcmlops_prediction_log_queue_capacity",
    "Capacity of the in-process prediction queue (summed over live workers).",
    multiprocess_mode="livesum",
)
SPOOLING = Gauge(
    "btcmlops_prediction_log_spooling",
    "Processes whose prediction logger is spooling (the store refused its last batch).",
    multiprocess_mode="livesum",
)


class RequestMetrics:
    """ASGI middleware counting requests and timing them, labelled by route template.

    The label is the matched route's template (``/predictions/{prediction_id}``), never the
    raw path, and unknown methods and unmatched paths are folded into one value each, so no
    client can grow the number of series. Label children are cached per combination, so a
    request costs a dictionary lookup, one counter increment and one histogram observation.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        key = (method, route_template(scope), status)
        children = self._children.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(method, key[1], str(status)),
                HTTP_DURATION.labels(method, key[1], f"{status // 100}xx"),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def route_template(scope: Scope) -> str:
    """The template of the route the router matched (with any mount prefix), or ``unmatched``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if template is None:
        return UNMATCHED
    return scope.get("root_path", "") + template


class LoggerMirror:
    """Publishes one prediction logger's ``health()`` figures as this process's metrics.

    The logger counts its records itself; the mirror adds what changed since its last look to
    the counters, so the counters never count a record twice however often it looks.
    """

    _COUNTERS = (
        ("written", RECORDS_WRITTEN),
        ("spooled", RECORDS_SPOOLED),
        ("replayed", RECORDS_REPLAYED),
        ("lost", RECORDS_LOST),
    )

    def __init__(self, logger: PredictionLogger) -> None:
        self.logger = logger
        self._seen = {name: 0 for name, _ in self._COUNTERS}
        self._lock = threading.Lock()

    def sync(self) -> None:
        health = self.logger.health()
        with self._lock:
            for name, counter in self._COUNTERS:
                value = getattr(health, name)
                if value > self._seen[name]:
                    counter.inc(value - self._seen[name])
                self._seen[name] = value
            QUEUE_DEPTH.set(health.queue_depth)
            QUEUE_CAPACITY.set(health.queue_capacity)
            SPOOLING.set(1 if health.state == "spooling" else 0)


# ------------------------------------------------------------------ scrape-time metrics


class StoreReadings:
    """The latest monitoring snapshot, re-read from the store at most every ``cache_seconds``.

    Reads run on a thread of their own, one at a time, and a scrape does not wait for them
    once it has something to show: it starts a read when the last one is older than
    ``cache_seconds`` and answers at once with the previous snapshot (``wait_seconds`` = 0),
    so a scrape costs the rendering only, however large the store. On a busy service the
    store read takes a good fraction of a second (the 7-day aggregates scan a week of
    predictions); it never reaches Prometheus's scrape. Only the first scrape of a process,
    with nothing to show yet, waits for the first read, at most ``timeout_seconds``.

    The store counts as down (``store_up()`` False) when the last read failed, or when a read
    has been running for ``timeout_seconds`` (a store that hangs rather than refuses); the
    previous snapshot is still reported, with its age.
    """

    def __init__(
        self,
        read: Callable[[], MonitoringSnapshot],
        cache_seconds: float = STORE_CACHE_SECONDS,
        wait_seconds: float = 0.0,
        timeout_seconds: float = STORE_TIMEOUT_SECONDS,
    ) -> None:
        self.read = read
        self.cache_seconds = cache_seconds
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds
        self.snapshot: MonitoringSnapshot | None = None
        self.read_at: float | None = None  # time.monotonic() of the last successful read
        self.read_seconds: float | None = None
        self._last_read_ok: bool | None = None  # None until the first read ends
        self._started_at: float | None = None  # of the read in flight, or of the last one
        self._in_flight: threading.Event | None = None  # set when the read in flight ends
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Start a read if the last one is older than ``cache_seconds``; wait as configured."""
        with self._lock:
            now = time.monotonic()
            stale = self._started_at is None or now - self._started_at >= self.cache_seconds
            if self._in_flight is None and stale:
                self._started_at, self._in_flight = now, threading.Event()
                threading.Thread(
                    target=self._read,
                    args=(self._in_flight,),
                    name="metrics-store-read",
                    daemon=True,  # a read hung on a dead store must not hold up an exit
                ).start()
            in_flight, started_at = self._in_flight, self._started_at
            wait = self.wait_seconds if self.snapshot is not None else self.timeout_seconds
        if in_flight is not None and started_at is not None:
            in_flight.wait(max(0.0, started_at + wait - time.monotonic()))

    def _read(self, done: threading.Event) -> None:
        started = time.perf_counter()
        try:
            snapshot = self.read()
        except Exception as exc:  # monitoring must answer whatever the store does
            with self._lock:
                if self._last_read_ok is not False:  # say it once per outage
                    log.warning("metrics: store readings unavailable: %s", _first_line(exc))
                self._last_read_ok = False
        else:
            with self._lock:
                if self._last_read_ok is False:
                    log.info("metrics: store readings available again")
                self.snapshot, self._last_read_ok = snapshot, True
                self.read_at, self.read_seconds = time.monotonic(), time.perf_counter() - started
        finally:
            with self._lock:
                self._in_flight = None
            done.set()

    def store_up(self) -> bool:
        """The last read succeeded and no read has been running for ``timeout_seconds``."""
        with self._lock:
            hanging = (
                self._in_flight is not None
                and self._started_at is not None
                and time.monotonic() - self._started_at >= self.timeout_seconds
            )
            return self._last_read_ok is True and not hanging

    def age_seconds(self) -> float | None:
        return None if self.read_at is None else time.monotonic() - self.read_at


class ScrapeTimeCollector:
    """Metrics computed when scraped, from state every process shares (store, spool, build)."""

    def __init__(self, readings: StoreReadings, logger: PredictionLogger) -> None:
        self.readings = readings
        self.logger = logger

    def collect(self) -> Iterable[Metric]:
        self.readings.refresh()
        build = InfoMetricFamily("btcmlops_build", "The running btcmlops and Python versions.")
        build.add_metric([], {"version": __version__, "python": platform.python_version()})
        yield build
        yield GaugeMetricFamily(
            "btcmlops_store_up",
            "1 if the last attempt to read the store's figures succeeded, else 0.",
            value=1 if self.readings.store_up() else 0,
        )
        age = self.readings.age_seconds()
        if age is not None:
            yield GaugeMetricFamily(
                "btcmlops_store_readings_age_seconds",
                "Age of the store-derived figures in this answer.",
                value=age,
            )
            yield GaugeMetricFamily(
                "btcmlops_store_readings_duration_seconds",
                "How long the last read of the store-derived figures took.",
                value=self.readings.read_seconds or 0.0,
            )
        try:
            spooled_bytes = self.logger.spool.size_bytes()
        except OSError:  # a file replayed away between listing and stat: next scrape
            spooled_bytes = None
        if spooled_bytes is not None:
            yield GaugeMetricFamily(
                "btcmlops_prediction_spool_bytes",
                "Bytes in the spool folder this home's processes share (records awaiting replay).",
                value=spooled_bytes,
            )
        if self.readings.snapshot is not None:
            yield from snapshot_families(self.readings.snapshot)


def snapshot_families(snapshot: MonitoringSnapshot) -> Iterable[Metric]:
    """The store-derived figures as metric families (absent values are left out, not zero)."""
    pair = ["feature_set", "model_type"]
    champion = InfoMetricFamily(
        "btcmlops_champion", "The champion version serving each pair.", labels=pair
    )
    baseline = GaugeMetricFamily(
        "btcmlops_champion_test_accuracy_ratio",
        "The champion's accuracy on its test window: the baseline live accuracy is judged by.",
        labels=pair,
    )
    realised = GaugeMetricFamily(
        "btcmlops_realised_accuracy_ratio",
        "Accuracy of the pair's predictions with outcomes over the last 7 days "
        "(GET /predictions/accuracy).",
        labels=pair,
    )
    outcomes = GaugeMetricFamily(
        "btcmlops_realised_accuracy_outcomes",
        "Predictions with outcomes behind btcmlops_realised_accuracy_ratio.",
        labels=pair,
    )
    pending = GaugeMetricFamily(
        "btcmlops_pending_outcomes",
        "Predictions of the last 7 days still waiting for their outcome.",
        labels=pair,
    )
    estimated = GaugeMetricFamily(
        "btcmlops_estimated_accuracy_ratio",
        "Label-free accuracy estimate of the pending predictions in the drift check's current "
        "window (the model's recalibrated confidence; blind to concept drift).",
        labels=pair,
    )
    estimated_n = GaugeMetricFamily(
        "btcmlops_estimated_accuracy_predictions",
        "Pending predictions behind btcmlops_estimated_accuracy_ratio.",
        labels=pair,
    )
    overall = GaugeMetricFamily(
        "btcmlops_drift_severity",
        "Overall severity of the latest stored drift summary of the pair: "
        "0 none, 1 low, 2 medium, 3 high (absent with insufficient data).",
        labels=pair,
    )
    for reading in snapshot.champions:
        labels = [reading.feature_set, reading.model_type]
        champion.add_metric(labels, {"version": reading.version})
        _add(baseline, labels, reading.test_accuracy)
        _add(realised, labels, reading.realised_accuracy)
        outcomes.add_metric(labels, reading.realised_outcomes)
        pending.add_metric(labels, reading.pending_outcomes)
        _add(estimated, labels, reading.estimated_accuracy)
        estimated_n.add_metric(labels, reading.estimated_predictions)
        _add(overall, labels, _rank(reading.drift_severity))
    yield from (champion, baseline, realised, outcomes, pending, estimated, estimated_n, overall)
    yield from _feature_drift_families(snapshot)
    yield from _retraining_families(snapshot)
    last_ok = GaugeMetricFamily(
        "btcmlops_scheduler_job_last_success_timestamp_seconds",
        "Start of the last successful run of each scheduler job (any process), Unix seconds.",
        # Not "job": Prometheus gives every target a "job" label of its own.
        labels=["scheduler_job"],
    )
    for job, started_at in sorted(snapshot.last_successful_job_runs.items()):
        last_ok.add_metric([job], started_at.timestamp())
    yield last_ok


def _feature_drift_families(snapshot: MonitoringSnapshot) -> Iterable[Metric]:
    severity = GaugeMetricFamily(
        "btcmlops_feature_drift_severity",
        "Severity of the latest stored feature-drift check: 0 none, 1 low, 2 medium, 3 high "
        "(absent when that check had insufficient data).",
        labels=["feature_set"],
    )
    share = GaugeMetricFamily(
        "btcmlops_feature_drift_share_ratio",
        "Share of monitored features that drifted significantly in the latest stored check.",
        labels=["feature_set"],
    )
    insufficient = GaugeMetricFamily(
        "btcmlops_feature_drift_insufficient_data",
        "1 if the latest stored feature-drift check had too little data to judge.",
        labels=["feature_set"],
    )
    checked = GaugeMetricFamily(
        "btcmlops_feature_drift_checked_timestamp_seconds",
        "When the latest stored feature-drift check ran (domain clock), Unix seconds.",
        labels=["feature_set"],
    )
    for reading in snapshot.feature_drift:
        labels = [reading.feature_set]
        _add(severity, labels, _rank(reading.severity))
        _add(share, labels, reading.share_drifted)
        insufficient.add_metric(labels, 1 if reading.status == "insufficient_data" else 0)
        checked.add_metric(labels, reading.checked_at.timestamp())
    yield from (severity, share, insufficient, checked)


def _retraining_families(snapshot: MonitoringSnapshot) -> Iterable[Metric]:
    runs = CounterMetricFamily(
        "btcmlops_retraining_runs",
        "Finished retraining runs (retraining_runs rows, all processes) by outcome: "
        "deployed, kept or failed.",
        labels=["feature_set", "model_type", "outcome"],
    )
    for (feature_set, model_type, outcome), count in sorted(snapshot.retraining_runs.items()):
        runs.add_metric([feature_set, model_type, outcome], count)
    running = GaugeMetricFamily(
        "btcmlops_retraining_runs_in_progress",
        "Retraining runs recorded as running.",
        labels=["feature_set", "model_type"],
    )
    for (feature_set, model_type), count in sorted(snapshot.retraining_in_progress.items()):
        running.add_metric([feature_set, model_type], count)
    yield from (runs, running)


def _add(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)


def _rank(severity: str | None) -> int | None:
    """A stored severity as its gauge value; no severity (not enough data) stays absent."""
    return None if severity is None else severity_rank(severity)


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------ one app's /metrics


class _Forward:
    """Hands a registry's metrics to another registry at collect time."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


class AppMetrics:
    """What one app's ``/metrics`` answers, and the per-worker upkeep that feeds it.

    Parameters
    ----------
    services:
        The running services of this process.
    multiprocess_dir:
        prometheus-client's multiprocess folder, or None for a single process.
    store_cache_seconds:
        How old the store-derived figures may grow before a scrape starts a new read (in
        the background; see :class:`StoreReadings`).
    """

    def __init__(
        self,
        services: Services,
        *,
        multiprocess_dir: Path | None = None,
        store_cache_seconds: float = STORE_CACHE_SECONDS,
    ) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.logger_mirror = LoggerMirror(services.logger)
        self.store_readings = StoreReadings(
            lambda: read_monitoring_snapshot(services, JOB_NAMES), store_cache_seconds
        )
        # The scrape-time registry: this process's (or every worker's) metrics, plus the
        # figures read at scrape time, which are therefore never multiplied by the workers.
        self.registry = CollectorRegistry()
        if multiprocess_dir is not None:
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))
        else:
            self.registry.register(_Forward(REGISTRY))
        self.registry.register(ScrapeTimeCollector(self.store_readings, services.logger))
        self._stop = threading.Event()
        self._publisher: threading.Thread | None = None

    def start(self) -> AppMetrics:
        if self.multiprocess_dir is not None:
            # A worker that is not scraped must still publish its logger figures.
            self._publisher = threading.Thread(
                target=self._publish, name="metrics-publisher", daemon=True
            )
            self._publisher.start()
        return self

    def _publish(self) -> None:
        while not self._stop.wait(WORKER_SYNC_SECONDS):
            try:
                self.logger_mirror.sync()
            except Exception as exc:  # never let monitoring take a worker down
                log.warning("metrics: publishing logger figures failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        if self._publisher is not None:
            self._publisher.join(timeout=5)
        # This runs before the services close: let the logger drain its queue first, so the
        # records this worker writes while shutting down are counted (its files outlive it).
        self.logger_mirror.logger.flush(timeout=10)
        self.logger_mirror.sync()
        if self.multiprocess_dir is not None:
            # Drop this worker's live gauges (queue depth, spooling); counters stay summed.
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its content type (OpenMetrics if ``accept`` asks for it)."""
        self.logger_mirror.sync()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


def multiprocess_dir() -> Path | None:
    """The multiprocess folder when prometheus-client runs in multiprocess mode, else None."""
    configured = os.environ.get(MULTIPROCESS_ENV, "").strip()
    return Path(configured) if configured else None


def prepare_multiprocess_dir(home: Path) -> Path:
    """Create ``home/prometheus`` (or the folder already in ``PROMETHEUS_MULTIPROC_DIR``) and
    remove the metric files of earlier runs, so counters start from zero with the server.

    Only prometheus-client's ``*.db`` files are removed; anything else in the folder stays.
    """
    folder = multiprocess_dir() or home / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return folder


@asynccontextmanager
async def metrics_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan, so the services exist when it starts."""
    metrics = AppMetrics(app.state.services, multiprocess_dir=multiprocess_dir()).start()
    app.state.metrics = metrics
    try:
        yield
    finally:
        metrics.close()
