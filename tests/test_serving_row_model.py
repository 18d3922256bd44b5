"""The predictor's one-row fast path answers bit for bit what the pipeline answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from btcmlops.modeling.baselines import BASELINE_RULES, LAST_HOUR_FEATURE, baseline_pipeline
from btcmlops.modeling.model_types import MODEL_TYPES, build_pipeline
from btcmlops.serving.row_model import RowModel, compute_answer

COLUMNS = [LAST_HOUR_FEATURE, "b", "c", "d", "e", "empty"]


def training_frame(rows: int = 600, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with gaps (and a column that is never observed) and a learnable label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)
    labels = (frame[LAST_HOUR_FEATURE] + 0.5 * frame["b"] + rng.normal(size=rows) > 0).astype(int)
    frame = frame.mask(rng.random(frame.shape) < 0.1)
    frame["empty"] = np.nan
    return frame, labels.to_numpy()


def serving_rows(seed: int = 11) -> list[dict[str, float | None]]:
    """Rows as the feature store gives them: some missing, some infinite, some complete."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(40):
        row: dict[str, float | None] = {name: float(rng.normal() * 3) for name in COLUMNS}
        for name in COLUMNS:
            draw = rng.random()
            if draw < 0.15:
                row[name] = None
            elif draw < 0.2:
                row[name] = math.inf if rng.random() < 0.5 else -math.inf
        rows.append(row)
    rows.append(dict.fromkeys(COLUMNS))  # nothing known
    return rows


def fitted_pipelines() -> dict[str, Pipeline]:
    frame, labels = training_frame()
    pipelines = {}
    for model_type in MODEL_TYPES:
        pipelines[model_type] = build_pipeline(model_type, seed=3).fit(frame, labels)
    for rule in BASELINE_RULES:
        pipelines[f"baseline {rule}"] = baseline_pipeline(rule, COLUMNS).fit(frame, labels)
    return pipelines


@pytest.mark.parametrize("name", list(fitted_pipelines()))
def test_row_model_answers_exactly_as_the_pipeline(name):
    pipeline = fitted_pipelines()[name]
    row_model = RowModel.of(pipeline, COLUMNS)
    assert row_model is not None
    for values in serving_rows():
        assert row_model.answer(values) == compute_answer(pipeline, COLUMNS, values)


def test_a_pipeline_of_another_shape_has_no_row_model():
    frame, labels = training_frame()
    other = Pipeline(
        [
            ("imputer", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scaler", MinMaxScaler()),
            ("classifier", build_pipeline("logistic_regression", seed=1)[-1]),
        ]
    ).fit(frame, labels)
    assert RowModel.of(other, COLUMNS) is None


def test_a_pipeline_whose_columns_differ_from_the_model_record_has_no_row_model():
    frame, labels = training_frame()
    pipeline = build_pipeline("logistic_regression", seed=1).fit(frame, labels)
    assert RowModel.of(pipeline, [*COLUMNS[:-1], "other"]) is None
    assert RowModel.of(pipeline, list(reversed(COLUMNS))) is None


def test_the_flat_forest_sends_every_row_to_each_trees_own_leaf_even_on_a_threshold():
    """All trees walked at once reach the leaves ``tree_.apply`` reaches, ties included."""
    from sklearn.ensemble import RandomForestClassifier

    from btcmlops.serving.row_model import FlatForest

    rng = np.random.default_rng(7)
    features = rng.normal(size=(600, 5))
    labels = (features[:, 0] + rng.normal(size=600) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=25, min_samples_leaf=5, random_state=3)
    forest.fit(features, labels)
    flat = FlatForest(forest)
    rows = rng.normal(size=(40, 5))
    # Rows that sit exactly on a split point go left, as in scikit-learn.
    first = forest.estimators_[0].tree_
    rows[0, first.feature[0]] = np.float32(first.threshold[0])
    for row in rows:
        expected = [
            estimator.tree_.apply(row.astype(np.float32).reshape(1, -1))[0]
            for estimator in forest.estimators_
        ]
        reached = flat.leaves(row) - flat.roots
        assert reached.tolist() == expected
        # scikit-learn's own sum runs in another order: equal to the last few bits (the
        # bit-for-bit comparison is with compute_answer, above).
        np.testing.assert_allclose(
            flat.probabilities(row), forest.predict_proba(row.reshape(1, -1))[0], rtol=0, atol=1e-15
        )
