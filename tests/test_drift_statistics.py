"""The drift statistics core: KS agrees with scipy, PSI bins and floors, BH, noise levels,
effective sample sizes, and the reusable reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.feature_drift import FeatureDrift, compare_features, severity_at_least
from btcmlops.mlops.drift.reference import DriftReference
from btcmlops.mlops.drift.severity_rules import SeverityRule, drift_severity
from btcmlops.mlops.drift.statistics import ks as ks_module
from btcmlops.mlops.drift.statistics import ks_exact, ks_statistic

TOLERANCE = 1e-9


def scipy_ks(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy's answer column by column, NaN dropped (the oracle)."""
    statistic, pvalue = [], []
    for j in range(reference.shape[1]):
        a = reference[:, j][~np.isnan(reference[:, j])]
        b = current[:, j][~np.isnan(current[:, j])]
        result = stats.ks_2samp(a, b)
        statistic.append(result.statistic)
        pvalue.append(result.pvalue)
    return np.array(statistic), np.array(pvalue)


def ours(reference: np.ndarray, current: np.ndarray) -> st.KSResult:
    return st.ks_two_sample(
        st.SortedSample.from_rows(reference), st.SortedSample.from_rows(current)
    )


def assert_matches_scipy(reference: np.ndarray, current: np.ndarray) -> None:
    expected_d, expected_p = scipy_ks(reference, current)
    result = ours(reference, current)
    np.testing.assert_allclose(result.statistic, expected_d, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(result.pvalue, expected_p, rtol=0, atol=TOLERANCE)


# --- KS agrees with scipy --------------------------------------------------------------


@pytest.mark.parametrize("gaps", ["merged", "searched", "sampled"])
@pytest.mark.parametrize("seed", range(6))
def test_ks_matches_scipy_on_small_samples_of_every_kind(seed, gaps, monkeypatch):
    if gaps in ("searched", "sampled"):  # the way long samples find the statistic, at any size
        monkeypatch.setattr(ks_statistic, "_SEARCH_MIN_WIDTH", 0)
    if gaps == "sampled":
        monkeypatch.setattr(ks_statistic, "_SAMPLED_MIN_KEYS", 1)
        monkeypatch.setattr(ks_statistic, "_SAMPLED_SEGMENT", 4)
    rng = np.random.default_rng(seed)
    for trial in range(40):
        n, m, features = int(rng.integers(1, 70)), int(rng.integers(1, 70)), 3
        shift = rng.normal() * 0.7
        kind = trial % 4
        if kind == 0:  # continuous, possibly shifted
            reference = rng.normal(size=(n, features))
            current = rng.normal(size=(m, features)) + shift
        elif kind == 1:  # heavy ties: small integers
            reference = rng.integers(0, 4, size=(n, features)).astype(float)
            current = rng.integers(0, 5, size=(m, features)).astype(float)
        elif kind == 2:  # rounded values: ties within and across samples
            reference = np.round(rng.normal(size=(n, features)), 1)
            current = np.round(rng.normal(size=(m, features)) * 1.3 + shift, 1)
        else:  # missing values dropped per column
            reference = rng.normal(size=(n + 5, features))
            current = rng.normal(size=(m + 5, features)) + shift
            reference[rng.random(reference.shape) < 0.2] = np.nan
            current[rng.random(current.shape) < 0.2] = np.nan
            reference[0] = 0.0  # keep every column non-empty
            current[0] = 0.0
        assert_matches_scipy(reference, current)


@pytest.mark.parametrize(
    ("n", "m"),
    [(168, 24), (24, 168), (300, 300), (1000, 999), (2000, 300), (10_000, 2000), (10_001, 400)],
)
def test_ks_matches_scipy_at_larger_and_unequal_sizes(n, m):
    rng = np.random.default_rng(n + m)
    reference = rng.normal(size=(n, 5))
    current = rng.normal(size=(m, 5))
    current[:, 0] += 0.05
    current[:, 1] += 0.15
    current[:, 2] = np.round(current[:, 2], 1)
    reference[:, 2] = np.round(reference[:, 2], 1)
    assert_matches_scipy(reference, current)


def test_ks_matches_scipy_in_the_asymptotic_regime():
    rng = np.random.default_rng(11)
    reference = rng.normal(size=(30_000, 3))
    current = rng.normal(size=(12_000, 3))
    current[:, 1] += 0.02
    assert_matches_scipy(reference, current)


def test_far_tail_pvalues_stay_within_tolerance_of_scipy_exact_values():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(3000, 6))
    current = rng.normal(size=(1000, 6)) + np.array([0.0, 0.15, 0.2, 0.3, 0.5, 1.0])
    _, expected_p = scipy_ks(reference, current)
    result = ours(reference, current)
    np.testing.assert_allclose(result.pvalue, expected_p, rtol=0, atol=1e-10)
    assert result.pvalue[-1] < 1e-10 and result.pvalue[0] > 1e-3


