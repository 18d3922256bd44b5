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
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import func, select

from btcmlops.clock import Clock
from btcmlops.db.models import FeatureRow
from btcmlops.db.store import Store
from btcmlops.errors import ArtifactIntegrityError, DependencyUnavailableError, NotFoundError
from btcmlops.features.builder import LatestFeatureRow, latest_feature_row
from btcmlops.features.schema import FEATURE_SETS, FEATURE_VERSION, validate_feature_set
from btcmlops.modeling.model_types import (
    CLASSIFIER_STEP,
    IMPUTER_STEP,
    SCALER_STEP,
    class_probabilities,
    feature_order,
    prediction_threads,
    validate_model_type,
)
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import ModelVersionInfo, fallback_words

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
class Answer:
    """What a model says about one feature row."""

    prediction: int
    probability_down: float
    probability_up: float
    imputed_features: int

    @property
    def confidence(self) -> float:
        return max(self.probability_down, self.probability_up)


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
        """The hour of the newest feature row, read from the store (no prediction made)."""
        return self._read_row(validate_feature_set(feature_set)).ts

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
        with self.store.connection() as connection:
            newest_hours = connection.execute(_NEWEST_HOURS).one()
        newest = {
            feature_set: ts
            for feature_set, ts in zip(FEATURE_SETS, newest_hours, strict=True)
            if ts is not None
        }
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


def compute_answer(
    pipeline: Pipeline,
    feature_names: list[str],
    values: Mapping[str, float | None],
    n_jobs: int = 1,
) -> Answer:
    """Run one feature row through a fitted pipeline, exactly as offline prediction does."""
    vector = np.array([[_as_float(values.get(name)) for name in feature_names]], dtype=float)
    imputed = int(np.count_nonzero(~np.isfinite(vector)))
    vector[~np.isfinite(vector)] = np.nan  # infinities are imputed like missing values
    frame = pd.DataFrame(vector, columns=feature_names)
    probabilities = class_probabilities(pipeline, frame)[0]
    classes = list(pipeline.classes_)
    up, down = float(probabilities[classes.index(1)]), float(probabilities[classes.index(0)])
    return Answer(
        prediction=1 if up > down else 0,
        probability_down=down,
        probability_up=up,
        imputed_features=imputed,
    )


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


class RowModel:
    """A fitted ``imputer → scaler → classifier`` pipeline, applied to one row at a time.

    scikit-learn validates its input on every call: on the one-row DataFrame an hourly
    prediction is, checking dtypes and feature names costs about a hundred times the
    arithmetic (milliseconds per step), and a forest's ``predict_proba`` validates again for
    each of its trees. Here the validation is done once, when the model is loaded, and each
    row runs the same operations in the same order, so the answer is bit for bit
    :func:`compute_answer`'s (``tests/test_serving_row_model.py`` checks every model type):

    * the median imputer writes its ``statistics_`` into the missing entries;
    * the scaler subtracts ``mean_`` and divides by ``scale_`` (each if it is on);
    * a random forest adds its trees' leaf class fractions, in float64 from zero in tree
      order, and divides by the number of trees (as
      :func:`~btcmlops.modeling.model_types.forest_probabilities` does); any other
      classifier answers through its own ``predict_proba`` on the transformed row.

    :meth:`of` returns ``None`` for a pipeline of any other shape, which then answers
    through scikit-learn as before.
    """

    def __init__(
        self,
        feature_names: list[str],
        fill: np.ndarray,
        mean: np.ndarray | None,
        scale: np.ndarray | None,
        classifier: object,
    ) -> None:
        self.feature_names = feature_names  # the pipeline's column order
        self.fill = fill
        self.mean = mean
        self.scale = scale
        self.classifier = classifier
        self.classes = [int(label) for label in classifier.classes_]  # type: ignore[attr-defined]
        self.forest: FlatForest | None = None
        if isinstance(classifier, RandomForestClassifier):
            self.forest = FlatForest(classifier)

    @classmethod
    def of(cls, pipeline: Pipeline, feature_names: list[str]) -> RowModel | None:
        """The fast path of ``pipeline``, or ``None`` when it is not the shape described."""
        if [name for name, _ in pipeline.steps] != [IMPUTER_STEP, SCALER_STEP, CLASSIFIER_STEP]:
            return None
        imputer = pipeline.named_steps[IMPUTER_STEP]
        scaler = pipeline.named_steps[SCALER_STEP]
        classifier = pipeline.named_steps[CLASSIFIER_STEP]
        columns = feature_order(pipeline)
        if (
            type(imputer) is not SimpleImputer
            or not _is_nan(imputer.missing_values)
            or imputer.add_indicator
            or not imputer.keep_empty_features
            or imputer.statistics_.dtype != np.float64
            or type(scaler) is not StandardScaler
            or columns != list(feature_names)
            or sorted(int(label) for label in classifier.classes_) != [0, 1]
        ):
            return None
        return cls(
            columns,
            fill=imputer.statistics_,
            mean=scaler.mean_.astype(np.float64) if scaler.with_mean else None,
            scale=scaler.scale_.astype(np.float64) if scaler.with_std else None,
            classifier=classifier,
        )

    def answer(self, values: Mapping[str, float | None]) -> Answer:
        """What the model says about one feature row (missing and infinite values imputed)."""
        vector = np.array([[_as_float(values.get(name)) for name in self.feature_names]])
        missing = ~np.isfinite(vector)
        vector[missing] = self.fill[missing[0]]
        if self.mean is not None:
            vector -= self.mean
        if self.scale is not None:
            vector /= self.scale
        probabilities = self._probabilities(vector)
        up = float(probabilities[self.classes.index(1)])
        down = float(probabilities[self.classes.index(0)])
        return Answer(
            prediction=1 if up > down else 0,
            probability_down=down,
            probability_up=up,
            imputed_features=int(np.count_nonzero(missing)),
        )

    def _probabilities(self, vector: np.ndarray) -> np.ndarray:
        if self.forest is None:
            with prediction_threads(1):
                return self.classifier.predict_proba(vector)[0]  # type: ignore[attr-defined]
        return self.forest.probabilities(vector[0])


