"""How good a direction forecast is: metrics with intervals, calibration, baselines, importances.

Every forecast, model or baseline, is scored the same way from two things: its hard
prediction (up = 1, down = 0) and its probability of "up". Accuracy and balanced accuracy
read the prediction; ROC AUC, log loss, Brier score and expected calibration error read the
probability.

The two baselines are a hard rule plus the rule's own frequency on the training window as
its probability, so a baseline is neither punished with an infinite log loss for being a
rule (0/1 probabilities) nor flattered or hobbled by a constant 0.5:

* **majority class** predicts the training window's more frequent direction for every hour;
  its probability of "up" is the training window's up-rate.
* **last hour** predicts that hour ``t`` moves the way the bar ``t`` itself moved
  (``close(t)`` vs ``close(t - 1h)``); its probability of "up" is the training window's
  up-rate after an up hour or after a down hour. Where the last hour is unknown (a gap in
  the prices), it falls back to the majority-class forecast.

Rates are smoothed with Laplace's rule of succession, ``(k + 1) / (n + 2)``, so a condition
seen rarely in training never yields a probability of exactly 0 or 1.

>>> [round(bound, 4) for bound in wilson_interval(60, 100)]
[0.502, 0.6906]
>>> round(expected_calibration_error([0, 1, 1, 1], [0.2, 0.2, 0.8, 0.8]), 6)
0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from btcmlops.features.target import direction_targets
from btcmlops.jsonable import finite_or_none

CALIBRATION_BINS = 10
PERMUTATION_REPEATS = 3  # shuffles per feature: ~100 features x 3 take a few seconds
PERMUTATION_SCORING = "roc_auc"  # rank-based: sensitive where accuracy barely moves

MAJORITY_CLASS = "majority_class"
LAST_HOUR = "last_hour"
BASELINES = (MAJORITY_CLASS, LAST_HOUR)


# ------------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    JASA 22(158):209-212, 1927. With ``p = k/n`` and ``z`` the normal quantile::

        (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)

    Unlike the normal (Wald) interval it stays inside [0, 1] and keeps its coverage near
    p = 0.5 and for small n. Computed by :func:`scipy.stats.binomtest`.
    """
    if trials <= 0:
        raise ValueError("a confidence interval needs at least one trial")
    interval = binomtest(successes, trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def expected_calibration_error(
    y_true: Sequence[int] | np.ndarray,
    p_up: Sequence[float] | np.ndarray,
    bins: int = CALIBRATION_BINS,
) -> float:
    """Expected calibration error of P(up) over ``bins`` equal-width bins on [0, 1].

    ``ECE = Σ_b (n_b / n) · |mean(y in b) - mean(p in b)|`` (Naeini, Cooper & Hauskrecht,
    "Obtaining well calibrated probabilities using Bayesian binning", AAAI 2015; Guo et al.,
    "On calibration of modern neural networks", ICML 2017). Here the binned quantity is the
    probability of the "up" class, not the top-label confidence, so it measures whether "60 %
    up" comes true 60 % of the time. Bins are ``[0, 0.1), ..., [0.9, 1.0]`` (1.0 falls in the
    last bin); empty bins contribute nothing.

    Written with numpy rather than :func:`sklearn.calibration.calibration_curve`, which drops
    empty bins and does not return the bin counts the weighting needs.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(p_up, dtype=float)
    if y.shape != p.shape or y.size == 0:
        raise ValueError("y_true and p_up must be non-empty and the same length")
    which = np.minimum((p * bins).astype(int), bins - 1)
    # (n_b / n) * |mean(y_b) - mean(p_b)| = |sum(y_b) - sum(p_b)| / n: no division by n_b.
    outcome_sums = np.bincount(which, weights=y, minlength=bins)
    probability_sums = np.bincount(which, weights=p, minlength=bins)
    return float(np.abs(outcome_sums - probability_sums).sum() / y.size)


def rule_of_succession(successes: int, trials: int) -> float:
    """Laplace's smoothed rate ``(k + 1) / (n + 2)``: 0.5 with no data, never exactly 0 or 1."""
    return (successes + 1) / (trials + 2)


# --------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class ClassificationMetrics:
    """How one forecast did on one window. ``None`` where a metric is undefined there
    (ROC AUC when the window holds a single direction)."""

    rows: int
    correct: int
    accuracy: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    balanced_accuracy: float
    roc_auc: float | None
    log_loss: float
    brier_score: float
    expected_calibration_error: float
    actual_up_rate: float
    predicted_up_rate: float

    def as_dict(self) -> dict[str, Any]:
        return {key: finite_or_none(value) for key, value in asdict(self).items()}


def evaluate_forecast(
    y_true: Sequence[int] | np.ndarray,
    p_up: Sequence[float] | np.ndarray,
    predictions: Sequence[int] | np.ndarray | None = None,
) -> ClassificationMetrics:
    """Score a forecast: hard ``predictions`` (default: up where ``p_up > 0.5``) and ``p_up``.

    ``p_up > 0.5`` is also what a fitted classifier's ``predict`` answers (a tie goes to
    "down", as a tie in price does in the target).
    """
    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(p_up, dtype=float), 0.0, 1.0)
    predicted = (p > 0.5).astype(int) if predictions is None else np.asarray(predictions, int)
    if not (y.size == p.size == predicted.size) or y.size == 0:
        raise ValueError("y_true, p_up and predictions must be non-empty and the same length")
    correct = int((predicted == y).sum())
    low, high = wilson_interval(correct, y.size)
    both_directions = len(np.unique(y)) == 2
    return ClassificationMetrics(
        rows=int(y.size),
        correct=correct,
        accuracy=correct / y.size,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        # With one direction present, balanced accuracy is that direction's recall = accuracy.
        balanced_accuracy=(
            float(balanced_accuracy_score(y, predicted)) if both_directions else correct / y.size
        ),
        roc_auc=float(roc_auc_score(y, p)) if both_directions else None,
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier_score=float(brier_score_loss(y, p, pos_label=1)),
        expected_calibration_error=expected_calibration_error(y, p),
        actual_up_rate=float(y.mean()),
        predicted_up_rate=float(predicted.mean()),
    )