def test_both_band_recursions_give_the_same_inside_share():
    h = np.array([3, 10, 25, 40, 55])
    periodic = ks_exact._band_count_periodic(168, 24, h)
    stepping = ks_exact._band_count_stepping(168, 24, h)
    np.testing.assert_allclose(periodic, stepping, rtol=1e-10, atol=1e-14)


def test_equal_sizes_use_the_closed_form_and_match_scipy():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(500, 4))
    current = rng.normal(size=(500, 4)) + np.array([0, 0.1, 0.2, 0.3])
    assert_matches_scipy(reference, current)


def test_a_feature_with_no_values_on_one_side_gets_nan_not_an_error():
    reference = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    current = np.array([[1.5, 1.0], [2.5, 2.0]])
    result = ours(reference, current)
    assert math.isnan(result.statistic[1]) and math.isnan(result.pvalue[1])
    assert result.reference_count.tolist() == [3, 0]


# --- Benjamini–Hochberg --------------------------------------------------------------


def test_benjamini_hochberg_matches_a_hand_computed_example():
    # sorted p: .001 .008 .039 .041 .042 .06 .074 .205 ; F = 8
    # p·F/rank: .008 .032 .104 .082 .0672 .08 .0846 .205 ; running minimum from the top
    p = np.array([0.039, 0.001, 0.205, 0.041, 0.008, 0.074, 0.042, 0.06])
    expected = np.array([0.0672, 0.008, 0.205, 0.0672, 0.032, 0.0846, 0.0672, 0.08])
    np.testing.assert_allclose(st.benjamini_hochberg(p), expected, atol=1e-4)


def test_benjamini_hochberg_equals_the_step_up_definition_on_random_pvalues():
    rng = np.random.default_rng(8)
    for _ in range(50):
        p = rng.random(int(rng.integers(1, 40))) ** 3
        count = p.size
        order = np.argsort(p)
        definition = np.empty(count)
        for position, index in enumerate(order):
            definition[index] = min(
                1.0, min(p[order[k]] * count / (k + 1) for k in range(position, count))
            )
        np.testing.assert_allclose(st.benjamini_hochberg(p), definition, rtol=1e-12)


def test_benjamini_hochberg_skips_missing_pvalues_and_counts_only_real_tests():
    adjusted = st.benjamini_hochberg(np.array([0.01, np.nan, 0.02]))
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.02])


def test_benjamini_hochberg_works_row_by_row_on_a_matrix_of_checks():
    rows = np.array([[0.01, 0.04, 0.03, 0.2], [0.5, 0.001, 0.9, 0.02]])
    adjusted = st.benjamini_hochberg(rows)
    for row, result in zip(rows, adjusted, strict=True):
        np.testing.assert_allclose(result, st.benjamini_hochberg(row))


# --- PSI -------------------------------------------------------------------------------


