"""The population stability index on reference-quantile bins, and its no-drift level.

>>> import numpy as np
>>> from btcmlops.mlops.drift.statistics.samples import SortedSample
>>> reference = SortedSample.from_rows(np.arange(20.0)[:, None])
>>> edges = quantile_edges(reference, 4)
>>> edges.tolist(), bin_shares(reference, edges).tolist()
([[4.75, 9.5, 14.25]], [[0.25, 0.25, 0.25, 0.25]])
"""

from __future__ import annotations

import numpy as np

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.statistics.samples import SortedSample, count_at_most

# Empty PSI bins get this share, so one bin with no observations cannot make PSI infinite.
PSI_FLOOR = 1e-4


def quantile_edges(reference: SortedSample, bins: int) -> np.ndarray:
    """Interior bin edges (F, bins-1): the reference quantiles k/bins, k = 1..bins-1.

    Linear interpolation between order statistics (numpy's default). Repeated edges (a
    discrete feature) leave empty bins, which add nothing to PSI; see :func:`psi`.
    """
    if bins < 2:
        raise InvalidInputError(f"PSI needs at least 2 bins, got {bins}")
    counts = reference.counts
    probabilities = np.arange(1, bins) / bins
    position = (np.maximum(counts, 1) - 1)[:, None] * probabilities[None, :]
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(counts - 1, 0)[:, None])
    fraction = position - below
    values = reference.values
    rows = np.arange(values.shape[0])[:, None]
    low_value = values[rows, below]
    high_value = values[rows, above]
    edges = low_value + (high_value - low_value) * fraction
    edges = np.where(fraction == 0, low_value, edges)
    edges[counts == 0] = np.nan
    return edges


def bin_shares(sample: SortedSample, edges: np.ndarray) -> np.ndarray:
    """Share of each row's values in the bins (-inf, e1], (e1, e2], ..., (e_last, +inf)."""
    at_most = count_at_most(sample, edges)
    counts = np.concatenate([at_most, sample.counts[:, None]], axis=1) - np.concatenate(
        [np.zeros((at_most.shape[0], 1), dtype=np.int64), at_most], axis=1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / sample.counts[:, None]


def psi(reference_shares: np.ndarray, current_shares: np.ndarray, floor: float = PSI_FLOOR):
    """PSI = Σ_bins (c - r)·ln(c/r) with both shares floored at ``floor`` (Siddiqi 2006).

    A bin empty on both sides contributes (floor - floor)·ln 1 = 0, so repeated quantile
    edges are harmless.

    >>> float(psi(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]))[0])
    0.0
    """
    r = np.maximum(reference_shares, floor)
    c = np.maximum(current_shares, floor)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def psi_expected_under_no_drift(
    reference_shares: np.ndarray,
    current_size: np.ndarray,
    n_effective: np.ndarray,
    m_effective: np.ndarray,
    floor: float = PSI_FLOOR,
) -> np.ndarray:
    """Expected PSI when nothing drifted, for these sample sizes (one value per feature).

    With shares r_i from the reference, the current share of bin i varies by
    Var(c_i) = r_i(1 - r_i)·κ, κ = 1/m_eff + 1/n_eff (multinomial sampling of both windows,
    inflated by autocorrelation through the effective sizes). A second-order expansion of
    (c - r)·ln(c/r) gives E[PSI] ≈ (B' - 1)·κ with B' the bins of non-zero reference share:
    the chi-square approximation of Yurdakul (2018), since PSI/κ is asymptotically χ²(B'-1).

    Small windows (expected count per bin below 50) have empty current bins, whose floor
    the expansion ignores; there the expectation is summed exactly over a beta-binomial law
    for each bin count with mean m·r_i and the variance above.
    """
    r = np.asarray(reference_shares, dtype=float)
    m = np.asarray(current_size, dtype=np.int64)
    kappa = 1.0 / np.asarray(m_effective, dtype=float) + 1.0 / np.asarray(n_effective, float)
    occupied = np.count_nonzero(r > 0, axis=1)
    expected = np.maximum(occupied - 1, 0) * kappa
    positive = np.where(r > 0, r, np.inf).min(axis=1)
    small = (m > 0) & (np.asarray(m_effective, dtype=float) * positive < 50) & (m <= 20_000)
    if small.any():
        expected[small] = _psi_expected_exact(r[small], m[small], kappa[small], floor)
    return expected


def _psi_expected_exact(
    r: np.ndarray, m: np.ndarray, kappa: np.ndarray, floor: float
) -> np.ndarray:
    """E[PSI] with each bin count beta-binomial(m, s·r_i, s·(1-r_i)), s matching κ."""
    expected = np.empty(r.shape[0])
    for size in np.unique(m):  # rows grouped by current size (usually one group)
        rows = m == size
        expected[rows] = _psi_expected_exact_same_size(r[rows], int(size), kappa[rows], floor)
    return expected


def _psi_expected_exact_same_size(
    r: np.ndarray, m: int, kappa: np.ndarray, floor: float
) -> np.ndarray:
    # A bin's term depends on its share and the row's κ alone, and quantile bins give many
    # bins the same share (0.1 with 10 bins): each distinct (share, κ) is summed once.
    occupied = (r > 0) & (r < 1)
    # each (share, κ) pair as one complex number: np.unique orders those by real then
    # imaginary part, as it would the pairs along an axis, ten times faster
    pairs = r[occupied] + 1j * np.broadcast_to(kappa[:, None], r.shape)[occupied]
    distinct, back = np.unique(pairs, return_inverse=True)
    share, kappa = distinct.real, distinct.imag
    # Var(K/m) = r(1-r)(s+m)/(m(s+1)) = r(1-r)·κ  =>  s = m(1-κ)/(κm - 1)
    km = kappa * m
    with np.errstate(divide="ignore", invalid="ignore"):
        concentration = np.where(km > 1.0 + 1e-12, m * (1.0 - kappa) / (km - 1.0), 1e12)
    concentration = np.clip(concentration, 1e-6, 1e12)
    k = np.arange(m + 1, dtype=float)
    log_pmf = _beta_binomial_log_pmf(k, m, concentration * share, concentration * (1.0 - share))
    shares = np.maximum(k / m, floor)
    ref = np.maximum(share, floor)[:, None]
    contribution = (shares - ref) * np.log(shares / ref)
    with np.errstate(under="ignore"):
        weights = np.exp(log_pmf)
    per_bin = np.zeros(r.shape)
    per_bin[occupied] = np.sum(weights * contribution, axis=-1)[back.reshape(-1)]
    return per_bin.sum(axis=1)


def _beta_binomial_log_pmf(k: np.ndarray, m: int, alpha: np.ndarray, beta: np.ndarray):
    """log P(K = k), K ~ beta-binomial(m, α, β), for k = 0..m along a new last axis.

    log P(0) = Σ_{j<m} log((β + j)/(α + β + j)) and successive ratios
    P(k+1)/P(k) = (m-k)(k+α)/((k+1)(m-k-1+β)) avoid differences of huge log-gammas.
    """
    a = alpha[..., None]
    bb = beta[..., None]
    j = np.arange(m, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p0 = np.sum(np.log((bb + j) / (a + bb + j)), axis=-1, keepdims=True)
        ratio = np.log((m - j) * (j + a)) - np.log((j + 1.0) * (m - j - 1.0 + bb))
    steps = np.concatenate([log_p0, log_p0 + np.cumsum(ratio, axis=-1)], axis=-1)
    return np.where(np.isnan(steps), -np.inf, steps)
