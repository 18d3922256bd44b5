"""The naive forecasts as estimators, so a declared fallback is served like any model.

When the champion is significantly worse than a naive rule on live hours, the pair falls
back to that rule, registered as a model version of its own (``hyperparameters`` name the
rule). :class:`BaselineRule` is that rule with scikit-learn's classifier surface; it sits at
the end of an imputer → identity scaler → rule pipeline, so the artifact, the loader and the
predictor treat it like the learned models. Its probabilities are the training window's
frequencies with Laplace's rule of succession, as in :mod:`btcmlops.modeling.evaluation`.

>>> import pandas as pd
>>> x = pd.DataFrame({"ret_1h": [0.01, -0.02, 0.03, 0.01, -0.01, 0.02]})
>>> y = [1, 0, 1, 1, 0, 0]
>>> rule = baseline_pipeline("last_hour", list(x.columns)).fit(x, y)
>>> rule.predict(pd.DataFrame({"ret_1h": [0.5, -0.5]})).tolist()
[1, 0]
>>> baseline_pipeline("majority", ["ret_1h"]).fit(x, y).predict(x).tolist()
[0, 0, 0, 0, 0, 0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from btcmlops.errors import InvalidInputError

MAJORITY = "majority"
LAST_HOUR = "last_hour"
BASELINE_RULES = (MAJORITY, LAST_HOUR)
LAST_HOUR_FEATURE = "ret_1h"  # close(t) / close(t - 1h) - 1: its sign is the last hour's move
RULE_WORDS = {
    MAJORITY: "the majority class of its training window",
    LAST_HOUR: "the same direction as the last hour",
}


class BaselineRule(ClassifierMixin, BaseEstimator):
    """``majority``: always the training window's more frequent direction (a tie is down);
    ``last_hour``: up when column ``feature_index`` (the last hour's return) is positive."""

    def __init__(self, rule: str = LAST_HOUR, feature_index: int = 0) -> None:
        self.rule = rule
        self.feature_index = feature_index

    def fit(self, x: np.ndarray, y: Sequence[int] | np.ndarray) -> BaselineRule:
        if self.rule not in BASELINE_RULES:
            raise InvalidInputError(
                f"unknown baseline rule {self.rule!r}: expected one of {', '.join(BASELINE_RULES)}"
            )
        matrix = np.asarray(x, dtype=float)
        labels = np.asarray(y, dtype=int)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = matrix.shape[1]
        self.p_up_ = _succession(labels)
        went_up = matrix[:, self.feature_index] > 0
        self.p_up_after_up_ = _succession(labels[went_up])
        self.p_up_after_down_ = _succession(labels[~went_up])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        matrix = np.asarray(x, dtype=float)
        if self.rule == MAJORITY:
            p_up = np.full(matrix.shape[0], self.p_up_)
        else:
            went_up = matrix[:, self.feature_index] > 0
            p_up = np.where(
                went_up, max(self.p_up_after_up_, 0.5 + 1e-9), min(self.p_up_after_down_, 0.5)
            )
        return np.column_stack([1.0 - p_up, p_up])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] > 0.5).astype(int)


def baseline_pipeline(rule: str, feature_names: Sequence[str]) -> Pipeline:
    """An unfitted imputer → identity scaler → :class:`BaselineRule` over ``feature_names``."""
    if rule not in BASELINE_RULES:
        raise InvalidInputError(
            f"unknown baseline rule {rule!r}: expected one of {', '.join(BASELINE_RULES)}"
        )
    names = list(feature_names)
    if rule == LAST_HOUR and LAST_HOUR_FEATURE not in names:
        raise InvalidInputError(f"the last-hour rule needs the feature {LAST_HOUR_FEATURE}")
    index = names.index(LAST_HOUR_FEATURE) if LAST_HOUR_FEATURE in names else 0
    return Pipeline(
        [
            ("imputer", SimpleImputer(strategy="median", keep_empty_features=True)),
            # identity: the rule reads the raw return's sign
            ("scaler", StandardScaler(with_mean=False, with_std=False)),
            ("classifier", BaselineRule(rule=rule, feature_index=index)),
        ]
    )


def _succession(labels: np.ndarray) -> float:
    return (int(labels.sum()) + 1) / (labels.size + 2)