def test_quantile_edges_are_numpys_quantiles_with_missing_values_dropped():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(200, 4))
    reference[rng.random(reference.shape) < 0.1] = np.nan
    edges = st.quantile_edges(st.SortedSample.from_rows(reference), 10)
    for j in range(4):
        column = reference[:, j][~np.isnan(reference[:, j])]
        np.testing.assert_allclose(edges[j], np.quantile(column, np.arange(1, 10) / 10))


def test_values_outside_the_reference_range_land_in_the_end_bins():
    reference = st.SortedSample.from_rows(np.arange(100.0)[:, None])
    edges = st.quantile_edges(reference, 4)
    current = st.SortedSample.from_rows(np.array([[-1e9], [1e9], [1e9], [50.0]]))
    shares = st.bin_shares(current, edges)
    np.testing.assert_allclose(shares[0], [0.25, 0.0, 0.25, 0.5])


def test_bin_shares_count_a_value_equal_to_an_edge_in_the_lower_bin():
    reference = st.SortedSample.from_rows(np.arange(1.0, 11.0)[:, None])
    edges = st.quantile_edges(reference, 2)  # one edge at the median, 5.5
    shares = st.bin_shares(st.SortedSample.from_rows(np.array([[5.5], [5.6]])), edges)
    np.testing.assert_allclose(shares[0], [0.5, 0.5])


@pytest.mark.parametrize("rows", [24, 2_000], ids=["compared-all", "binary-search"])
def test_counts_at_most_each_edge_are_searchsorted_counts_of_the_observed_values(rows):
    # short rows compare every value with every edge, long ones search: the same counts,
    # a value equal to an edge counted, missing values never, infinities counted, a NaN edge
    # counting nothing
    rng = np.random.default_rng(12)
    values = rng.normal(size=(rows, 6))
    values[rng.random(values.shape) < 0.2] = np.nan
    values[0, 1], values[1, 2] = np.inf, -np.inf
    sample = st.SortedSample.from_rows(values)
    edges = np.sort(rng.normal(size=(6, 9)), axis=1)
    edges[0, :3] = np.sort(values[:, 0])[[0, 5, 10]]  # edges equal to values: counted
    edges[3] = np.nan
    edges[4, -1] = np.inf
    counts = st.count_at_most(sample, edges)
    for j in range(6):
        observed = np.sort(values[:, j][~np.isnan(values[:, j])])
        expected = np.searchsorted(observed, edges[j], side="right")
        expected[np.isnan(edges[j])] = 0
        np.testing.assert_array_equal(counts[j], expected)


def test_discrete_feature_with_repeated_edges_has_zero_psi_against_itself():
    rng = np.random.default_rng(2)
    binary = (rng.random((500, 1)) < 0.3).astype(float)
    reference = st.SortedSample.from_rows(binary)
    edges = st.quantile_edges(reference, 10)
    assert np.unique(edges).size < edges.size  # the edges repeat
    shares = st.bin_shares(reference, edges)
    assert st.psi(shares, shares)[0] == pytest.approx(0.0)
    assert np.count_nonzero(shares > 0) == 2


def test_a_new_value_in_an_empty_bin_gives_a_finite_psi_through_the_floor():
    reference = st.SortedSample.from_rows(np.zeros((100, 1)))
    edges = st.quantile_edges(reference, 10)
    current = st.SortedSample.from_rows(np.array([[0.0]] * 9 + [[1.0]]))
    value = st.psi(st.bin_shares(reference, edges), st.bin_shares(current, edges))[0]
    expected = (0.9 - 1.0) * math.log(0.9 / 1.0) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert value == pytest.approx(expected)


def test_psi_is_the_symmetric_sum_over_bins():
    r = np.array([[0.2, 0.3, 0.5]])
    c = np.array([[0.25, 0.25, 0.5]])
    expected = 0.05 * math.log(0.25 / 0.2) + (-0.05) * math.log(0.25 / 0.3)
    assert st.psi(r, c)[0] == pytest.approx(expected)
    assert st.psi(c, r)[0] == pytest.approx(expected)


