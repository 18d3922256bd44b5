"""The three model types: their names, and one sklearn ``Pipeline`` each (imputer → scaler →
classifier).

Preprocessing is part of the model (DESIGN decision 3): the median imputer and the scaler
are fitted with the classifier on the training window only and saved with it, so serving
never fits anything. The pipeline is fitted on a DataFrame, so it remembers the feature
order (:func:`feature_order`) and refuses a frame whose columns differ.

Hyperparameters are fixed and deliberately conservative: hourly direction is close to a coin
flip, and a flexible model mostly learns noise. Every source of randomness takes the seed.

Importing this module is cheap: scikit-learn, pandas, numpy, joblib and threadpoolctl (about
a second together) are imported inside the functions that use them, never at the top. The
command line reads the names (:data:`MODEL_TYPES`, :data:`DEFAULT_MODEL_TYPE`,
:func:`validate_model_type`) for its options and help, and ``btcmlops --help`` must not wait
for scikit-learn; keeping the names here rather than in a second module means one place holds
everything about a model type. For the same reason the classifier class of a type is asked
for with :func:`classifier_class`, not kept in a module-level table.

Threads (2 shared cores): the one level of parallelism is inside the estimator. Training
runs under :func:`training_threads` (joblib threads for the forest's trees, OpenMP threads
for histogram gradient boosting, BLAS pinned to one thread because the matrices are small
and its threads would compete with the estimator's); nothing around the estimator (feature
loops, permutation repeats) runs in parallel, so at most ``n_jobs`` busy threads exist.
Prediction runs under :func:`prediction_threads`, where the forest sums its trees in one
thread: with several threads the order of the floating-point sum follows thread timing and
the probabilities could differ in the last bit from run to run.

>>> validate_model_type(" Random_Forest ")
'random_forest'
>>> build_pipeline("logistic_regression", seed=7).named_steps["classifier"].C
0.1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from btcmlops.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.base import ClassifierMixin
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from threadpoolctl import ThreadpoolController

RANDOM_FOREST = "random_forest"
GRADIENT_BOOSTING = "gradient_boosting"
LOGISTIC_REGRESSION = "logistic_regression"
MODEL_TYPES: tuple[str, ...] = (RANDOM_FOREST, GRADIENT_BOOSTING, LOGISTIC_REGRESSION)
DEFAULT_MODEL_TYPE = RANDOM_FOREST

IMPUTER_STEP = "imputer"
SCALER_STEP = "scaler"
CLASSIFIER_STEP = "classifier"


def validate_model_type(name: str) -> str:
    """The canonical model type, or :class:`InvalidInputError` naming the choices."""
    cleaned = name.strip().lower() if isinstance(name, str) else name
    if cleaned not in MODEL_TYPES:
        raise InvalidInputError(
            f"unknown model type {name!r}: expected one of {', '.join(MODEL_TYPES)}"
        )
    return cleaned


def classifier_class(model_type: str) -> type[ClassifierMixin]:
    """The classifier class behind ``model_type`` (the artifact loader checks it too)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    classes: dict[str, type[ClassifierMixin]] = {
        RANDOM_FOREST: RandomForestClassifier,
        GRADIENT_BOOSTING: HistGradientBoostingClassifier,
        LOGISTIC_REGRESSION: LogisticRegression,
    }
    return classes[validate_model_type(model_type)]


def _classifier(model_type: str, seed: int) -> ClassifierMixin:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

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
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

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
    from sklearn.ensemble import RandomForestClassifier

    classifier = pipeline.named_steps[CLASSIFIER_STEP]
    if not isinstance(classifier, RandomForestClassifier):
        with prediction_threads(1):
            return pipeline.predict_proba(features)
    return forest_probabilities(classifier, transform(pipeline, features))


def classifier_probability_up(pipeline: Pipeline, matrix: np.ndarray) -> np.ndarray:
    """P(up) from the pipeline's classifier alone, on an already transformed matrix."""
    from sklearn.ensemble import RandomForestClassifier

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
    import numpy as np

    rows = np.ascontiguousarray(matrix, dtype=np.float32)  # the forest's own input dtype
    total = np.zeros((rows.shape[0], forest.n_classes_), dtype=np.float64)
    for tree in forest.estimators_:
        total += tree.predict_proba(rows, check_input=False)
    total /= len(forest.estimators_)
    return total


def count_imputed(pipeline: Pipeline, features: pd.DataFrame) -> int:
    """How many values of ``features`` the pipeline's imputer will fill in."""
    import numpy as np

    return int(np.isnan(features[feature_order(pipeline)].to_numpy(dtype=float)).sum())


# -------------------------------------------------------------------------------- threads


@cache
def _native_threadpools() -> ThreadpoolController:
    # threadpoolctl inspects every loaded native library when a controller is made (about
    # 15 ms here); one controller, made after scikit-learn has loaded them, is reused. A
    # controller never sees a library loaded after it, so the estimators (OpenMP, BLAS)
    # are imported first even when nothing has been fitted or loaded yet.
    from sklearn import ensemble, linear_model  # noqa: F401 - see the comment above
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def training_threads(n_jobs: int) -> Iterator[None]:
    """Run estimator fitting on ``n_jobs`` threads and no more (see the module docstring)."""
    from joblib import parallel_config

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
    from joblib import parallel_config

    pools = _native_threadpools()
    with (
        parallel_config(backend="threading", n_jobs=1),
        pools.limit(limits=n_jobs, user_api="openmp"),
        pools.limit(limits=1, user_api="blas"),
    ):
        yield
