"""Prometheus metrics of a server process, exposed at ``GET /metrics``.

The route itself, and ``install_metrics`` that adds it with the request middleware, are in
``api/routers/prometheus.py``; this module never imports them. This module assembles one
app's exposition and its per-worker upkeep (:class:`AppMetrics`, :func:`metrics_lifespan`);
the metrics are in two modules, kept apart on purpose:

* **Per process** (``process_metrics``), counted as things happen: HTTP requests and their
  latency (the ``RequestMetrics`` middleware), predictions
  (``mlops.monitoring.count_prediction``) and the prediction logger's records and queue
  (mirrored from ``PredictionLogger.health()``). With one process they live in
  prometheus-client's default registry. With several uvicorn workers, set
  ``PROMETHEUS_MULTIPROC_DIR`` (``btcmlops serve --workers N`` sets it to
  ``$BTCMLOPS_HOME/prometheus`` and empties it at start): every worker writes its values to
  files there and whichever worker answers a scrape sums them.
* **At scrape time** (``scrape_metrics``), read by the answering process from what all
  processes share: the store (accuracy, drift, retraining runs, champions, scheduler runs),
  the spool folder, the build. A ``ScrapeTimeCollector`` produces them on the scrape-time
  registry, never as multiprocess gauges, so they are reported once, not once per worker.
  Store readings are re-read in the background at most every ``STORE_CACHE_SECONDS``
  (``StoreReadings``), so a scrape never waits for the store; when the store is down the
  scrape still answers, with ``btcmlops_store_up 0`` and the last readings it had (their age
  in ``btcmlops_store_readings_age_seconds``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from btcmlops.api.process_metrics import LoggerMirror
from btcmlops.api.scrape_metrics import STORE_CACHE_SECONDS, ScrapeTimeCollector, StoreReadings
from btcmlops.mlops.monitoring import read_monitoring_snapshot
from btcmlops.mlops.timetable import TIMETABLE

if TYPE_CHECKING:
    from btcmlops.api.services import Services

log = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own switch
WORKER_SYNC_SECONDS = 2.0  # how often a worker publishes its logger figures (multiprocess)
JOB_NAMES = tuple(name for name, _, _ in TIMETABLE)


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
