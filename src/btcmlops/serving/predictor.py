"""The predictor: newest feature row + champion model -> a direction and its probabilities.

Both inputs are kept in memory. ``refresh()`` (called by the server's watcher every couple of
seconds, and by the scheduler right after it builds features or moves a champion) looks for a
newer feature row and a moved champion pointer with two small queries, so several worker
processes pick up a new champion without talking to each other. A (model version, feature
row) pair is computed once and the answer reused: the same inputs give the same answer.

Serving never fits anything: the pipeline's own imputer fills missing values, and the answer
says how many it filled. One row goes through :class:`RowModel`, the pipeline's arithmetic
without scikit-learn's per-call input validation (bit for bit the same answer).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sklearn.pipeline import Pipeline
from sqlalchemy import func, select

from btcmlops.clock import Clock
from btcmlops.db.models import FeatureRow
from btcmlops.db.store import Store
from btcmlops.errors import ArtifactIntegrityError, DependencyUnavailableError, NotFoundError
from btcmlops.features.schema import FEATURE_SETS, FEATURE_VERSION, validate_feature_set
from btcmlops.features.stored_inputs import LatestFeatureRow, latest_feature_row
from btcmlops.modeling.model_types import (
    validate_model_type,
)
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import ModelVersionInfo, fallback_words
from btcmlops.serving.row_model import Answer, RowModel, compute_answer

log = logging.getLogger(__name__)
_ANSWER_CACHE_SIZE = 256


@dataclass(frozen=True)
class LoadedModel:
    info: ModelVersionInfo
    pipeline: Pipeline
    loaded_at: datetime

    @cached_property
    def row_model(self) -> RowModel | None:
        """The pipeline's one-row fast path (``None``: answers go through the pipeline)."""
        return RowModel.of(self.pipeline, self.info.feature_names)

    def describe(self) -> dict[str, object]:
        return {
            "feature_set": self.info.feature_set,
            "model_type": self.info.model_type,
            "version": self.info.version,
            "loaded_at": self.loaded_at.isoformat(),
            "test_accuracy": self.info.test_accuracy,
            "features": len(self.info.feature_names),
            "kind": self.info.kind,
            "fallback": fallback_words(self.info),
        }


@dataclass(frozen=True)
class Prediction:
    """An answer with everything a response and a log record need."""

    feature_set: str
    model_type: str
    model: ModelVersionInfo
    answer: Answer
    feature_ts: datetime
    close: float
    features: Mapping[str, float | None]
    cached_features: bool


