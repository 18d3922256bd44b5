"""The long-lived parts one process needs to serve and to run the MLOps loop.

An API worker, the standalone scheduler and the demo each build one :class:`Runtime` over
their :class:`~btcmlops.context.AppContext`, so every path (HTTP, CLI, scheduled job) uses
the same registry, predictor, prediction logger and prediction queries, drift detectors (the
daily checks and the hourly sequential detector, kept fitted in memory between hours) and
retraining policy.
"""

from __future__ import annotations

import logging

from btcmlops.context import AppContext
from btcmlops.mlops.drift.monitor import DriftDetector
from btcmlops.mlops.drift.sequential_monitor import SequentialMonitor
from btcmlops.mlops.leases import Leases
from btcmlops.mlops.predictions.ids import PredictionIdGenerator, register_node
from btcmlops.mlops.predictions.queries import PredictionQueries
from btcmlops.mlops.predictions.writer import PredictionLogger
from btcmlops.mlops.retraining import AutomatedRetraining
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.serving.predictor import Predictor

log = logging.getLogger(__name__)


class Runtime:
    """Registry, predictor, prediction logger and queries, drift detectors and retraining over
    one store and clock."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.settings = context.settings
        self.clock = context.clock
        self.store = context.store
        self.leases = Leases(self.store)
        self.registry = ModelRegistry(self.store, self.settings.artifacts_dir, self.clock)
        self.predictor = Predictor(self.store, self.registry, self.clock, n_jobs=1)
        node = register_node(self.store, self.clock)
        self.logger = PredictionLogger(
            self.store, self.clock, self.settings, PredictionIdGenerator(node)
        )
        self.predictions = PredictionQueries(self.store, self.clock)
        self.drift = DriftDetector(self.store, self.clock, self.settings)
        self.sequential = SequentialMonitor(self.store, self.clock, self.settings)
        self.retraining = AutomatedRetraining(
            self.store,
            self.clock,
            self.settings,
            self.registry,
            drift_summary=lambda fs, mt: self.drift.get_drift_summary(fs, mt, record=False),
            sequential_status=self.sequential.status,
            leases=self.leases,
            on_champion_change=self.champion_changed,
        )

    def champion_changed(self, feature_set: str, model_type: str) -> None:
        """Serve the new champion at once (other processes pick it up within seconds)."""
        try:
            self.predictor.reload(feature_set, model_type)
        except Exception as exc:  # the refresh retries; the old champion keeps serving
            log.warning("reload after champion change failed: %s", exc)

    def start(self) -> Runtime:
        self.logger.start()
        try:  # warm up: every champion, the newest rows and their answers before first use
            self.predictor.refresh()
            self.predictor.warm_answers()
        except Exception as exc:
            log.warning("warm-up failed: %s", exc)
        return self

    def close(self) -> None:
        self.logger.close()
