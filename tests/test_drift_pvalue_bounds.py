"""KS p-values as certified bounds where the verdict does not need them exactly: the bounds
hold, the verdict is the one all-exact p-values give, and the result says which are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.compare import compare_files
from btcmlops.mlops.drift.feature_drift import compare_features
from btcmlops.mlops.drift.statistics import ks_statistic

from support import bounded_in_message

TOLERANCE = 1e-9


def all_exact(result: st.KSResult, significant_at: object) -> st.KSResult:
    return result.with_exact(~result.exact)


@pytest.mark.parametrize(("large", "small"), [(168, 24), (120, 40), (10_000, 2_000), (700, 350)])
def test_divisible_size_bounds_contain_the_exact_pvalue(large, small):
    h = np.arange(1, large + 1)
    lower, upper = st.ks_pvalue_bounds(h * small, np.full(h.size, large), np.full(h.size, small))
    st.clear_exact_pvalue_cache()
    exact = st.exact_two_sided_pvalues(large, small, h)
    assert np.all(lower <= exact + 1e-12)
    assert np.all(exact <= upper + 1e-12)
    assert np.all(upper <= 2.0 * lower + 1e-300)


def test_divisible_size_bounds_contain_scipys_exact_pvalue_on_data():
    rng = np.random.default_rng(3)
    for _ in range(60):
        reference = rng.normal(size=168)
        current = rng.normal(rng.uniform(0, 1.2), size=24)
        scipy_p = stats.ks_2samp(reference, current, method="exact").pvalue
        numerator = st.ks_gap_numerators(
            st.SortedSample.from_rows(reference[:, None]),
            st.SortedSample.from_rows(current[:, None]),
        )
        lower, upper = st.ks_pvalue_bounds(numerator, np.array([168]), np.array([24]))
        assert lower[0] - 1e-12 <= scipy_p <= upper[0] + 1e-12


def test_sizes_without_a_cheap_bound_get_none():
    sizes = (np.array([170, 30]), np.array([24, 30]))  # no divisor; equal (a closed form)
    lower, upper = st.ks_pvalue_bounds(np.array([500, 500]), *sizes)
    assert np.isnan(lower).all() and np.isnan(upper).all()


def test_smirnov_bounds_in_scipys_durbin_matrix_region_contain_scipys_value():
    n, m = 200_000, 50_000
    effective = round(n * m / (n + m))
    d = np.array([2e-4, 5e-4, 8e-4, 1.0e-3])
    numerators = np.round(d * n * m).astype(np.int64)
    lower, upper = st.ks_pvalue_bounds(numerators, np.full(4, n), np.full(4, m))
    scipy_p = stats.kstwo.sf(numerators / (n * m), effective)
    assert not np.isnan(lower).any()
    assert np.all(lower <= scipy_p) and np.all(scipy_p <= upper)
    assert np.all(lower > 0.9)  # far from any decision


def near_threshold_window(rng: np.random.Generator, rows: tuple[int, int], features: int):
    """Features shifted by random amounts, so that p-values spread across the
    Benjamini–Hochberg thresholds and some land between their bounds' decisions; the last
    five are AR(0.5), whose decision p-value is the effective-size one where that is larger.
    """
    history_rows = 3 * rows[0]  # the dependence is estimated from it, as the service does
    series = rng.normal(size=(history_rows + rows[0] + rows[1], features))
    for t in range(1, series.shape[0]):
        series[t, -5:] = 0.5 * series[t - 1, -5:] + np.sqrt(0.75) * series[t, -5:]
    history, reference = series[:history_rows], series[history_rows : history_rows + rows[0]]
    current = series[history_rows + rows[0] :]
    shift = rng.uniform(0.0, 1.6, size=features) * rng.binomial(1, 0.5, size=features)
    return history, reference, current + shift * np.sqrt(24 / rows[1])


@pytest.mark.parametrize("rows", [(168, 24), (600, 200), (2_000, 1_000)])
def test_the_verdict_with_bounds_is_the_verdict_with_every_pvalue_exact(rows, monkeypatch):
    rng = np.random.default_rng(sum(rows))
    names = [f"f{j}" for j in range(30)]
    refined = adjusted_bounds = 0
    for _ in range(40):
        history, reference, current = near_threshold_window(rng, rows, len(names))
        st.clear_exact_pvalue_cache()
        bounded = compare_features(reference, current, names, history=history)
        with monkeypatch.context() as patch:
            patch.setattr(st, "exact_where_undecided", all_exact)
            exact = compare_features(reference, current, names, history=history)
        assert exact.status == "success" and exact.message == ""
        assert bounded.drift_severity == exact.drift_severity
        decided = {
            item.feature: (item.ks_significant, item.drift_detected, item.level)
            for item in bounded.drift_results
        }
        assert decided == {
            item.feature: (item.ks_significant, item.drift_detected, item.level)
            for item in exact.drift_results
        }
        by_feature = {item.feature: item for item in exact.drift_results}
        for item in bounded.drift_results:  # reported as an upper bound: never below
            truth = by_feature[item.feature]
            assert item.ks_pvalue >= truth.ks_pvalue - 1e-12
            assert item.ks_pvalue_adjusted >= truth.ks_pvalue_adjusted - 1e-12
            if item.ks_pvalue_adjusted_exact:  # flagged exact: the all-exact value
                assert item.ks_pvalue_adjusted == pytest.approx(truth.ks_pvalue_adjusted, abs=1e-9)
            adjusted_bounds += not item.ks_pvalue_adjusted_exact
        refined += "exact for 0 of" not in bounded.message
    assert refined > 0  # some checks needed an exact p-value to decide
    assert adjusted_bounds > 0


def test_the_pvalues_computed_exactly_agree_with_scipy():
    rng = np.random.default_rng(11)
    _, reference, current = near_threshold_window(rng, (168, 24), 40)
    started = st.start_ks_two_sample(
        st.SortedSample.from_rows(reference), st.SortedSample.from_rows(current), bounds=True
    )()
    assert not started.exact.any()  # 168 = 7 x 24: every p-value starts as a bound
    threshold = np.median(started.pvalue)
    settled = st.exact_where_undecided(started, lambda p: p < threshold)
    assert 0 < settled.exact.sum() < settled.exact.size
    for j in np.flatnonzero(settled.exact):
        expected = stats.ks_2samp(reference[:, j], current[:, j]).pvalue
        assert abs(settled.pvalue[j] - expected) <= TOLERANCE
    assert np.all(settled.lower[settled.exact] == settled.pvalue[settled.exact])


def assert_each_flag_tells_a_bound_from_an_exact_pvalue(result, reference, current, names):
    """Every tested feature flagged as the message says, and its p-value, against scipy's
    exact one, an upper bound where flagged so and the same value where flagged exact."""
    tested = [item.feature for item in result.drift_results if item.tested]
    flagged = {item.feature for item in result.drift_results if not item.ks_pvalue_exact}
    assert flagged == bounded_in_message(result.message, tested)
    rows = {row["feature"]: row for row in result.to_dict()["drift_results"]}
    for item in result.drift_results:
        assert rows[item.feature]["ks_pvalue_exact"] is item.ks_pvalue_exact
        j = names.index(item.feature)
        scipy_p = stats.ks_2samp(reference[:, j], current[:, j], method="exact").pvalue
        if item.ks_pvalue_exact:
            assert abs(item.ks_pvalue - scipy_p) <= TOLERANCE
        else:
            assert item.ks_pvalue >= scipy_p - 1e-12


def test_each_feature_says_whether_its_pvalue_is_a_bound_as_the_message_does():
    names = [f"f{j}" for j in range(30)]
    mixed = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        history, reference, current = near_threshold_window(rng, (168, 24), len(names))
        result = compare_features(reference, current, names, history=history)
        assert_each_flag_tells_a_bound_from_an_exact_pvalue(result, reference, current, names)
        exact = sum(item.ks_pvalue_exact for item in result.drift_results)
        mixed += 0 < exact < len(names)
    assert mixed > 0  # some checks hold both bounds and exact p-values


def test_many_calm_features_and_a_few_shifted_ones_are_flagged_as_the_message_says():
    rng = np.random.default_rng(21)
    names = [f"f{j}" for j in range(60)]
    reference = rng.normal(size=(1_680, 60))  # 1,680 = 7 x 240: every p-value starts bounded
    current = rng.normal(size=(240, 60))
    current[:, :4] += 1.0
    result = compare_features(reference, current, names)
    assert set(result.drifted_features) == {"f0", "f1", "f2", "f3"}
    assert not all(item.ks_pvalue_exact for item in result.drift_results)
    assert_each_flag_tells_a_bound_from_an_exact_pvalue(result, reference, current, names)


def test_the_result_says_which_pvalues_are_exact():
    rng = np.random.default_rng(5)
    names = ["calm", "shifted", "quiet"]
    reference = rng.normal(size=(168, 3))
    current = rng.normal(size=(24, 3))
    current[:, 1] += 3.0
    result = compare_features(reference, current, names)
    assert result.message.startswith("ks_pvalue is exact for 0 of 3 tested features (none); a")
    assert "certified upper bound for the other 3" in result.message
    assert result.drifted_features == ["shifted"]

    all_exact_sizes = compare_features(reference, current[:23].copy(), names, min_samples=20)
    assert all_exact_sizes.message == ""  # 168 is no multiple of 23: exact everywhere


@pytest.mark.parametrize("segment", [2, 16, 64])
def test_the_sampled_search_finds_the_statistic_of_the_full_search(segment, monkeypatch):
    """Long samples search only the keys near the largest gap; the statistic is the same."""
    rng = np.random.default_rng(segment)
    reference = rng.normal(size=(30_000, 8))
    current = rng.normal(size=(12_000, 8)) + np.array([0, 0.01, 0.05, 0.3, 0, 0, 0, 0])
    reference[:, 4:6] = np.round(reference[:, 4:6], 1)  # ties within and across
    current[:, 4:6] = np.round(current[:, 4:6] * 1.1, 1)
    reference[:, 6] = rng.integers(0, 5, size=30_000)  # a handful of values
    current[:, 6] = rng.integers(0, 5, size=12_000)
    reference[rng.random(30_000) < 0.3, 7] = np.nan  # missing values: the row search
    monkeypatch.setattr(ks_statistic, "_SAMPLED_SEGMENT", segment)
    found = {}
    for least_keys in (1, 10**9):  # sampled, full search
        monkeypatch.setattr(ks_statistic, "_SAMPLED_MIN_KEYS", least_keys)
        found[least_keys] = st.ks_gap_numerators(
            st.SortedSample.from_rows(reference), st.SortedSample.from_rows(current)
        )
    np.testing.assert_array_equal(found[1], found[10**9])
    scipy_d = [stats.ks_2samp(reference[:, j][~np.isnan(reference[:, j])], current[:, j]).statistic
               for j in range(8)]  # fmt: skip
    counts = np.array([np.count_nonzero(~np.isnan(reference[:, j])) for j in range(8)])
    np.testing.assert_allclose(found[1] / (counts * 12_000.0), scipy_d, rtol=0, atol=1e-12)


def test_the_note_names_the_fewer_of_the_bounded_and_the_exact_features():
    names = ["a", "b", "c", "d"]
    bounded = np.array([True, False, False, False])
    assert st.bounded_pvalues_note(names, bounded, ~bounded) == (
        "ks_pvalue is a certified upper bound, within which the verdict is the same, for 1 of "
        "4 tested features (a); exact for the others"
    )
    assert st.bounded_pvalues_note(names, ~bounded, bounded).startswith(
        "ks_pvalue is exact for 1 of 4 tested features (a); a certified upper bound for the other 3"
    )
    assert st.bounded_pvalues_note(names, np.zeros(4, bool), np.ones(4, bool)) == ""


def test_an_untested_feature_reports_its_exact_pvalue():
    rng = np.random.default_rng(8)
    reference = rng.normal(size=(168, 2))
    current = rng.normal(size=(24, 2))
    reference[:8, 1] = np.nan  # 160 values against 20: 160 = 8 x 20 has a cheap bound
    current[:4, 1] = np.nan
    result = compare_features(reference, current, ["full", "short"])
    short = next(item for item in result.drift_results if item.feature == "short")
    assert not short.tested and short.ks_pvalue_exact
    expected = stats.ks_2samp(reference[8:, 1], current[4:, 1]).pvalue
    assert abs(short.ks_pvalue - expected) <= TOLERANCE


def test_a_file_comparison_says_in_its_notes_which_pvalues_are_bounds(tmp_path):
    rng = np.random.default_rng(9)
    paths = {}
    for side, rows in (("reference", 480), ("current", 96)):  # 480 = 5 x 96
        frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
        paths[side] = tmp_path / f"{side}.csv"
        frame.to_csv(paths[side], index=False)
    report = compare_files(paths["reference"], paths["current"])
    assert report.result.message
    assert report.result.message in report.notes
    assert report.to_dict()["message"] == report.result.message
