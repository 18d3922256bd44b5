"""The three model types: one sklearn ``Pipeline`` each (imputer → scaler → classifier).

Preprocessing is part of the model (DESIGN decision 3): the median imputer and the scaler
are fitted with the classifier on the training window only and saved with it, so serving
never fits anything. The pipeline is fitted on a DataFrame, so it remembers the feature
order (:func:`feature_order`) and refuses a frame whose columns differ.

Hyperparameters are fixed and deliberately conservative: hourly direction is close to a coin
flip, and a flexible model mostly learns noise. Every source of randomness takes the seed.

Threads (2 shared cores): the one level of parallelism is inside the estimator. Training
runs under :func:`training_threads` (joblib threads for the forest's trees, OpenMP threads
for histogram gradient boosting, BLAS pinned to one thread because the matrices are small
and its threads would compete with the estimator's); nothing around the estimator (feature
loops, permutation repeats) runs in parallel, so at most ``n_jobs`` busy threads exist.
Prediction runs under :func:`prediction_threads`, where the forest sums its trees in one
thread: with several threads the order of the floating-point sum follows thread timing and
the probabilities could differ in the last bit from run to run.

>>> build_pipeline("logistic_regression", seed=7).named_steps["classifier"].C
0.1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

from btcmlops.errors import InvalidInputError
from btcmlops.modeling.names import (  # noqa: F401 - re-exported for callers
    DEFAULT_MODEL_TYPE,
    GRADIENT_BOOSTING,
    LOGISTIC_REGRESSION,
    MODEL_TYPES,
    RANDOM_FOREST,
    validate_model_type,
)

IMPUTER_STEP = "imputer"
SCALER_STEP = "scaler"
CLASSIFIER_STEP = "classifier"

# The classifier class behind each model type (the artifact loader checks it too).
CLASSIFIER_CLASSES: dict[str, type[ClassifierMixin]] = {
    RANDOM_FOREST: RandomForestClassifier,
    GRADIENT_BOOSTING: HistGradientBoostingClassifier,
    LOGISTIC_REGRESSION: LogisticRegression,
}


def _classifier(model_type: str, seed: int) -> ClassifierMixin:
    if model_type == RANDOM_FOREST:
        return RandomForestClassifier(
            n_estimators=200,
            # Leaves of >= 50 hours: a leaf's vote is an average, not one noisy hour.
            min_samples_leaf=50,
            max_features="sqrt",
            # Each tree sees half the hours: less correlated trees, half the fitting time.
            max_samples=0.5,
            # None: threads come from the caller's joblib configuration (training_threads),
            # and a loaded model predicts in one thread unless its caller says otherwise.
            n_jobs=None,
            random_state=seed,
        )
    if model_type == GRADIENT_BOOSTING:
        return HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=100,
            l2_regularization=1.0,
            max_features=0.5,
            # Off: sklearn's early stopping holds out a random, shuffled slice of the training
            # rows, i.e. hours interleaved with the ones it learns from. A fixed, small
            # budget also makes training time predictable for scheduled retraining.
            early_stopping=False,
            random_state=seed,
        )
    if model_type == LOGISTIC_REGRESSION:
        # L2 penalty (the default), strong: C = 0.1 on standardised features.
        return LogisticRegression(C=0.1, max_iter=1_000, random_state=seed)
    raise InvalidInputError(
        f"unknown model type {model_type!r}: expected one of {', '.join(MODEL_TYPES)}"
    )


def build_pipeline(model_type: str, *, seed: int) -> Pipeline:
    """An unfitted ``imputer → scaler → classifier`` pipeline for ``model_type``."""
    model_type = validate_model_type(model_type)
    return Pipeline(
        [
            # keep_empty_features: a feature with no value in the whole training window
            # (e.g. a sentiment column before any news) is imputed with 0 instead of being
            # dropped, so every step sees the same columns as the feature list.
            (IMPUTER_STEP, SimpleImputer(strategy="median", keep_empty_features=True)),
            (SCALER_STEP, StandardScaler()),
            (CLASSIFIER_STEP, _classifier(model_type, seed)),
        ]
    )


def hyperparameters(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's settings as JSON-safe values (what the registry records)."""
    classifier = pipeline.named_steps[CLASSIFIER_STEP]
    imputer = pipeline.named_steps[IMPUTER_STEP]
    return {
        "imputer": {"strategy": imputer.strategy},
        "scaler": type(pipeline.named_steps[SCALER_STEP]).__name__,
        "classifier": type(classifier).__name__,
        "classifier_params": {
            name: value
            for name, value in sorted(classifier.get_params().items())
            if value is None or isinstance(value, bool | int | float | str)
        },
    }