# --- effective sample sizes ------------------------------------------------------------


def ar1(rng: np.random.Generator, rows: int, features: int, phi: float) -> np.ndarray:
    shocks = rng.normal(size=(rows, features)) * math.sqrt(1 - phi**2)
    series = np.empty((rows, features))
    series[0] = rng.normal(size=features)
    for t in range(1, rows):
        series[t] = phi * series[t - 1] + shocks[t]
    return series


def test_lag1_autocorrelation_recovers_an_ar1_coefficient_without_small_sample_bias():
    rng = np.random.default_rng(4)
    estimates = st.lag1_autocorrelation(ar1(rng, 168, 400, 0.9).T)
    assert abs(float(np.mean(estimates)) - 0.9) < 0.01
    independent = st.lag1_autocorrelation(rng.normal(size=(400, 168)))
    assert abs(float(np.mean(independent))) < 0.01


def test_effective_sample_size_divides_by_the_autocorrelation_time_and_never_inflates():
    sizes = np.array([168, 168, 168, 24])
    tau = np.array([19.0, 1.0, 0.5, np.nan])  # 19 = (1 + 0.9) / (1 - 0.9), an AR(0.9)
    n_eff = st.effective_sample_size(sizes, tau)
    np.testing.assert_allclose(n_eff, [168 * 0.1 / 1.9, 168, 168, 24])


def test_autocorrelation_time_sees_slow_mood_under_fast_noise():
    # Hourly noise around a slowly drifting level: rho_1 is moderate, but the level persists.
    rng = np.random.default_rng(5)
    level = np.empty(5_000)
    level[0] = 0.0
    for t in range(1, level.size):
        level[t] = 0.98 * level[t - 1] + rng.normal(scale=0.2)
    series = (level + rng.normal(size=level.size))[None, :]
    rho1 = st.lag1_autocorrelation(series)[0]
    ar1_rule = (1 + rho1) / (1 - rho1)
    tau = st.autocorrelation_time(series, max_rows=5_000)[0]
    assert 0.3 < rho1 < 0.7
    assert tau > 3 * ar1_rule  # the AR(1) rule would count several times too many samples


def test_autocorrelation_time_matches_ar1_theory():
    rng = np.random.default_rng(9)
    for phi in (0.5, 0.9):
        noise = rng.normal(size=40_000)
        series = np.empty_like(noise)
        series[0] = noise[0]
        for t in range(1, noise.size):
            series[t] = phi * series[t - 1] + noise[t]
        tau = st.autocorrelation_time(series[None, :], max_rows=40_000)[0]
        assert tau == pytest.approx((1 + phi) / (1 - phi), rel=0.15)


def test_effective_pvalue_equals_stephens_formula():
    d = np.array([0.3])
    expected = stats.kstwobign.sf((math.sqrt(12.0) + 0.12 + 0.11 / math.sqrt(12.0)) * 0.3)
    got = st.ks_pvalue_effective(d, np.array([24.0]), np.array([24.0]))
    assert got[0] == pytest.approx(expected)


# --- the reference object and the feature comparison -------------------------------------


def test_a_reference_survives_json_and_gives_the_same_check():
    rng = np.random.default_rng(6)
    reference = pd.DataFrame(rng.normal(size=(168, 4)), columns=list("abcd"))
    reference.iloc[3, 2] = np.nan
    reference.iloc[5, 1] = np.inf
    current = pd.DataFrame(
        rng.normal(size=(30, 4)) + np.array([0, 0.5, 1, 0]), columns=list("abcd")
    )
    prepared = DriftReference.from_data(reference)
    restored = DriftReference.from_json(prepared.to_json())
    json.loads(prepared.to_json())  # strict JSON: no NaN or Infinity tokens
    direct = compare_features(reference, current)
    again = compare_features(restored, current)
    assert again.to_dict() == direct.to_dict()


