"""One feature row through a fitted pipeline: :class:`RowModel`, the pipeline's arithmetic
without scikit-learn's per-call input validation, and :func:`compute_answer`, the same
answer through scikit-learn, which offline prediction uses and the tests compare against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from btcmlops.modeling.baselines import BaselineRule
from btcmlops.modeling.model_types import (
    CLASSIFIER_STEP,
    IMPUTER_STEP,
    SCALER_STEP,
    class_probabilities,
    feature_order,
    prediction_threads,
)


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
        # A baseline rule is plain numpy on one row: no native thread pool to pin (pinning
        # one costs about a third of a millisecond a call, more than the rule itself).
        self.native = not isinstance(classifier, BaselineRule)

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
        if self.forest is not None:
            return self.forest.probabilities(vector[0])
        if not self.native:
            return self.classifier.predict_proba(vector)[0]  # type: ignore[attr-defined]
        with prediction_threads(1):
            return self.classifier.predict_proba(vector)[0]  # type: ignore[attr-defined]


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
