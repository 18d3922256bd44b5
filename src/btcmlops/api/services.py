"""The long-lived parts a server process holds, built once at start-up and closed at the end.

Routes receive them through ``deps.get_services`` (FastAPI ``Depends``), never as globals.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from btcmlops.context import AppContext
from btcmlops.mlops.automated_retraining import AutomatedRetraining, RetrainJob
from btcmlops.mlops.drift_detector import DriftDetector
from btcmlops.mlops.prediction_ids import PredictionIdGenerator, register_node
from btcmlops.mlops.prediction_logger import PredictionLogger
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.serving.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass
class AccuracyCache:
    """Seven-day live accuracy per (feature set, model type), recomputed at most every ``ttl``.

    The ``/predict`` response carries it; an SQL aggregate per request would cost more than
    the prediction itself.
    """

    logger: PredictionLogger
    ttl_seconds: float = 30.0
    days: int = 7
    _values: dict[tuple[str, str], tuple[float, float | None]] = field(default_factory=dict)

    def is_fresh(self, feature_set: str, model_type: str) -> bool:
        cached = self._values.get((feature_set, model_type))
        return cached is not None and time.monotonic() - cached[0] < self.ttl_seconds

    def get(self, feature_set: str, model_type: str) -> float | None:
        key = (feature_set, model_type)
        cached = self._values.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl_seconds:
            return cached[1]
        try:
            accuracy = self.logger.get_model_accuracy(feature_set, model_type, self.days)[
                "accuracy"
            ]
        except Exception:  # the store is down: the prediction is still answered
            accuracy = cached[1] if cached else None
        self._values[key] = (now, accuracy)
        return accuracy


class Services:
    """Registry, predictor, prediction logger and the watcher that keeps them fresh."""

    def __init__(self, context: AppContext, *, refresh_seconds: float = 2.0) -> None:
        self.context = context
        self.settings = context.settings
        self.clock = context.clock
        self.store = context.store
        self.registry = ModelRegistry(self.store, self.settings.artifacts_dir, self.clock)
        self.predictor = Predictor(self.store, self.registry, self.clock, n_jobs=1)
        node = register_node(self.store, self.clock)
        self.logger = PredictionLogger(
            self.store, self.clock, self.settings, PredictionIdGenerator(node)
        )
        self.accuracy = AccuracyCache(self.logger)
        self.drift = DriftDetector(self.store, self.clock, self.settings)
        self.retraining = AutomatedRetraining(
            self.store,
            self.clock,
            self.settings,
            self.registry,
            drift_summary=lambda fs, mt: self.drift.get_drift_summary(fs, mt, record=False),
            on_champion_change=self._champion_changed,
        )
        # Retraining jobs run here, off the request threads; two at most on two cores.
        self._jobs = ThreadPoolExecutor(max_workers=2, thread_name_prefix="retrain")
        self.refresh_seconds = refresh_seconds
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.last_refresh_error: str | None = None

    def _champion_changed(self, feature_set: str, model_type: str) -> None:
        try:
            self.predictor.reload(feature_set, model_type)
        except Exception as exc:  # the watcher retries; the old champion keeps serving
            log.warning("reload after champion change failed: %s", exc)

    def submit_job(self, job: RetrainJob) -> Future:
        return self._jobs.submit(job.run)

    def wait_for(self, future: Future) -> dict[str, Any] | None:
        """The job's result, or None if it is still running after the synchronous timeout."""
        try:
            return future.result(timeout=self.settings.retrain_timeout_seconds)
        except FutureTimeout:
            return None

    def start(self) -> Services:
        self.logger.start()
        try:  # warm up: load every champion and the newest rows before the first request
            self.predictor.refresh()
        except Exception as exc:
            self.last_refresh_error = f"{type(exc).__name__}: {exc}"
            log.warning("warm-up failed: %s", self.last_refresh_error)
        self._watcher = threading.Thread(target=self._watch, name="serving-watcher", daemon=True)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.predictor.refresh()
                self.last_refresh_error = None
            except Exception as exc:  # keep serving what is in memory
                self.last_refresh_error = f"{type(exc).__name__}: {exc}"
                log.warning("serving refresh failed: %s", self.last_refresh_error)

    def close(self) -> None:
        self._stop.set()
        self._jobs.shutdown(wait=True, cancel_futures=False)
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self.logger.close()

    def health(self) -> dict[str, Any]:
        """Real checks of the store, the writer queue and the loaded models."""
        components: dict[str, Any] = {}
        try:
            self.store.ping()
            components["store"] = {"status": "ok", "dialect": self.store.dialect}
        except Exception as exc:
            components["store"] = {"status": "unavailable", "error": str(exc)}
        logging_health = self.logger.health().as_dict()
        components["prediction_logging"] = logging_health
        loaded = [model.describe() for model in self.predictor.loaded_models()]
        components["models"] = {
            "loaded": loaded,
            "load_errors": self.predictor.load_errors(),
            "feature_rows": {k: v.isoformat() for k, v in self.predictor.cached_rows().items()},
        }
        if not loaded:
            status = "unhealthy"
        elif (
            components["store"]["status"] != "ok"
            or logging_health["state"] != "ok"
            or logging_health["lost"] > 0
        ):
            status = "degraded"
        else:
            status = "healthy"
        return {"status": status, "loaded_models": len(loaded), "components": components}
