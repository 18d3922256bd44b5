"""Autocorrelation times from the weeks before the reference window (``history``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.feature_drift import compare_features, severity_at_least
from btcmlops.mlops.drift.reference import DriftReference

NAMES = [f"mood_{i}" for i in range(20)]


def day_scale_series(rng, rows: int, phi: float = 0.97) -> np.ndarray:
    """Rows x features of unit-variance AR(phi): a mood with a half-life of about a day."""
    shocks = rng.normal(size=(len(NAMES), rows)) * np.sqrt(1 - phi**2)
    start = rng.normal(size=(len(NAMES), 1))
    series = lfilter([1.0], [1.0, -phi], shocks, axis=1, zi=phi * start)[0]
    return series.T


def with_hourly_noise(rng, rows: np.ndarray, features: int) -> np.ndarray:
    """The first ``features`` columns replaced by independent hourly noise (no memory)."""
    rows = rows.copy()
    rows[:, :features] = rng.normal(size=(rows.shape[0], features))
    return rows


@pytest.mark.slow
def test_a_longer_history_keeps_day_scale_swings_from_looking_like_drift():
    rng = np.random.default_rng(7)
    checks = 200
    alarms_with_history = refused_reference_only = 0
    for _ in range(checks):
        rows = day_scale_series(rng, 504 + 168 + 48)  # three weeks, one week, two days
        history, reference, current = rows[:504], rows[504:672], rows[672:]
        with_history = compare_features(reference, current, NAMES, history=history)
        reference_only = compare_features(reference, current, NAMES)
        alarms_with_history += severity_at_least(with_history.drift_severity, "medium")
        # One week of rows cannot show these features' memory (once 5-50 % of checks
        # alarmed on their swings): without the history the check is refused, not run.
        refused = reference_only.status == "insufficient_data"
        refused_reference_only += refused and "history" in reference_only.message
    assert refused_reference_only / checks >= 0.95
    assert alarms_with_history / checks <= 0.01


def test_a_real_shift_is_still_found_with_the_history():
    # What a market change moves within two days are short-memory features (news counts,
    # candle shapes); a day-scale mood holds under one independent observation per two
    # days, so no honest test confirms a change in it that fast.
    rng = np.random.default_rng(8)
    found = 0
    for _ in range(50):
        rows = with_hourly_noise(rng, day_scale_series(rng, 504 + 168 + 48), 4)
        rows[672:, :4] += 1.0  # four memoryless features move by one standard deviation
        result = compare_features(rows[504:672], rows[672:], NAMES, history=rows[:504])
        found += severity_at_least(result.drift_severity, "medium") and set(
            result.drifted_features
        ) <= set(NAMES[:4])
    assert found >= 45


def test_a_history_shorter_than_the_reference_is_not_used():
    rng = np.random.default_rng(9)
    rows = day_scale_series(rng, 100 + 168 + 48)
    reference, current = rows[100:268], rows[268:]
    with_short_history = compare_features(reference, current, NAMES, history=rows[:100])
    # not used: the reference's own week then cannot support its dependence estimate
    assert with_short_history.status == "insufficient_data"
    assert with_short_history.drift_severity is None
    assert "history" in with_short_history.message
    longer = compare_features(reference, current, NAMES, history=rows[:168])
    assert longer.status != "insufficient_data"
    assert all(item.autocorrelation_time > 1 for item in longer.drift_results)


def test_bad_history_is_refused_with_a_reason():
    rng = np.random.default_rng(10)
    rows = day_scale_series(rng, 400)
    prepared = DriftReference.from_data(rows[:300], NAMES)
    with pytest.raises(InvalidInputError, match="history cannot be combined"):
        compare_features(prepared, rows[300:], history=rows[:100])
    with pytest.raises(InvalidInputError, match="one value per feature"):
        DriftReference.from_columns(rows[:300].T, NAMES, autocorrelation_time=np.ones(3))