def test_a_malformed_reference_is_rejected_with_a_clear_message():
    with pytest.raises(InvalidInputError, match="not a drift reference"):
        DriftReference.from_json('{"format": "other"}')


def test_too_few_rows_is_a_status_not_a_severity():
    rng = np.random.default_rng(0)
    result = compare_features(rng.normal(size=(168, 3)), rng.normal(size=(23, 3)))
    assert result.status == "insufficient_data"
    assert result.drift_severity is None
    assert "23 current rows" in result.message
    assert not severity_at_least(result.drift_severity, "low")


def test_a_feature_with_too_few_values_is_reported_untested_and_not_counted():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(168, 3))
    current = rng.normal(size=(48, 3))
    current[:30, 2] = np.nan
    result = compare_features(reference, current, ["a", "b", "sparse"])
    assert result.features_tested == 2
    assert result.untested_features == ("sparse",)
    sparse = next(item for item in result.drift_results if item.feature == "sparse")
    assert not sparse.tested and math.isnan(sparse.ks_pvalue_adjusted)
    assert result.drift_results[-1].feature == "sparse"


def test_dataframe_and_array_inputs_give_the_same_result():
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(100, 3))
    current = rng.normal(size=(40, 3)) + np.array([0, 0, 1])
    names = ["x", "y", "z"]
    from_arrays = compare_features(reference, current, names)
    from_frames = compare_features(
        pd.DataFrame(reference, columns=names), pd.DataFrame(current, columns=names)
    )
    assert from_arrays.to_dict() == from_frames.to_dict()


def test_missing_or_non_numeric_feature_columns_are_rejected():
    frame = pd.DataFrame({"a": [1.0] * 30, "b": ["x"] * 30})
    with pytest.raises(InvalidInputError, match="missing feature column"):
        compare_features(frame, frame, ["a", "c"])
    with pytest.raises(InvalidInputError, match="not numeric"):
        compare_features(frame, frame, ["a", "b"])


def test_results_are_sorted_with_drifted_features_first_by_excess_psi():
    rng = np.random.default_rng(12)
    reference = rng.normal(size=(500, 5))
    current = rng.normal(size=(200, 5)) + np.array([0, 0.6, 0, 2.0, 0])
    result = compare_features(reference, current, list("abcde"))
    assert [item.feature for item in result.drift_results[:2]] == ["d", "b"]
    flags = [item.drift_detected for item in result.drift_results]
    assert flags == sorted(flags, reverse=True)


def test_a_significant_shift_below_the_psi_floor_is_low_severity_but_not_drift():
    rng = np.random.default_rng(13)
    reference = rng.normal(size=(20_000, 4))
    current = rng.normal(size=(20_000, 4)) + np.array([0.1, 0, 0, 0])  # PSI about 0.01
    result = compare_features(reference, current)
    top = result.drift_results[0]
    assert top.feature == "feature_0" and top.ks_significant and top.psi < 0.1
    assert not top.drift_detected
    assert result.significant_drift_count == 0 and result.ks_significant_count >= 1
    assert result.drift_severity == "low"


def test_psi_floor_setting_decides_whether_a_significant_feature_drifts():
    rng = np.random.default_rng(13)
    reference = rng.normal(size=(20_000, 2))
    current = rng.normal(size=(20_000, 2)) + np.array([0.1, 0])
    strict = compare_features(reference, current, psi_effect_floor=0.1)
    loose = compare_features(reference, current, psi_effect_floor=0.001)
    assert strict.significant_drift_count == 0
    assert loose.significant_drift_count == 1


# --- the severity rule -------------------------------------------------------------------