# ------------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class BaselineForecast:
    """A baseline's hard predictions and probabilities of "up" for each evaluated hour."""

    name: str
    predictions: np.ndarray
    p_up: np.ndarray

    def evaluate(self, y_true: Sequence[int] | np.ndarray) -> ClassificationMetrics:
        return evaluate_forecast(y_true, self.p_up, self.predictions)


def majority_class_baseline(
    train_targets: Sequence[int] | np.ndarray, rows: int
) -> BaselineForecast:
    """Always the training window's more frequent direction (a tie in counts is "down")."""
    y = np.asarray(train_targets, dtype=int)
    p_up = rule_of_succession(int(y.sum()), y.size)
    predicted = int(p_up > 0.5)
    return BaselineForecast(
        MAJORITY_CLASS, np.full(rows, predicted, dtype=int), np.full(rows, p_up, dtype=float)
    )


def last_hour_baseline(
    train_targets: Sequence[int] | np.ndarray,
    train_last_hour: Sequence[float] | np.ndarray,
    evaluated_last_hour: Sequence[float] | np.ndarray,
) -> BaselineForecast:
    """ "The next hour moves the way the last hour did."

    Parameters
    ----------
    train_targets:
        Directions (0/1) of the training hours, to estimate the rule's probabilities.
    train_last_hour, evaluated_last_hour:
        Direction of bar ``t`` itself (1 up, 0 down, NaN unknown) for the training hours
        and for the hours being forecast.
    """
    y = np.asarray(train_targets, dtype=int)
    last_train = np.asarray(train_last_hour, dtype=float)
    last = np.asarray(evaluated_last_hour, dtype=float)
    fallback = majority_class_baseline(y, last.size)

    after_up = y[last_train == 1]
    after_down = y[last_train == 0]
    p_after_up = rule_of_succession(int(after_up.sum()), after_up.size)
    p_after_down = rule_of_succession(int(after_down.sum()), after_down.size)

    known = ~np.isnan(last)
    predictions = np.where(known, np.nan_to_num(last), fallback.predictions).astype(int)
    p_up = np.where(last == 1, p_after_up, np.where(last == 0, p_after_down, fallback.p_up))
    return BaselineForecast(LAST_HOUR, predictions, p_up.astype(float))


def last_hour_directions(closes: pd.Series) -> pd.Series:
    """Direction of each bar's own move, ``close(t) > close(t - 1h)``, by UTC hour.

    The same label definition as the target (:func:`direction_targets`), shifted one hour:
    ties are "down" and a missing previous bar gives NaN.

    >>> hours = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    >>> last_hour_directions(pd.Series([100.0, 101.0, 101.0, 99.0], index=hours)).tolist()
    [nan, 1.0, 0.0, 0.0]
    """
    closes = closes.sort_index()
    moves = direction_targets(closes)
    moves.index = moves.index + pd.Timedelta(hours=1)
    return moves.reindex(closes.index)


# ----------------------------------------------------------------------------- importances


@dataclass(frozen=True)
class FeatureImportance:
    """Mean and standard deviation of the drop in test ROC AUC when one feature is shuffled."""

    feature: str
    importance_mean: float
    importance_std: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "importance_mean": finite_or_none(self.importance_mean),
            "importance_std": finite_or_none(self.importance_std),
        }


def permutation_importances(
    model: Any,
    features: pd.DataFrame,
    targets: Sequence[int] | np.ndarray,
    *,
    seed: int,
    n_repeats: int = PERMUTATION_REPEATS,
) -> list[FeatureImportance]:
    """Permutation importance of every column on a held-out window, most important first.

    The drop in ROC AUC when one column's values are shuffled across the rows, averaged over
    ``n_repeats`` shuffles (Breiman 2001 for forests; Fisher, Rudin & Dominici 2019 for the
    model-agnostic form sklearn's ``permutation_importance`` also implements). Written here
    rather than calling sklearn's because the imputer and scaler act column by column: the
    matrix is transformed once and the shuffles are applied to the transformed column, which
    is the same as transforming shuffled raw values, and only the classifier runs per
    shuffle, through the fast forest path of ``model_types.probability_up``.
    """
    from btcmlops.modeling.model_types import classifier_probability_up, feature_order, transform

    y = np.asarray(targets, dtype=int)
    matrix = transform(model, features)
    baseline = roc_auc_score(y, classifier_probability_up(model, matrix))
    rng = np.random.RandomState(seed)
    drops = np.empty((matrix.shape[1], n_repeats))
    shuffled = matrix.copy()
    for column in range(matrix.shape[1]):
        for repeat in range(n_repeats):
            shuffled[:, column] = matrix[rng.permutation(len(y)), column]
            drops[column, repeat] = baseline - roc_auc_score(
                y, classifier_probability_up(model, shuffled)
            )
        shuffled[:, column] = matrix[:, column]
    ranked = [
        FeatureImportance(str(name), float(mean), float(std))
        for name, mean, std in zip(
            feature_order(model), drops.mean(axis=1), drops.std(axis=1), strict=True
        )
    ]
    return sorted(ranked, key=lambda item: (-np.nan_to_num(item.importance_mean), item.feature))