# ----------------------------------------------------------------------------- serving aids


def feature_order(pipeline: Pipeline) -> list[str]:
    """The columns, in order, that a fitted pipeline expects."""
    return [str(name) for name in pipeline.feature_names_in_]


def imputer_of(pipeline: Pipeline) -> SimpleImputer:
    """The fitted imputer, e.g. to read the medians it fills in (``statistics_``)."""
    return pipeline.named_steps[IMPUTER_STEP]


def probability_up(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """P(up) of every row: exactly ``pipeline.predict_proba(features)[:, up]``, faster."""
    return class_probabilities(pipeline, features)[:, list(pipeline.classes_).index(1)]


def class_probabilities(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Exactly ``pipeline.predict_proba(features)`` (columns in ``classes_`` order), faster.

    For a random forest, sklearn's ``predict_proba`` dispatches every tree through joblib
    with a per-tree warnings and configuration context; on the small batches we predict
    (one row when serving, a few hundred when scoring) that overhead is 80-90 % of the time.
    Here the same trees are summed in the same order, in float64 from zero, and divided by
    their number, as sklearn's single-threaded path does, so the result is bitwise the same
    (tests compare them). Other model types go through ``predict_proba`` unchanged.
    """
    classifier = pipeline.named_steps[CLASSIFIER_STEP]
    if not isinstance(classifier, RandomForestClassifier):
        with prediction_threads(1):
            return pipeline.predict_proba(features)
    return forest_probabilities(classifier, transform(pipeline, features))


def classifier_probability_up(pipeline: Pipeline, matrix: np.ndarray) -> np.ndarray:
    """P(up) from the pipeline's classifier alone, on an already transformed matrix."""
    classifier = pipeline.named_steps[CLASSIFIER_STEP]
    up = list(classifier.classes_).index(1)
    if isinstance(classifier, RandomForestClassifier):
        return forest_probabilities(classifier, matrix)[:, up]
    with prediction_threads(1):
        return classifier.predict_proba(matrix)[:, up]


def transform(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """The imputed and scaled matrix the classifier of ``pipeline`` sees."""
    return pipeline[:-1].transform(features[feature_order(pipeline)])


def forest_probabilities(forest: RandomForestClassifier, matrix: np.ndarray) -> np.ndarray:
    """Class probabilities of a fitted forest on an already transformed matrix (see above)."""
    rows = np.ascontiguousarray(matrix, dtype=np.float32)  # the forest's own input dtype
    total = np.zeros((rows.shape[0], forest.n_classes_), dtype=np.float64)
    for tree in forest.estimators_:
        total += tree.predict_proba(rows, check_input=False)
    total /= len(forest.estimators_)
    return total


def count_imputed(pipeline: Pipeline, features: pd.DataFrame) -> int:
    """How many values of ``features`` the pipeline's imputer will fill in."""
    return int(np.isnan(features[feature_order(pipeline)].to_numpy(dtype=float)).sum())


# -------------------------------------------------------------------------------- threads


@cache
def _native_threadpools() -> ThreadpoolController:
    # threadpoolctl inspects every loaded native library when a controller is made (about
    # 15 ms here); one controller, made after scikit-learn has loaded them, is reused.
    return ThreadpoolController()


@contextmanager
def training_threads(n_jobs: int) -> Iterator[None]:
    """Run estimator fitting on ``n_jobs`` threads and no more (see the module docstring)."""
    pools = _native_threadpools()
    with (
        parallel_config(backend="threading", n_jobs=n_jobs),
        pools.limit(limits=n_jobs, user_api="openmp"),
        pools.limit(limits=1, user_api="blas"),
    ):
        yield


@contextmanager
def prediction_threads(n_jobs: int) -> Iterator[None]:
    """Predict reproducibly: forests in one thread, OpenMP (row-parallel, exact) on ``n_jobs``."""
    pools = _native_threadpools()
    with (
        parallel_config(backend="threading", n_jobs=1),
        pools.limit(limits=n_jobs, user_api="openmp"),
        pools.limit(limits=1, user_api="blas"),
    ):
        yield