def flags(tested: int, drifted_excess: list[float], significant_only: int = 0):
    significant = np.zeros(tested, dtype=bool)
    detected = np.zeros(tested, dtype=bool)
    excess = np.zeros(tested)
    count = len(drifted_excess)
    significant[: count + significant_only] = True
    detected[:count] = True
    excess[:count] = drifted_excess
    return tested, significant, detected, excess


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (flags(106, []), "none"),
        (flags(106, [], significant_only=3), "low"),
        (flags(106, [0.05, 0.15]), "low"),
        (flags(106, [0.5] * 5), "low"),  # 5 of 106 is below the 5% share (6 features)
        (flags(106, [0.25] * 6), "medium"),
        (flags(106, [0.25] * 5), "low"),
        (flags(106, [0.5] * 11), "high"),
        (flags(106, [0.5] * 10 + [0.25]), "medium"),
        (flags(5, [0.5]), "high"),  # with few features one is enough
        (flags(0, []), "none"),
    ],
)
def test_severity_rule(case, expected):
    tested, significant, detected, excess = case
    assert drift_severity(tested, significant, detected, excess) == expected


def test_severity_thresholds_are_configurable():
    tested, significant, detected, excess = flags(20, [0.25])
    assert drift_severity(tested, significant, detected, excess) == "medium"
    strict = SeverityRule(medium_psi=0.3, medium_share=0.5)
    assert drift_severity(tested, significant, detected, excess, strict) == "low"


def test_feature_results_serialise_missing_numbers_as_null():
    item = FeatureDrift(
        feature="f", tested=False, reference_count=0, current_count=0,
        ks_statistic=math.nan, ks_pvalue=math.nan, ks_pvalue_effective=math.nan,
        ks_pvalue_adjusted=math.nan, ks_pvalue_exact=True,
        ks_pvalue_adjusted_exact=True, ks_significant=False, psi=math.nan,
        psi_expected=math.nan, psi_excess=math.nan, drift_detected=False, level="none",
        reference_mean=math.nan, current_mean=math.nan, reference_std=math.nan,
        current_std=math.nan, autocorrelation=math.nan, autocorrelation_time=math.nan,
        effective_reference_size=0.0,
        effective_current_size=0.0, bins_used=0,
    )  # fmt: skip
    assert item.to_dict()["ks_pvalue"] is None
    json.dumps(item.to_dict(), allow_nan=False)