class Predictor:
    """Answers predictions from the champion of each (feature set, model type)."""

    def __init__(self, store: Store, registry: ModelRegistry, clock: Clock, *, n_jobs: int = 1):
        self.store = store
        self.registry = registry
        self.clock = clock
        self.n_jobs = n_jobs
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self._rows: dict[str, LatestFeatureRow] = {}
        # (version, feature set, hour) -> (the row object answered, the answer)
        self._answers: OrderedDict[tuple[str, str, datetime], tuple[LatestFeatureRow, Answer]] = (
            OrderedDict()
        )
        self._load_errors: dict[tuple[str, str], str] = {}
        self._shadow_models: dict[str, LoadedModel] = {}
        self._lock = threading.RLock()

    # --------------------------------------------------------------------------- answers
    def predict(
        self, feature_set: str, model_type: str, *, use_cached_features: bool = True
    ) -> Prediction:
        """Predict the next hour's direction for the newest feature row of ``feature_set``.

        Raises NotFoundError when the pair has no champion, DependencyUnavailableError when
        no feature row exists yet, ArtifactIntegrityError when the champion cannot load.
        """
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        model = self._models.get((feature_set, model_type)) or self.reload(feature_set, model_type)
        row = self._rows.get(feature_set) if use_cached_features else None
        cached = row is not None
        if row is None:
            row = self._read_row(feature_set)
        if model.info.feature_version != FEATURE_VERSION:
            raise DependencyUnavailableError(
                f"the champion {model.info.version} was trained on feature version "
                f"{model.info.feature_version} but this server builds {FEATURE_VERSION}: "
                "retrain it (btcmlops train ... --promote)"
            )
        answer = self._answer(model, row)
        return Prediction(
            feature_set=feature_set,
            model_type=model_type,
            model=model.info,
            answer=answer,
            feature_ts=row.ts,
            close=row.close,
            features=row.values,
            cached_features=cached,
        )

    def predict_shadow(self, model: ModelVersionInfo) -> Prediction:
        """What a shadow model says about the newest feature row of its set (the row the
        champion answered from, cached): computed for the log, never served."""
        row = self._rows.get(model.feature_set) or self._read_row(model.feature_set)
        loaded = self._shadow_models.get(model.version)
        if loaded is None:
            loaded = LoadedModel(model, self.registry.load_pipeline(model), self.clock.now())
            with self._lock:
                self._shadow_models[model.version] = loaded
        return Prediction(
            feature_set=model.feature_set,
            model_type=model.model_type,
            model=model,
            answer=self._answer(loaded, row),
            feature_ts=row.ts,
            close=row.close,
            features=row.values,
            cached_features=True,
        )

    def forget_shadows(self, keep: set[str]) -> None:
        """Drop loaded shadow models whose versions are no longer in ``keep``."""
        with self._lock:
            for version in set(self._shadow_models) - keep:
                del self._shadow_models[version]

    def remember_row(self, feature_set: str, row: LatestFeatureRow) -> None:
        """Take ``row``, just stored by a build in this process, as the set's newest row
        (unless a newer one is held), so :meth:`refresh` need not read it back."""
        with self._lock:
            current = self._rows.get(feature_set)
            if current is None or row.ts > current.ts:
                self._rows[feature_set] = row

    def newest_row_hour(self, feature_set: str) -> datetime:
        """The hour of the newest feature row, read from the store (no prediction made); the
        row itself is read only when it is not the one held already."""
        feature_set = validate_feature_set(feature_set)
        newest = self._newest_hours().get(feature_set)
        cached = self._rows.get(feature_set)
        if newest is not None and cached is not None and cached.ts == newest:
            return newest
        return self._read_row(feature_set).ts

    def warm_answers(self) -> None:
        """Compute the answer of every loaded champion on its newest row, ahead of requests."""
        for (feature_set, _), model in list(self._models.items()):
            row = self._rows.get(feature_set)
            if row is not None and model.info.feature_version == FEATURE_VERSION:
                self._answer(model, row)

    def is_warm(self, feature_set: str, model_type: str) -> bool:
        """True when a prediction needs no database or disk access."""
        return (feature_set, model_type) in self._models and feature_set in self._rows

    def _answer(self, model: LoadedModel, row: LatestFeatureRow) -> Answer:
        key = (model.info.version, model.info.feature_set, row.ts)
        cached = self._answers.get(key)
        # The same row object, not just the same hour: a rebuilt row read afresh is answered
        # again.
        if cached is not None and cached[0] is row:
            return cached[1]
        row_model = model.row_model
        if row_model is not None:
            answer = row_model.answer(row.values)
        else:
            answer = compute_answer(
                model.pipeline, model.info.feature_names, row.values, self.n_jobs
            )
        with self._lock:
            self._answers[key] = (row, answer)
            while len(self._answers) > _ANSWER_CACHE_SIZE:
                self._answers.popitem(last=False)
        return answer

    # --------------------------------------------------------------------------- inputs
    def _read_row(self, feature_set: str) -> LatestFeatureRow:
        row = latest_feature_row(self.store, feature_set)
        if row is None:
            raise DependencyUnavailableError(
                f"no {feature_set} feature row has been built yet: ingest prices and run "
                f"`btcmlops features build --feature-set {feature_set}`"
            )
        with self._lock:
            current = self._rows.get(feature_set)
            if current is None or row.ts >= current.ts:
                self._rows[feature_set] = row
        return row

    def reload(self, feature_set: str, model_type: str, *, force: bool = False) -> LoadedModel:
        """Load the pair's champion from the registry pointer (sha256-verified).

        ``force`` re-reads and re-verifies the artifact even if that version is loaded.

        If the new champion cannot load, the model already in memory keeps serving and the
        error is kept for ``/health``; with nothing in memory the error is raised.
        """
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        pair = (feature_set, model_type)
        champion = self.registry.champion(feature_set, model_type)
        if champion is None:
            raise NotFoundError(
                f"no champion model for {feature_set}/{model_type} yet: train one with "
                f"`btcmlops train --feature-set {feature_set} --model-type {model_type} --promote`"
            )
        with self._lock:
            current = self._models.get(pair)
            if current is not None and current.info.version == champion.version and not force:
                return current
            try:
                pipeline = self.registry.load_pipeline(champion)
            except ArtifactIntegrityError as exc:
                self._load_errors[pair] = str(exc)
                log.error("cannot load champion %s: %s", champion.version, exc)
                if current is not None:
                    return current
                raise
            loaded = LoadedModel(champion, pipeline, self.clock.now())
            self._models[pair] = loaded
            self._load_errors.pop(pair, None)
            log.info("loaded champion %s", champion.version)
            return loaded

    def refresh(self) -> None:
        """Pick up newer feature rows and moved champion pointers (one small query, and the
        registry's cached view of its champions)."""
        newest = self._newest_hours()
        champions = {
            (model.feature_set, model.model_type): model.version
            for model in self.registry.champions()
        }
        for feature_set, ts in newest.items():
            cached = self._rows.get(feature_set)
            if cached is None or ts > cached.ts:
                self._read_row(feature_set)
        for pair in set(self._models) - set(champions):
            with self._lock:
                self._models.pop(pair, None)
        for pair, version in champions.items():
            loaded = self._models.get(pair)
            if loaded is None or loaded.info.version != version:
                try:
                    self.reload(*pair)
                except ArtifactIntegrityError:
                    continue  # recorded in load_errors; the previous model (if any) serves

    def _newest_hours(self) -> dict[str, datetime]:
        """The hour of each feature set's newest stored row (sets without rows left out)."""
        with self.store.connection() as connection:
            newest_hours = connection.execute(_NEWEST_HOURS).one()
        return {
            feature_set: ts
            for feature_set, ts in zip(FEATURE_SETS, newest_hours, strict=True)
            if ts is not None
        }

    def forget_features(self, feature_set: str | None = None) -> None:
        with self._lock:
            if feature_set is None:
                self._rows.clear()
            else:
                self._rows.pop(feature_set, None)

    # --------------------------------------------------------------------------- state
    def loaded_models(self) -> list[LoadedModel]:
        return list(self._models.values())

    def load_errors(self) -> dict[str, str]:
        return {f"{fs}/{mt}": message for (fs, mt), message in self._load_errors.items()}

    def cached_rows(self) -> dict[str, datetime]:
        return {feature_set: row.ts for feature_set, row in self._rows.items()}


# What refresh() asks each time, built once. One look per feature set into the (set,
# version, hour) index, where a GROUP BY would scan every stored row.
_NEWEST_HOURS = select(
    *(
        select(func.max(FeatureRow.ts))
        .where(
            FeatureRow.feature_set == feature_set,
            FeatureRow.feature_version == FEATURE_VERSION,
        )
        .scalar_subquery()
        for feature_set in FEATURE_SETS
    )
)
