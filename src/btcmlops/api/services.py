"""What a server process holds: the runtime plus API-specific parts, built once at start-up.

Routes receive them as a ``services: deps.ServicesDep`` parameter (FastAPI ``Depends``), never
as globals.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from btcmlops.context import AppContext
from btcmlops.mlops.predictions.queries import PredictionQueries
from btcmlops.mlops.retraining import RetrainJob
from btcmlops.mlops.retraining.results import RetrainResult
from btcmlops.mlops.runtime import Runtime
from btcmlops.mlops.scheduler import Scheduler

log = logging.getLogger(__name__)
ACCURACY_REFRESH_TICKS = 15  # the live-accuracy figure is refreshed every 15 watcher ticks


class AccuracyCache:
    """Seven-day live accuracy per (feature set, model type), for the ``/predict`` response.

    The request path only ever reads the dictionary; the serving watcher recomputes the
    figures in the background (an SQL aggregate per request would cost more than the
    prediction itself, and a burst of requests must not all recompute an expired value).
    """

    def __init__(self, predictions: PredictionQueries, days: int = 7) -> None:
        self.predictions = predictions
        self.days = days
        self._values: dict[tuple[str, str], float | None] = {}

    def get(self, feature_set: str, model_type: str) -> float | None:
        return self._values.get((feature_set, model_type))

    def refresh(self, pairs: list[tuple[str, str]]) -> None:
        for feature_set, model_type in pairs:
            try:
                stats = self.predictions.get_model_accuracy(feature_set, model_type, self.days)
            except Exception:  # the store is down: keep the last known value
                continue
            self._values[(feature_set, model_type)] = stats["accuracy"]


class Services(Runtime):
    """The runtime plus what the HTTP API adds: a live-accuracy cache, background retraining
    jobs, the watcher that keeps the predictor fresh, and (optionally) the scheduler."""

    def __init__(
        self,
        context: AppContext,
        *,
        refresh_seconds: float = 2.0,
        with_scheduler: bool = False,
    ) -> None:
        super().__init__(context)
        self.accuracy = AccuracyCache(self.predictions)
        # Retraining jobs run here, off the request threads; two at most on two cores.
        self._jobs = ThreadPoolExecutor(max_workers=2, thread_name_prefix="retrain")
        self.refresh_seconds = refresh_seconds
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.last_refresh_error: str | None = None
        self.scheduler: Scheduler | None = Scheduler(self) if with_scheduler else None

    def submit_job(self, job: RetrainJob) -> Future[RetrainResult]:
        return self._jobs.submit(job.run)

    def wait_for(self, future: Future[RetrainResult]) -> RetrainResult | None:
        """The job's result, or None if it is still running after the synchronous timeout."""
        try:
            return future.result(timeout=self.settings.retrain_timeout_seconds)
        except FutureTimeout:
            return None

    def _refresh_accuracy(self) -> None:
        pairs = [(m.info.feature_set, m.info.model_type) for m in self.predictor.loaded_models()]
        self.accuracy.refresh(pairs)

    def start(self) -> Services:
        super().start()
        self._refresh_accuracy()
        self._watcher = threading.Thread(target=self._watch, name="serving-watcher", daemon=True)
        self._watcher.start()
        if self.scheduler is not None:
            self.scheduler.start()
        return self

    def _watch(self) -> None:
        ticks = 0
        while not self._stop.wait(self.refresh_seconds):
            ticks += 1
            try:
                self.predictor.refresh()
                if ticks % ACCURACY_REFRESH_TICKS == 0:
                    self._refresh_accuracy()
                self.last_refresh_error = None
            except Exception as exc:  # keep serving what is in memory
                self.last_refresh_error = f"{type(exc).__name__}: {exc}"
                log.warning("serving refresh failed: %s", self.last_refresh_error)

    def close(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        self._jobs.shutdown(wait=True, cancel_futures=False)
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        super().close()

    def health(self) -> dict[str, Any]:
        """Real checks of the store, the writer queue, the loaded models and the scheduler."""
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
            # a declared fallback is a healthy state, said in words: no learned model has skill
            "fallbacks": [model["fallback"] for model in loaded if model.get("fallback")],
            "load_errors": self.predictor.load_errors(),
            "feature_rows": {k: v.isoformat() for k, v in self.predictor.cached_rows().items()},
            "refresh_error": self.last_refresh_error,
        }
        components["scheduler"] = (
            self.scheduler.describe() if self.scheduler is not None else {"running": False}
        )
        if not loaded:
            status = "unhealthy"
        elif (
            components["store"]["status"] != "ok"
            or logging_health["state"] != "ok"
            or logging_health["lost"] > 0
            or components["models"]["load_errors"]  # the registry's champion cannot load
        ):
            status = "degraded"
        else:
            status = "healthy"
        return {"status": status, "loaded_models": len(loaded), "components": components}