@pytest.mark.parametrize(("large", "small"), [(10_000, 2000), (168, 24), (5000, 3000), (700, 300)])
def test_one_period_transfer_equals_the_step_by_step_recursion(large, small):
    g = math.gcd(large, small)
    a, b = large // g, small // g
    p_long, p_short = large / (large + small), small / (large + small)
    h = np.array([a + 1, 3 * a + 2, 17 * a, 40 * a + 3])
    r0 = -(-h // a) - 1
    size = int((2 * r0 + 1 + b).max())
    offset = np.arange(size)[None, :] - r0[:, None]
    long_index = np.arange(1, a + 1)[:, None]
    low = np.floor((b * long_index - h[None, :]) / a) + 1
    high = np.ceil((b * long_index + h[None, :]) / a) - 1
    inside = (offset[None] >= low[:, :, None]) & (offset[None] <= high[:, :, None])
    unit = np.broadcast_to(np.eye(size), (h.size, size, size))
    recursion = ks_exact._band_steps(unit, inside, p_long, p_short, reverse=False)
    transfer = ks_exact._one_period_transfer(h, offset, a, b, p_long, p_short)
    np.testing.assert_allclose(transfer, recursion, rtol=1e-12, atol=1e-290)


@pytest.mark.parametrize(("n", "m"), [(10_000, 2000), (3000, 1000), (168, 24), (5000, 3000)])
def test_pvalues_beyond_the_far_tail_certificate_stay_within_the_tail_level(n, m):
    h_star = ks_exact._smallest_likely_tail_h(n, m)
    h = np.array([h_star - 1, h_star, h_star + 1, h_star + 7])
    exact = 1.0 - ks_exact._inside_probability(n, m, h)
    assert exact[1] < st.TAIL_PVALUE  # the certificate holds, no fallback
    np.testing.assert_allclose(st.exact_two_sided_pvalues(n, m, h), exact, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("large", "small"), [(6, 2), (8, 4), (9, 3), (10, 1)])
def test_one_sided_exceedance_counts_every_merge_order(large, small):
    # every arrangement of `large` long and `small` short values, equally likely
    from itertools import combinations

    a = large // small
    highest = {}
    total = 0
    for shorts in combinations(range(large + small), small):
        walk, peak = 0, 0
        for position in range(large + small):
            walk += -a if position in shorts else 1
            peak = max(peak, walk)
        highest[peak] = highest.get(peak, 0) + 1
        total += 1
    for h in range(1, large + 1):
        expected = sum(count for peak, count in highest.items() if peak >= h) / total
        got = float(ks_exact.one_sided_exceedance(large, small, np.array([h]))[0])
        assert got == pytest.approx(expected, abs=1e-12), h


@pytest.mark.parametrize(
    ("large", "small", "widest"), [(3000, 600, 720), (700, 100, 350), (168, 24, 167)]
)
def test_divisible_sizes_agree_with_the_band_recursion(large, small, widest, monkeypatch):
    h = np.unique(np.linspace(1, widest, 80).astype(np.int64))  # p-values from 1 to < 1e-20
    shortcut = st.exact_two_sided_pvalues(large, small, h)
    recursion = 1.0 - ks_exact._inside_probability(large, small, h)
    np.testing.assert_allclose(shortcut, np.clip(recursion, 0, 1), rtol=0, atol=1e-10)
    # the one-sided closed form really replaced the recursion for the far values
    tail = ks_exact.one_sided_exceedance(large, small, h) * 2 <= ks_exact._UNION_SHORTCUT_LEVEL
    assert tail.sum() >= 10
    # and with P(both sides) judged too large, the recursion runs: same values
    monkeypatch.setattr(ks_exact, "_BOTH_TOLERANCE", 0.0)
    st.clear_exact_pvalue_cache()
    np.testing.assert_allclose(
        st.exact_two_sided_pvalues(large, small, h), shortcut, rtol=0, atol=1e-10
    )


@pytest.mark.parametrize(("large", "small", "widest"), [(3000, 600, 720), (168, 24, 167)])
def test_divisible_sizes_find_the_shortcut_alike_by_search_or_by_a_sum_per_h(
    large, small, widest, monkeypatch
):
    rng = np.random.default_rng(48)
    for wanted in (np.arange(1, widest), np.unique(rng.integers(1, widest, size=12))):
        found = {}
        for search in (True, False):
            monkeypatch.setattr(ks_exact, "_union_search_is_cheaper", lambda *_, s=search: s)
            st.clear_exact_pvalue_cache()
            found[search] = st.exact_two_sided_pvalues(large, small, wanted)
        np.testing.assert_array_equal(found[True], found[False])


def test_the_ks_test_started_in_the_background_gives_the_same_result(monkeypatch):
    rng = np.random.default_rng(21)
    reference = st.SortedSample.from_columns(rng.normal(size=(6, 3_000)))
    current = st.SortedSample.from_columns(rng.normal(0.1, 1.0, size=(6, 1_500)))
    st.clear_exact_pvalue_cache()
    started = st.start_ks_two_sample(reference, current)()
    st.clear_exact_pvalue_cache()
    direct = st.ks_two_sample(reference, current)
    np.testing.assert_array_equal(started.statistic, direct.statistic)
    np.testing.assert_allclose(started.pvalue, direct.pvalue, rtol=0, atol=1e-15)

    def broken(*args, **kwargs):
        raise InvalidInputError("the p-values failed")

    monkeypatch.setattr(ks_module, "ks_pvalues", broken)
    pending = st.start_ks_two_sample(reference, current)
    with pytest.raises(InvalidInputError, match="the p-values failed"):
        pending()
