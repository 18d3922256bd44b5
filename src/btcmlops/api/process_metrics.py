"""Per-process Prometheus metrics, counted as things happen: HTTP requests and their latency
(the :class:`RequestMetrics` middleware) and the prediction logger's records and queue
(:class:`LoggerMirror`, from ``PredictionLogger.health()``).

Separate from ``scrape_metrics`` because these live in prometheus-client's registry (or its
multiprocess files, summed over workers), while those are read once per scrape from what all
processes share. Metric objects are module-level because that is how prometheus-client
works: one object per name per process, whichever app or thread updates it.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btcmlops.mlops.predictions.writer import PredictionLogger

# /predict answers in about a millisecond; a synchronous retraining may take a minute.
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # requests no route matched share one label: cardinality stays bounded

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
