"""Scrape-time Prometheus metrics, read by the answering process from what all processes
share: the store (accuracy, drift, retraining runs, champions, scheduler runs), the spool
folder, the build.

:class:`StoreReadings` re-reads the store's monitoring snapshot in the background, so a scrape
never waits for the store; :class:`ScrapeTimeCollector` yields the families, and
:func:`snapshot_families` turns a snapshot into them. Separate from ``process_metrics``
because these are never multiprocess gauges: they are reported once, not once per worker.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from btcmlops import __version__
from btcmlops.mlops.monitoring import MonitoringSnapshot
from btcmlops.mlops.predictions.writer import PredictionLogger
from btcmlops.severity import severity_rank

log = logging.getLogger(__name__)

STORE_CACHE_SECONDS = 30.0  # the figures move hourly; a week of predictions takes a while to read
STORE_TIMEOUT_SECONDS = 2.0  # a store read still running after this means the store hangs


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
