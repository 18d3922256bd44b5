"""Statistical checks of feature drift: false alarms on data without drift (independent and
autocorrelated), power against real shifts, and the PSI noise level against simulation.

Deterministic seeds; each scenario simulates hundreds of full 106-feature checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from btcmlops.mlops.drift import statistics as st
from btcmlops.mlops.drift.feature_drift import compare_features, severity_at_least

FEATURES = 106
NAMES = [f"f{j:03d}" for j in range(FEATURES)]
SHIFTED = np.arange(0, FEATURES, 10)  # 11 features, about 10%
CHECKS = 200


def ar1(rng: np.random.Generator, rows: int, features: int, phi: float) -> np.ndarray:
    """Stationary AR(1) series with unit variance, one per column (rows in time order)."""
    shocks = rng.normal(size=(rows, features)) * math.sqrt(1.0 - phi**2)
    series = np.empty((rows, features))
    series[0] = rng.normal(size=features)
    for t in range(1, rows):
        series[t] = phi * series[t - 1] + shocks[t]
    return series


def independent_window(rng, reference_rows=168, current_rows=24):
    return rng.normal(size=(reference_rows, FEATURES)), rng.normal(size=(current_rows, FEATURES))


def autocorrelated_window(rng, reference_rows=168, current_rows=24):
    """A week of hourly AR(0.9) rows and the day that follows it: one series, split."""
    series = ar1(rng, reference_rows + current_rows, FEATURES, 0.9)
    return series[:reference_rows], series[reference_rows:]


def mixed_window(rng, reference_rows=168, current_rows=24):
    """Half the features AR(0.9), a quarter AR(0.5), a quarter independent."""
    series = ar1(rng, reference_rows + current_rows, FEATURES, 0.9)
    half, three_quarters = FEATURES // 2, 3 * FEATURES // 4
    series[:, half:three_quarters] = ar1(
        rng, reference_rows + current_rows, three_quarters - half, 0.5
    )
    series[:, three_quarters:] = rng.normal(
        size=(reference_rows + current_rows, FEATURES - three_quarters)
    )
    return series[:reference_rows], series[reference_rows:]


def severities(make_window, seed: int, checks: int = CHECKS) -> list[str | None]:
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(checks):
        reference, current = make_window(rng)
        found.append(compare_features(reference, current, NAMES).drift_severity)
    return found


def medium_or_above_rate(found: list[str | None]) -> float:
    return sum(severity_at_least(s, "medium") for s in found) / len(found)


# --- false alarms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_window", "seed"),
    [(independent_window, 101), (autocorrelated_window, 102), (mixed_window, 103)],
    ids=["independent", "ar1-0.9", "mixed"],
)
def test_no_drift_rarely_reaches_medium_severity(make_window, seed):
    found = severities(make_window, seed)
    assert medium_or_above_rate(found) <= 0.05
    # any severity at all (a BH rejection somewhere) stays near the FDR level too
    assert sum(s != "none" for s in found) / len(found) <= 0.08


def test_autocorrelation_would_cause_false_alarms_without_the_correction():
    """The AR(0.9) case passes because of the effective sample size, not by luck: raw KS
    p-values with the same BH procedure flag drift in most checks."""
    rng = np.random.default_rng(102)
    raw_alarms = corrected_alarms = 0
    for _ in range(100):
        reference, current = autocorrelated_window(rng)
        result = compare_features(reference, current, NAMES)
        raw = np.array([item.ks_pvalue for item in result.drift_results])
        raw_alarms += bool((st.benjamini_hochberg(raw) < 0.05).any())
        corrected_alarms += result.drift_severity != "none"
    assert raw_alarms >= 50
    assert corrected_alarms <= 5


# --- power -------------------------------------------------------------------------------


def detected_with_shifted_first(result) -> bool:
    """Severity at least low, the first-ranked feature is shifted, and at least 80% of the
    top-k features (k = number shifted) are shifted ones."""
    shifted = {NAMES[j] for j in SHIFTED}
    top = [item.feature for item in result.drift_results[: len(shifted)]]
    return (
        severity_at_least(result.drift_severity, "low")
        and top[0] in shifted
        and sum(name in shifted for name in top) >= 0.8 * len(shifted)
    )


def test_one_sd_shift_in_a_tenth_of_features_over_one_day_is_detected():
    rng = np.random.default_rng(201)
    hits = 0
    for _ in range(CHECKS):
        reference, current = independent_window(rng)
        current[:, SHIFTED] += 1.0
        hits += detected_with_shifted_first(compare_features(reference, current, NAMES))
    assert hits / CHECKS >= 0.90


def test_small_shift_over_large_windows_is_detected():
    rng = np.random.default_rng(202)
    checks = 20
    hits = 0
    for _ in range(checks):
        reference, current = independent_window(rng, 10_000, 2_000)
        current[:, SHIFTED] += 0.2
        hits += detected_with_shifted_first(compare_features(reference, current, NAMES))
    assert hits / checks >= 0.90


# --- PSI noise level ------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m"), [(168, 24), (168, 168), (500, 60), (10_000, 2_000)])
def test_expected_psi_matches_simulated_psi_without_drift(n, m):
    rng = np.random.default_rng(n + m)
    simulated, predicted = [], []
    for _ in range(60):
        reference = st.SortedSample.from_rows(rng.normal(size=(n, 50)))
        current = st.SortedSample.from_rows(rng.normal(size=(m, 50)))
        edges = st.quantile_edges(reference, 10)
        reference_shares = st.bin_shares(reference, edges)
        simulated.append(st.psi(reference_shares, st.bin_shares(current, edges)).mean())
        predicted.append(
            st.psi_expected_under_no_drift(
                reference_shares, current.counts, reference.counts, current.counts
            ).mean()
        )
    assert np.mean(predicted) == pytest.approx(np.mean(simulated), rel=0.05)


def test_chi_square_form_alone_underestimates_psi_noise_on_a_24_row_window():
    """Why the small-window noise level is summed exactly: empty bins and their floor."""
    rng = np.random.default_rng(7)
    simulated = []
    for _ in range(60):
        reference = st.SortedSample.from_rows(rng.normal(size=(168, 50)))
        current = st.SortedSample.from_rows(rng.normal(size=(24, 50)))
        edges = st.quantile_edges(reference, 10)
        shares = st.bin_shares(reference, edges)
        simulated.append(st.psi(shares, st.bin_shares(current, edges)).mean())
    chi_square = 9 * (1 / 168 + 1 / 24)
    assert np.mean(simulated) > 1.8 * chi_square


def test_psi_noise_level_under_autocorrelation_is_conservative():
    rng = np.random.default_rng(8)
    simulated, predicted = [], []
    for _ in range(40):
        reference_rows, current_rows = autocorrelated_window(rng)
        reference = st.SortedSample.from_rows(reference_rows)
        current = st.SortedSample.from_rows(current_rows)
        tau = st.autocorrelation_time(reference_rows.T)
        edges = st.quantile_edges(reference, 10)
        shares = st.bin_shares(reference, edges)
        simulated.append(st.psi(shares, st.bin_shares(current, edges)).mean())
        predicted.append(
            st.psi_expected_under_no_drift(
                shares,
                current.counts,
                st.effective_sample_size(reference.counts, tau),
                st.effective_sample_size(current.counts, tau),
            ).mean()
        )
    independent_level = 0.94  # the 168 x 24 expectation without autocorrelation
    assert np.mean(simulated) > 2 * independent_level  # autocorrelation really adds noise
    assert np.mean(predicted) >= np.mean(simulated)  # and the noise level covers it
