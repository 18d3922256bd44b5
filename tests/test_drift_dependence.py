"""Dependence as the KS and PSI tests see it (ranks of x and of |x - median|, gated), and
the refusal of references too short to estimate it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.feature_drift import compare_features
from btcmlops.mlops.drift.reference import REFERENCE_FORMAT, Dependence, DriftReference
from btcmlops.mlops.drift.statistics import effective_sizes


def ar1(rng: np.random.Generator, features: int, rows: int, phi: float) -> np.ndarray:
    """(features, rows) stationary AR(1) series with unit variance."""
    shocks = rng.normal(size=(features, rows)) * math.sqrt(1.0 - phi**2)
    start = rng.normal(size=(features, 1))
    return lfilter([1.0], [1.0, -phi], shocks, axis=1, zi=phi * start)[0]


def clustered_returns(rng: np.random.Generator, features: int, rows: int) -> np.ndarray:
    """(features, rows) returns whose log-volatility is AR(0.98) with innovation sd 0.2."""
    log_volatility = ar1(rng, features, rows, 0.98) * 0.2 / math.sqrt(1.0 - 0.98**2)
    return np.exp(log_volatility) * rng.normal(size=(features, rows))


# --- the dependence time --------------------------------------------------------------


def test_independent_features_keep_a_dependence_time_of_exactly_one():
    rng = np.random.default_rng(31)
    tau = st.dependence_time(rng.normal(size=(500, 168)))
    old = st.autocorrelation_time(rng.normal(size=(500, 168)))
    assert np.mean(tau == 1.0) >= 0.998  # 0.016% gated at this size (0.6% by the first gate)
    assert np.mean(old > 1.0) >= 0.5  # the ungated estimate switched the correction on


def test_volatility_clustering_is_seen_where_linear_autocorrelation_is_not():
    rng = np.random.default_rng(32)
    returns = clustered_returns(rng, 20, 2_000)
    assert np.median(st.autocorrelation_time(returns)) < 1.5
    assert np.median(st.dependence_time(returns)) > 4.0


def test_dependence_time_of_an_ar1_follows_its_rank_autocorrelation():
    # ranks of a Gaussian AR(φ) have ρ_k = (6/π)·asin(φ^k/2), so τ is a little below
    # (1 + φ)/(1 - φ): 2.92 for φ = 0.5 and 18.4 for φ = 0.9 (measured: 3.04 and 19.2)
    rng = np.random.default_rng(33)
    for phi, expected in ((0.5, 2.92), (0.9, 18.4)):
        tau = st.dependence_time(ar1(rng, 20, 20_000, phi), max_rows=20_000)
        assert np.median(tau) == pytest.approx(expected, rel=0.12)


def test_a_stricter_gate_never_gives_a_longer_dependence_time():
    rng = np.random.default_rng(34)
    columns = np.concatenate([rng.normal(size=(50, 168)), ar1(rng, 50, 168, 0.3)])
    low, middle, strict, never = st.dependence_times(columns, (2.0, st.GATE_Z, 6.0, np.inf))
    assert np.all(low >= middle) and np.all(middle >= strict)
    assert np.all(never == 1.0)
    assert np.all(middle == st.dependence_time(columns))
    assert np.count_nonzero(low > 1.0) > np.count_nonzero(strict > 1.0)


def test_dependence_time_survives_missing_constant_and_infinite_values():
    rng = np.random.default_rng(35)
    columns = ar1(rng, 5, 300, 0.9)
    columns[0, ::3] = np.nan  # a third missing
    columns[1] = 4.0  # constant
    columns[2] = np.nan  # nothing observed
    columns[3, 10] = np.inf
    tau = st.dependence_time(columns)
    assert tau[0] > 3.0 and tau[3] > 3.0 and tau[4] > 3.0
    assert tau[1] == 1.0 and tau[2] == 1.0
    assert np.all(st.dependence_time(columns[:, :7]) == 1.0)  # too short to say anything


def test_level_and_spread_ranks_agree_with_scipy_with_ties_missing_and_infinite_values():
    rng = np.random.default_rng(44)
    values = rng.normal(size=(8, 60))
    values[:3] = np.round(values[:3])  # many ties
    values[rng.random(values.shape) < 0.1] = np.nan
    values[4, 2], values[5, 7] = np.inf, -np.inf
    values[6] = np.nan
    ranks = effective_sizes._level_and_spread_ranks(values)
    level, spread = ranks[: len(values)], ranks[len(values) :]
    np.testing.assert_array_equal(level, stats.rankdata(values, axis=1, nan_policy="omit"))
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):  # the empty row
        medians = np.nanmedian(values, axis=1)
    with np.errstate(invalid="ignore"):
        distances = np.abs(values - medians[:, None])
    np.testing.assert_array_equal(spread, stats.rankdata(distances, axis=1, nan_policy="omit"))
    # the distances of an even count tie either side of the median: averaged, not ordinal
    assert np.any(spread[~np.isnan(spread)] % 1 == 0.5)


def test_the_gate_from_the_first_lags_summed_directly_matches_the_fft_autocorrelations():
    rng = np.random.default_rng(46)
    values = np.concatenate([rng.normal(size=(3, 500)), ar1(rng, 3, 500, 0.9)])
    values[rng.random(values.shape) < 0.05] = np.nan
    values[1] = 2.0  # no spread
    centred, _ = effective_sizes._centred(values)
    direct = effective_sizes._first_autocorrelations(centred, effective_sizes.GATE_LAGS)
    by_fft, _ = effective_sizes._autocorrelations(values)
    np.testing.assert_allclose(direct, by_fft[:, : direct.shape[1]], rtol=0, atol=1e-12)


def test_the_most_recent_rows_give_the_dependence_of_the_whole_reference():
    rng = np.random.default_rng(47)
    columns = np.concatenate([rng.normal(size=(2, 3_000)), ar1(rng, 2, 3_000, 0.95)])
    whole = Dependence.estimate(columns)
    recent = Dependence.estimate(columns[:, -st.DEPENDENCE_ROWS :], rows=3_000)
    np.testing.assert_array_equal(recent.times, whole.times)
    assert (recent.rows, recent.needs_rows) == (3_000, whole.needs_rows)


# --- refusing what the rows cannot support --------------------------------------------


def test_a_short_reference_of_a_persistent_feature_is_refused_with_a_reason():
    rng = np.random.default_rng(36)
    rows = ar1(rng, 3, 48, 0.95).T
    result = compare_features(rows[:24], rows[24:])
    assert result.status == "insufficient_data"
    assert result.drift_severity is None and result.drift_results == ()
    assert result.message.startswith("the reference has 24 rows, too few to estimate its")
    assert "(needs at least 50)" in result.message or "for τ≈" in result.message
    assert "give a longer reference or a history of earlier rows" in result.message
    assert "\n" not in result.message


def test_a_history_lifts_the_refusal():
    rng = np.random.default_rng(37)
    rows = ar1(rng, 3, 504 + 48, 0.95).T
    result = compare_features(rows[504:528], rows[528:], history=rows[:504])
    assert result.status == "success"
    assert result.drift_severity is not None


def test_a_reference_under_fifty_rows_is_refused_without_history_even_if_independent():
    rng = np.random.default_rng(45)
    result = compare_features(rng.normal(size=(40, 3)), rng.normal(size=(40, 3)))
    assert result.status == "insufficient_data"
    assert "the reference has 40 rows" in result.message
    assert "(needs at least 50)" in result.message


def test_a_long_reference_of_independent_features_is_supported():
    rng = np.random.default_rng(38)
    reference = DriftReference.from_data(rng.normal(size=(168, 4)))
    assert reference.dependence_rows == 168
    assert reference.dependence_needs_rows == 50
    assert not reference.dependence_unsupported and reference.refusal() == ""


def test_the_refusal_names_the_rows_needed_for_the_dependence_found():
    rng = np.random.default_rng(39)
    reference = DriftReference.from_data(ar1(rng, 2, 168, 0.9).T)
    assert reference.dependence_unsupported
    needs = reference.dependence_needs_rows
    assert needs > 168
    tau = needs / 50
    assert f"needs about {needs} for τ≈{tau:.0f})" in reference.refusal()


def test_dependence_times_given_by_the_caller_are_never_refused():
    rng = np.random.default_rng(40)
    rows = ar1(rng, 3, 48, 0.95)
    reference = DriftReference.from_columns(
        rows[:, :24], ["a", "b", "c"], autocorrelation_time=np.full(3, 40.0)
    )
    assert reference.dependence_source == "given" and not reference.dependence_unsupported
    result = compare_features(reference, rows[:, 24:].T)
    assert result.status == "success"


def test_dependence_from_a_history_is_recorded_with_its_rows():
    rng = np.random.default_rng(41)
    history = ar1(rng, 3, 504, 0.5)
    dependence = Dependence.estimate(history, "history")
    reference = DriftReference.from_columns(
        ar1(rng, 3, 168, 0.5), list("abc"), dependence=dependence
    )
    assert reference.dependence_rows == 504 and reference.dependence_source == "history"
    np.testing.assert_array_equal(reference.autocorrelation_time, dependence.times)


# --- the stored form -------------------------------------------------------------------


def test_a_stored_reference_keeps_its_dependence_rows_and_refusal():
    rng = np.random.default_rng(42)
    reference = DriftReference.from_data(ar1(rng, 3, 24, 0.95).T)
    restored = DriftReference.from_json(reference.to_json())
    assert (
        json.loads(reference.to_json())["format"]
        == REFERENCE_FORMAT
        == ("btcmlops.drift-reference/3")
    )
    assert restored.dependence_rows == reference.dependence_rows == 24
    assert restored.dependence_needs_rows == reference.dependence_needs_rows
    assert restored.refusal() == reference.refusal() != ""


def test_a_reference_of_the_previous_format_asks_to_be_rebuilt():
    rng = np.random.default_rng(43)
    payload = DriftReference.from_data(rng.normal(size=(168, 2))).to_dict()
    payload["format"] = "btcmlops.drift-reference/2"
    for key in ("dependence_rows", "dependence_needs_rows", "dependence_source"):
        del payload[key]
    with pytest.raises(InvalidInputError, match=r"out of date.*build it again"):
        DriftReference.from_dict(payload)
