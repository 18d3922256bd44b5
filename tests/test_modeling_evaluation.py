"""Evaluation statistics checked against values computed by hand from their formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from btcmlops.modeling.evaluation import (
    LAST_HOUR,
    MAJORITY_CLASS,
    evaluate_forecast,
    expected_calibration_error,
    last_hour_baseline,
    last_hour_directions,
    majority_class_baseline,
    wilson_interval,
)

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


def wilson_by_hand(successes: int, trials: int) -> tuple[float, float]:
    """Wilson (1927), written out: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = successes / trials
    z2 = Z95 * Z95
    centre = p + z2 / (2 * trials)
    half_width = Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return (centre - half_width) / (1 + z2 / trials), (centre + half_width) / (1 + z2 / trials)


@pytest.mark.parametrize(("successes", "trials"), [(60, 100), (1, 7), (512, 1000), (0, 10)])
def test_wilson_interval_matches_the_formula(successes, trials):
    low, high = wilson_interval(successes, trials)
    expected_low, expected_high = wilson_by_hand(successes, trials)
    assert low == pytest.approx(expected_low, abs=1e-9)
    assert high == pytest.approx(expected_high, abs=1e-9)


def test_wilson_interval_stays_inside_zero_and_one_at_the_extremes():
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    # With no successes the upper bound is z² / (n + z²).
    assert wilson_interval(0, 10)[1] == pytest.approx(Z95**2 / (10 + Z95**2))
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)


def test_expected_calibration_error_weights_each_bin_by_its_share_of_rows():
    # bin [0.2, 0.3): p = 0.2, 0.25, outcomes 0, 1 -> |0.5 - 0.225| = 0.275, weight 2/5
    # bin [0.9, 1.0]: p = 0.9, 1.0, 1.0, outcomes 1, 1, 0 -> |2/3 - 0.9667| = 0.3, weight 3/5
    y = [0, 1, 1, 1, 0]
    p = [0.2, 0.25, 0.9, 1.0, 1.0]
    expected = 2 / 5 * abs(1 / 2 - 0.225) + 3 / 5 * abs(2 / 3 - 2.9 / 3)
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_expected_calibration_error_is_zero_for_a_calibrated_forecast():
    y = [1, 0, 0, 0, 1, 1, 1, 0]  # 1/4 up where p = 0.25, 3/4 up where p = 0.75
    p = [0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75]
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


def test_brier_score_and_log_loss_match_their_definitions():
    y = [1, 0, 1]
    p = [0.8, 0.3, 0.5]
    metrics = evaluate_forecast(y, p)
    assert metrics.brier_score == pytest.approx((0.2**2 + 0.3**2 + 0.5**2) / 3)
    assert metrics.log_loss == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.5)) / 3)


def test_forecast_accuracy_reads_up_only_above_one_half_and_carries_its_interval():
    y = [1, 0, 0, 1, 1, 0]
    p = [0.9, 0.5, 0.2, 0.51, 0.4, 0.6]  # predictions 1, 0, 0, 1, 0, 1 -> 4 of 6 right
    metrics = evaluate_forecast(y, p)
    assert (metrics.rows, metrics.correct) == (6, 4)
    assert metrics.accuracy == pytest.approx(4 / 6)
    assert (metrics.accuracy_ci_low, metrics.accuracy_ci_high) == pytest.approx(
        wilson_by_hand(4, 6)
    )
    # Recall of up 2/3, of down 2/3.
    assert metrics.balanced_accuracy == pytest.approx(2 / 3)
    assert metrics.predicted_up_rate == pytest.approx(3 / 6)
    assert metrics.actual_up_rate == pytest.approx(3 / 6)


def test_roc_auc_is_undefined_when_the_window_holds_one_direction():
    metrics = evaluate_forecast([1, 1, 1], [0.6, 0.4, 0.7])
    assert metrics.roc_auc is None
    assert metrics.balanced_accuracy == pytest.approx(metrics.accuracy) == pytest.approx(2 / 3)
    assert metrics.as_dict()["roc_auc"] is None


def test_majority_baseline_predicts_the_commoner_direction_with_its_smoothed_rate():
    baseline = majority_class_baseline([1, 1, 1, 0], rows=3)
    assert baseline.name == MAJORITY_CLASS
    assert baseline.predictions.tolist() == [1, 1, 1]
    assert baseline.p_up.tolist() == pytest.approx([4 / 6] * 3)  # (3 + 1) / (4 + 2)
    tied = majority_class_baseline([1, 0, 1, 0], rows=2)
    assert tied.predictions.tolist() == [0, 0]  # a tie in counts is "down", like a price tie
    assert tied.p_up.tolist() == pytest.approx([0.5, 0.5])


def test_last_hour_baseline_follows_the_last_move_with_training_rates_as_probabilities():
    train_y = [1, 1, 0, 0, 1, 0]
    train_last = [1, 1, 1, 0, 0, np.nan]  # after up: 2 of 3 up; after down: 1 of 2 up
    evaluated_last = np.array([1, 0, np.nan])
    baseline = last_hour_baseline(train_y, train_last, evaluated_last)
    assert baseline.name == LAST_HOUR
    assert baseline.predictions.tolist() == [1, 0, 0]  # unknown last hour -> majority (tie: 0)
    assert baseline.p_up.tolist() == pytest.approx([(2 + 1) / (3 + 2), (1 + 1) / (2 + 2), 0.5])
    scored = baseline.evaluate([1, 1, 0])
    assert scored.correct == 2


def test_last_hour_direction_is_the_bar_own_move_and_unknown_across_a_gap():
    hours = pd.to_datetime(
        ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 04:00"], utc=True
    )
    closes = pd.Series([100.0, 101.0, 101.0, 99.0], index=hours)
    directions = last_hour_directions(closes)
    assert directions.index.equals(hours)
    assert directions.iloc[1:3].tolist() == [1.0, 0.0]  # up, then a tie counts as down
    assert np.isnan(directions.iloc[0]) and np.isnan(directions.iloc[3])  # no bar an hour before
