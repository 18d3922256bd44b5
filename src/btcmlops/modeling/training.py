"""Training: features and targets in, a fitted pipeline with its honest scores out.

:func:`train_model` is pure (frames in, :class:`TrainedModel` out); :func:`train_from_store`
reads the stored feature rows and prices that were known at a given instant and calls it.
Neither writes anything: :class:`~btcmlops.modeling.registry.ModelRegistry` does that.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache, partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from btcmlops.clock import HOUR, Clock, ensure_utc, floor_hour
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.errors import InsufficientDataError, InvalidInputError
from btcmlops.features.frames import load_closes, load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION, model_feature_names, validate_feature_set
from btcmlops.features.target import direction_targets
from btcmlops.modeling.baselines import baseline_pipeline
from btcmlops.modeling.evaluation import (
    LAST_HOUR,
    MAJORITY_CLASS,
    PERMUTATION_REPEATS,
    PERMUTATION_SCORING,
    BaselineForecast,
    ClassificationMetrics,
    FeatureImportance,
    evaluate_forecast,
    last_hour_baseline,
    last_hour_directions,
    majority_class_baseline,
    permutation_importances,
)
from btcmlops.modeling.feature_cache import FeatureFrameCache
from btcmlops.modeling.model_types import (
    build_pipeline,
    hyperparameters,
    probability_up,
    training_threads,
    validate_model_type,
)
from btcmlops.modeling.splits import PURGE_GAP, ChronologicalSplit, chronological_split

# Fewest feature rows with a known target that training accepts (BTCMLOPS_TRAIN_MIN_ROWS).
MIN_TRAINING_ROWS = 100
DEFAULT_SEED = 20_240_101
_LIBRARIES = ("btcmlops", "numpy", "pandas", "scipy", "scikit-learn", "skops", "joblib")


@dataclass(frozen=True)
class TrainedModel:
    """A fitted pipeline and everything the registry records about how it was made."""

    feature_set: str
    model_type: str
    feature_version: str
    feature_names: tuple[str, ...]
    pipeline: Pipeline
    split: ChronologicalSplit
    test: ClassificationMetrics
    validation: ClassificationMetrics
    baselines: dict[str, ClassificationMetrics]
    importances: tuple[FeatureImportance, ...]
    hyperparameters: dict[str, Any]
    library_versions: dict[str, str]
    seed: int
    n_jobs: int
    fit_seconds: float
    evaluation_seconds: float

    @property
    def test_accuracy(self) -> float:
        return self.test.accuracy

    def windows(self) -> dict[str, Any]:
        return self.split.as_dict()

    def metrics_document(self) -> dict[str, Any]:
        """The scores as a JSON-safe document (NaN becomes ``None``)."""
        return {
            # The champion's recorded baseline that retraining compares live accuracy with.
            "test_accuracy": self.test.accuracy,
            "validation_accuracy": self.validation.accuracy,
            "test": self.test.as_dict(),
            "validation": self.validation.as_dict(),
            "baselines": {name: metrics.as_dict() for name, metrics in self.baselines.items()},
            "feature_importances": [item.as_dict() for item in self.importances],
            "importance_method": {
                "kind": "permutation",
                "window": "test",
                "scoring": PERMUTATION_SCORING,
                "n_repeats": PERMUTATION_REPEATS,
                "seed": self.seed,
            },
            "samples": {window.name: window.rows for window in self.split.windows()},
            "timings": {
                "fit_seconds": round(self.fit_seconds, 3),
                "evaluation_seconds": round(self.evaluation_seconds, 3),
            },
        }


def train_model(
    features: pd.DataFrame,
    targets: pd.Series,
    *,
    feature_set: str,
    model_type: str,
    last_hour_direction: pd.Series,
    n_jobs: int = 1,
    seed: int = DEFAULT_SEED,
    min_rows: int = MIN_TRAINING_ROWS,
    purge_gap: timedelta = PURGE_GAP,
    feature_version: str = FEATURE_VERSION,
    with_importances: bool = True,
    baseline_rule: str | None = None,
) -> TrainedModel:
    """Fit one model type on a chronological split and score it on the test window.

    Parameters
    ----------
    features:
        One row per UTC hour (a ``DatetimeIndex``), one float column per feature; NaN is
        missing (the pipeline's imputer fills it).
    targets:
        Direction of the next hour (1 up, 0 down, NaN unknown) by the same hours; rows
        whose target is unknown are not used.
    last_hour_direction:
        Direction of bar ``t`` itself (see :func:`last_hour_directions`), for the baseline.
    n_jobs:
        Threads the estimator may use (``Settings.n_jobs``).
    baseline_rule:
        Fit the naive rule of this name (:mod:`btcmlops.modeling.baselines`) in place of
        the model type's estimator: a declared fallback, recorded under the pair's type.

    Raises
    ------
    InsufficientDataError
        Fewer usable rows than ``min_rows``, a part left empty by the purge gaps, or a
        single direction in the training or test part; the message carries the counts.
    """
    feature_set = validate_feature_set(feature_set)
    model_type = validate_model_type(model_type)
    if n_jobs < 1:
        raise InvalidInputError(f"n_jobs must be at least 1, got {n_jobs}")
    features = _checked_features(features)
    labels = _usable_labels(features, targets, min_rows)
    split = chronological_split(features.index[labels.notna().to_numpy()], purge_gap=purge_gap)
    for part_name, part in (("training", split.train_index), ("test", split.test_index)):
        _require_both_directions(part_name, labels.loc[part])

    def part(index: pd.DatetimeIndex) -> tuple[pd.DataFrame, np.ndarray]:
        return features.loc[index], labels.loc[index].to_numpy(dtype=int)

    x_train, y_train = part(split.train_index)
    x_validation, y_validation = part(split.validation_index)
    x_test, y_test = part(split.test_index)

    pipeline = (
        build_pipeline(model_type, seed=seed)
        if baseline_rule is None
        else baseline_pipeline(baseline_rule, list(features.columns))
    )
    started = time.perf_counter()
    with training_threads(n_jobs):
        pipeline.fit(x_train, y_train)
    fitted = time.perf_counter()

    p_test = probability_up(pipeline, x_test)
    p_validation = probability_up(pipeline, x_validation)
    importances = (
        permutation_importances(pipeline, x_test, y_test, seed=seed) if with_importances else []
    )
    baselines = _baseline_forecasts(split, y_train, last_hour_direction.reindex(features.index))
    evaluated = time.perf_counter()

    return TrainedModel(
        feature_set=feature_set,
        model_type=model_type,
        feature_version=feature_version,
        feature_names=tuple(str(name) for name in features.columns),
        pipeline=pipeline,
        split=split,
        test=evaluate_forecast(y_test, p_test),
        validation=evaluate_forecast(y_validation, p_validation),
        baselines={name: forecast.evaluate(y_test) for name, forecast in baselines.items()},
        importances=tuple(importances),
        hyperparameters={
            **hyperparameters(pipeline),
            **({} if baseline_rule is None else {"baseline_rule": baseline_rule}),
            "training": {"seed": seed, "threads": n_jobs, "min_rows": min_rows},
        },
        library_versions=library_versions(),
        seed=seed,
        n_jobs=n_jobs,
        fit_seconds=fitted - started,
        evaluation_seconds=evaluated - fitted,
    )


@dataclass(frozen=True)
class TrainingData:
    """Stored features and their labels as known at one instant (``closed_before``)."""

    features: pd.DataFrame
    targets: pd.Series
    last_hour_direction: pd.Series
    closed_before: datetime

    def rows(self, index: pd.DatetimeIndex) -> tuple[pd.DataFrame, np.ndarray]:
        """Features and integer labels of ``index`` (hours whose target is known)."""
        return self.features.loc[index], self.targets.loc[index].to_numpy(dtype=int)


def load_training_data(
    store: Store,
    feature_set: str,
    *,
    clock: Clock,
    settings: Settings,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] | None = None,
    frames: FeatureFrameCache | None = None,
) -> TrainingData:
    """The stored feature rows (current ``FEATURE_VERSION``) and prices known at ``end``.

    ``end`` defaults to ``clock.now()`` and may not lie after it. Only bars that have closed
    by ``end`` are read (a bar keyed ``t`` closes at ``t + 1h``), so replaying history with
    a store that already holds later rows never leaks them into training. ``columns``
    defaults to the set's model inputs. With ``frames`` (a cache over the same store) the
    feature rows decoded by an earlier call are not decoded again.
    """
    feature_set = validate_feature_set(feature_set)
    now = clock.now()
    as_of = now if end is None else ensure_utc(end)
    if as_of > now:
        raise InvalidInputError(
            f"cannot train as of {as_of.isoformat()}: it is after now ({now.isoformat()})"
        )
    closed_before = floor_hour(as_of)
    read_frame = frames.load if frames is not None else partial(load_feature_frame, store)
    features = read_frame(
        feature_set,
        FEATURE_VERSION,
        list(columns) if columns is not None else model_feature_names(feature_set),
        start=None if start is None else ensure_utc(start),
        end=closed_before,
    )
    if features.empty:
        raise InsufficientDataError(
            f"no stored feature rows for feature set {feature_set!r} (feature version "
            f"{FEATURE_VERSION}) before {closed_before.isoformat()}; build them first with "
            f"`btcmlops features build --feature-set {feature_set}`"
        )
    closes = load_closes(
        store,
        symbol or settings.symbol,
        start=features.index[0].to_pydatetime() - HOUR,
        end=closed_before,
    )
    return TrainingData(
        features=features,
        targets=direction_targets(closes).reindex(features.index),
        last_hour_direction=last_hour_directions(closes),
        closed_before=closed_before,
    )


def train_from_store(
    store: Store,
    feature_set: str,
    model_type: str,
    *,
    clock: Clock,
    settings: Settings,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    seed: int = DEFAULT_SEED,
    with_importances: bool = True,
) -> TrainedModel:
    """Train on the stored feature rows and prices known at ``end`` (see load_training_data)."""
    data = load_training_data(
        store, feature_set, clock=clock, settings=settings, symbol=symbol, start=start, end=end
    )
    return train_on(
        data,
        feature_set=feature_set,
        model_type=model_type,
        settings=settings,
        seed=seed,
        with_importances=with_importances,
    )


def train_on(
    data: TrainingData,
    *,
    feature_set: str,
    model_type: str,
    settings: Settings,
    seed: int = DEFAULT_SEED,
    with_importances: bool = True,
    baseline_rule: str | None = None,
) -> TrainedModel:
    """:func:`train_model` on loaded :class:`TrainingData` with the settings' threads/minimums."""
    return train_model(
        data.features,
        data.targets,
        feature_set=feature_set,
        model_type=model_type,
        last_hour_direction=data.last_hour_direction,
        n_jobs=settings.n_jobs,
        seed=seed,
        min_rows=settings.train_min_rows,
        with_importances=with_importances,
        baseline_rule=baseline_rule,
    )


def with_permutation_importances(trained: TrainedModel, data: TrainingData) -> TrainedModel:
    """``trained`` with its permutation importances computed on its test window.

    Retraining trains challengers without them (they dominate training time) and adds them
    only to the challenger it deploys.
    """
    x_test, y_test = data.rows(trained.split.test_index)
    importances = permutation_importances(trained.pipeline, x_test, y_test, seed=trained.seed)
    return replace(trained, importances=tuple(importances))


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a trained artifact depends on."""
    return dict(_loaded_library_versions())


@cache
def _loaded_library_versions() -> tuple[tuple[str, str], ...]:
    # Looked up once per process: the code a model is trained with is the code imported at
    # start, and each lookup scans the installed distributions (tens of ms per training).
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    return tuple(versions.items())


def _checked_features(features: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(features.index, pd.DatetimeIndex) or features.index.tz is None:
        raise InvalidInputError("features must be indexed by timezone-aware UTC hours")
    if features.index.has_duplicates:
        raise InvalidInputError("features have duplicate hours")
    if features.shape[1] == 0:
        raise InvalidInputError("features have no columns")
    try:
        checked = features.sort_index().astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"features must be numeric: {exc}") from exc
    infinite = checked.columns[np.isinf(checked.to_numpy()).any(axis=0)]
    if len(infinite):
        raise InvalidInputError(
            f"features contain infinite values in {', '.join(map(str, infinite[:5]))}"
            f"{' ...' if len(infinite) > 5 else ''}: missing values must be NaN"
        )
    return checked


def _usable_labels(features: pd.DataFrame, targets: pd.Series, min_rows: int) -> pd.Series:
    """Targets aligned to the feature rows, after checking enough of them are known."""
    labels = targets.reindex(features.index)
    if not labels.dropna().isin([0, 1]).all():
        raise InvalidInputError("targets must be 0 (down), 1 (up) or NaN (unknown)")
    known = int(labels.notna().sum())
    if known < min_rows:
        raise InsufficientDataError(
            f"only {known} of {len(features)} feature rows have a known next-hour target; "
            f"training needs at least {min_rows}"
        )
    return labels


def _baseline_forecasts(
    split: ChronologicalSplit, y_train: np.ndarray, last_hour: pd.Series
) -> dict[str, BaselineForecast]:
    """Both baselines for the test hours, estimated on the training hours."""
    return {
        MAJORITY_CLASS: majority_class_baseline(y_train, len(split.test_index)),
        LAST_HOUR: last_hour_baseline(
            y_train,
            last_hour.loc[split.train_index].to_numpy(dtype=float),
            last_hour.loc[split.test_index].to_numpy(dtype=float),
        ),
    }


def _require_both_directions(part_name: str, labels: pd.Series) -> None:
    ups = int((labels == 1).sum())
    downs = int((labels == 0).sum())
    if ups == 0 or downs == 0:
        raise InsufficientDataError(
            f"the {part_name} part ({len(labels)} rows, {labels.index[0].isoformat()} to "
            f"{labels.index[-1].isoformat()}) has {ups} up and {downs} down hours; "
            "both directions are needed to train and evaluate a classifier"
        )