class FlatForest:
    """A fitted random forest's trees as one set of node arrays, walked all at once.

    Walking 200 trees one by one through ``tree_.apply`` costs a call into scikit-learn per
    tree (about a millisecond a row); here every tree takes its step together, one numpy
    gather per level. The walk is scikit-learn's: the row in float32 (the forest's input
    dtype), ``value <= threshold`` compared in float64, left when true. A leaf points at
    itself, so trees shallower than the deepest simply stay put. The leaves' class
    fractions are added in float64 from zero in tree order (``cumsum`` adds sequentially),
    then divided by the number of trees, so the answer is bit for bit the per-tree sum's.
    """

    def __init__(self, forest: RandomForestClassifier) -> None:
        n_classes = int(forest.n_classes_)
        features, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
        offset = 0
        depth = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            count = int(tree.node_count)
            left = tree.children_left.astype(np.intp)
            right = tree.children_right.astype(np.intp)
            leaf = left < 0
            itself = np.arange(count, dtype=np.intp)
            left[leaf] = itself[leaf]
            right[leaf] = itself[leaf]
            feature = tree.feature.astype(np.intp)
            feature[leaf] = 0  # any column: the leaf goes to itself either way
            features.append(feature)
            thresholds.append(tree.threshold.astype(np.float64))
            lefts.append(left + offset)
            rights.append(right + offset)
            # A tree's predict_proba is its leaf's row of ``tree_.value`` (the class
            # fractions of the training rows in that leaf), cut to the known classes.
            values.append(tree.value[:, 0, :n_classes].astype(np.float64))
            roots.append(offset)
            offset += count
            depth = max(depth, int(tree.max_depth))
        self.feature = np.concatenate(features)
        self.threshold = np.concatenate(thresholds)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.value = np.concatenate(values)
        self.roots = np.array(roots, dtype=np.intp)
        self.depth = depth

    def leaves(self, row: np.ndarray) -> np.ndarray:
        """The leaf each tree sends ``row`` (one transformed feature vector) to."""
        values = np.asarray(row, dtype=np.float32).astype(np.float64)
        nodes = self.roots
        for _ in range(self.depth):
            left = values[self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(left, self.left[nodes], self.right[nodes])
        return nodes

    def probabilities(self, row: np.ndarray) -> np.ndarray:
        """The forest's class probabilities for one transformed feature vector."""
        total = np.cumsum(self.value[self.leaves(row)], axis=0)[-1]
        return total / len(self.roots)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _as_float(value: float | None) -> float:
    if value is None:
        return math.nan
    return float(value)
