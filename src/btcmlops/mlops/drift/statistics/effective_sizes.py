"""Effective sample sizes of time-ordered features.

The integrated autocorrelation time τ of a series, the dependence time that the KS and PSI
tests see (:func:`dependence_time`), and the effective size n_eff = n/τ, the number of
independent observations that would estimate a mean as well (Sokal 1997).

>>> import numpy as np
>>> effective_sample_size(np.array([168, 24]), np.array([4.0, 1.0])).tolist()
[42.0, 24.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The dependence gate (see dependence_time): z of the first lags' autocorrelations above
# which a feature's dependence is taken as real. Each of the gate's four looks is held at
# 3.85, so that together they pass on independent data about as rarely as one normal z
# passes 3.5 (2.3 in 10,000); REFUSAL_GATE_Z is the stricter level at which a short reference is
# refused for a dependence it cannot estimate (docs/drift.md).
GATE_Z = 3.85
REFUSAL_GATE_Z = 6.0
# The gate sums the autocorrelations at lags 1..min(GATE_LAGS, n // 8).
GATE_LAGS = 10
# The skewness of z_L on independent series is about GATE_SKEW·√(L/n) (measured on normal
# series of 24 to 2,048 rows: 2.1 to 2.8); a gate's threshold for z_L is raised to match.
GATE_SKEW = 2.7
# The estimates read the most recent this many values of each series, no further back.
DEPENDENCE_ROWS = 2_048


def autocorrelation_time(
    columns: np.ndarray, *, max_lag: int | None = None, max_rows: int = DEPENDENCE_ROWS
) -> np.ndarray:
    """Integrated autocorrelation time τ = 1 + 2 Σ_k ρ_k of each row of a time-ordered (F, n)
    array, by Geyer's initial positive sequence estimator (Geyer 1992, "Practical Markov
    chain Monte Carlo", Statistical Science 7(4), §3.3).

    The autocorrelations come from one FFT per feature (Wiener-Khinchin) over the most
    recent ``max_rows`` values (NaN counted as the mean). Pairs Γ_m = ρ_{2m} + ρ_{2m+1} are
    summed while they stay positive, up to lag ``max_lag`` (default n/4), and
    τ = -1 + 2 Σ Γ_m, at least 1.

    Why not the lag-1 AR(1) rule: an hourly sentiment feature is noise around a mood that
    persists for a day or more, so ρ_1 is moderate (≈ 0.6) while ρ_k stays positive for 20+
    lags; the AR(1) rule then counts 4-6 times too many independent observations. For a
    true AR(1) both give τ = (1 + ρ)/(1 - ρ).

    >>> rng = np.random.default_rng(3)
    >>> noise = rng.normal(size=(1, 20_000))
    >>> ar = np.empty_like(noise); ar[0, 0] = noise[0, 0]
    >>> for t in range(1, noise.shape[1]): ar[0, t] = 0.9 * ar[0, t - 1] + noise[0, t]
    >>> 17 < float(autocorrelation_time(ar, max_rows=20_000)[0]) < 21   # (1 + 0.9)/(1 - 0.9)
    True
    >>> float(autocorrelation_time(noise)[0]) < 1.3
    True
    """
    values = np.asarray(columns, dtype=float)[:, -max_rows:]
    features, n = values.shape
    if n < 8:
        return np.ones(features)
    rho, counts = _autocorrelations(values)
    tau = _geyer_time(rho, max_lag)
    tau = np.where((counts >= 8) & np.isfinite(rho[:, 0]), tau, 1.0)
    return np.maximum(tau, 1.0)


def dependence_time(
    columns: np.ndarray, gate_z: float = GATE_Z, *, max_rows: int = DEPENDENCE_ROWS
) -> np.ndarray:
    """The dependence time of each row of a time-ordered (F, n) array, as KS and PSI see it.

    KS and PSI are functions of indicator series 1{x_t <= a}, whose persistence the linear
    autocorrelation of x misses: hourly returns with volatility clustering have ρ_k ≈ 0, but
    their large moves come in runs, so the indicators of the tails and the ranks of |x| are
    persistent. τ is therefore the larger of two integrated autocorrelation times (Geyer's
    initial positive sequence, :func:`autocorrelation_time`): of the ranks of x (the level)
    and of the ranks of |x - median(x)| (the spread).

    Each of the two counts only where the evidence for positive dependence is strong, the
    gate z_1 > ``gate_z`` or z_L > t_L with

        z_L = (Σ_{k=1..L} ρ̂_k + L/n)·√(n/L),   L = min(10, n // 8),

    and z_1 the same at L = 1; both are about standard normal for independent values (ρ̂_k
    has mean -1/n and variance 1/n, nearly uncorrelated across k; Bartlett 1946). z_L sees
    weak memory spread over many lags (volatility clustering), z_1 strong short memory,
    which z_L alone dilutes with noise from the lags beyond it (it missed 10% of AR(0.5)
    series of 504 rows; with z_1, 0.9% at 168 rows and none at 504). Otherwise that series
    gives τ = 1. Why the gate: without it, τ̂ of independent data has a median of 1.06 and a
    90th percentile of 1.48, which switches the dependence correction on and cost about a
    third of the power for nothing. z_L is right-skewed on short series, so its threshold
    t_L is the gate raised by a Cornish-Fisher term (:func:`_lags_threshold`). On 168-row
    independent normal series the gate fires for 0.016% of them (16 of 100,000, seed 12);
    the first gate, max(z_1, z_L) > 3.5, fired for 0.6%, mostly through z_L's skew.

    A gated τ is divided by (1 - 2L/n), a small-sample correction (the estimated mean
    absorbs part of the autocorrelation of a short series), and is at least 1. NaN is
    skipped in the ranks and counted as the mean in the autocorrelations; ±inf are ranked
    as the largest and smallest values. The most recent ``max_rows`` values are used.

    >>> rng = np.random.default_rng(1)
    >>> shocks = rng.normal(size=(2, 2_000))
    >>> volatility = np.exp(np.cumsum(rng.normal(scale=0.02, size=2_000)))  # slow, persistent
    >>> returns = shocks * volatility  # no linear autocorrelation, clustered volatility
    >>> returns[0] = shocks[0]  # the first row independent
    >>> tau = dependence_time(returns)
    >>> float(tau[0]), bool(tau[1] > 5)
    (1.0, True)
    """
    return dependence_times(columns, (gate_z,), max_rows=max_rows)[0]


def dependence_times(
    columns: np.ndarray,
    gates_z: Sequence[float],
    *,
    skew_adjusted: Sequence[bool] | None = None,
    max_rows: int = DEPENDENCE_ROWS,
) -> np.ndarray:
    """:func:`dependence_time` at several gates from one pass of autocorrelations: (G, F).

    ``skew_adjusted`` says for each gate whether z_L's threshold is raised for its skewness
    (the default, as :func:`dependence_time` does); a gate used as a raw level, such as the
    refusal gate that simulations set, passes False.

    >>> rng = np.random.default_rng(2)
    >>> dependence_times(rng.normal(size=(3, 168)), (GATE_Z, REFUSAL_GATE_Z)).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    values = np.asarray(columns, dtype=float)[:, -max_rows:]
    gates = np.asarray(gates_z, dtype=float).reshape(-1)
    features, n = values.shape
    if n < 8:
        return np.ones((gates.size, features))
    centred, counts = _centred(_level_and_spread_ranks(values))
    # The gate needs only the first GATE_LAGS autocorrelations, summed directly; the whole
    # sequence (one FFT per row) is computed only for the rows that pass the lowest gate,
    # which on most features is none of them.
    head_rho = _first_autocorrelations(centred, GATE_LAGS)
    lags = np.minimum(GATE_LAGS, counts // 8)
    usable = (lags >= 1) & np.isfinite(head_rho[:, 0])
    lags = np.maximum(lags, 1)
    observed = np.maximum(counts, 1)
    first = np.nancumsum(head_rho[:, 1 : GATE_LAGS + 1], axis=1)
    head = first[np.arange(first.shape[0]), np.minimum(lags, first.shape[1]) - 1]
    z_lags = (head + lags / observed) * np.sqrt(observed / lags)
    z_first = (head_rho[:, 1] + 1.0 / observed) * np.sqrt(observed)
    adjusted = (
        np.ones(gates.size, dtype=bool)
        if skew_adjusted is None
        else np.asarray(skew_adjusted, dtype=bool)
    )
    gated = usable[None, :] & (
        (z_first[None, :] > gates[:, None])
        | (z_lags[None, :] > _lags_threshold(gates, adjusted, lags, observed))
    )
    tau = np.ones((gates.size, centred.shape[0]))
    candidates = np.flatnonzero(gated.any(axis=0))
    if candidates.size:
        rho = _autocorrelations_of_centred(centred[candidates])
        ratio = 1.0 - 2.0 * lags[candidates] / observed[candidates]
        corrected = np.maximum(_geyer_time(rho, None) / ratio, 1.0)
        tau[:, candidates] = np.where(gated[:, candidates], corrected[None, :], 1.0)
    return tau.reshape(gates.size, 2, features).max(axis=1)


def _lags_threshold(
    gates: np.ndarray, adjusted: np.ndarray, lags: np.ndarray, observed: np.ndarray
) -> np.ndarray:
    """z_L's threshold for each gate (rows) and series (columns): the gate, raised where
    adjusted by the Cornish-Fisher term γ/6·(g² - 1) for z_L's skewness γ on independent
    series, so that z_L passes a gate about as rarely as a normal variable would.

    Without it, z_L passed 3.5 on 0.2% of independent 168-row series instead of the
    normal 0.02% (skewness 0.68 there); raised to 4.6 it passes on 0.03%. The skewness
    γ = GATE_SKEW·√(L/n) is a fit to simulated independent series, not a derivation.
    """
    skewness = GATE_SKEW * np.sqrt(lags / observed)
    raised = gates[:, None] + skewness[None, :] / 6.0 * (gates[:, None] ** 2 - 1.0)
    return np.where(adjusted[:, None], raised, gates[:, None])


def effective_sample_size(size: np.ndarray, autocorrelation_time: np.ndarray) -> np.ndarray:
    """n_eff = n / τ: the sample size that gives a mean the same variance (Sokal 1997;
    for AR(1) this is the Bayley & Hammersley 1946 rule n (1 - ρ)/(1 + ρ)).

    τ below 1 or unknown never inflates the size; n_eff is clipped to [1, n].
    """
    size = np.asarray(size, dtype=float)
    tau = np.maximum(np.nan_to_num(np.asarray(autocorrelation_time, dtype=float), nan=1.0), 1.0)
    return np.clip(size / tau, np.minimum(size, 1.0), size)


def _level_and_spread_ranks(values: np.ndarray) -> np.ndarray:
    """The ranks of each row's values (the level) stacked over the ranks of their distances
    from the row's median (the spread): a (2F, n) array, average ranks for ties, NaN where a
    value is missing.

    Each row the same as ``scipy.stats.rankdata(row, nan_policy="omit")`` of the values and
    of ``|values - median|``, for a third of the work: one sort of the values gives the
    level's ranks and the median, and the distances, taken in that sorted order, fall and
    then rise (two sorted runs), which a stable sort merges in one pass. Indexes are flat
    (row offset added), as numpy gathers and scatters those several times faster than
    along an axis.
    """
    values = np.ascontiguousarray(values, dtype=float)
    features, n = values.shape
    ranks = np.empty((2 * features, n))
    if not n:
        return ranks
    offsets = (np.arange(features, dtype=np.intp) * n)[:, None]
    positions = np.argsort(values, axis=1)  # NaN last
    positions += offsets
    positions = positions.reshape(-1)
    ordered = values.reshape(-1)[positions].reshape(features, n)
    ordinal = np.broadcast_to(np.arange(1.0, n + 1.0), (features, n)).reshape(-1)
    level = ranks[:features].reshape(-1)
    level[positions] = ordinal
    _tied_and_missing(level, ordered, positions)

    counts = n - np.isnan(ordered).sum(axis=1)
    rows = np.arange(features)
    lower = ordered[rows, np.maximum(counts - 1, 0) // 2]
    upper = ordered[rows, np.maximum(counts, 1) // 2 - (counts == 0)]
    median = np.where(counts > 0, (lower + upper) / 2.0, np.nan)
    with np.errstate(invalid="ignore"):
        distances = np.abs(np.subtract(ordered, median[:, None], out=ordered), out=ordered)
    merge = np.argsort(distances, axis=1, kind="stable")
    merge += offsets
    merge = merge.reshape(-1)
    spread = ranks[features:].reshape(-1)
    positions = positions[merge]
    spread[positions] = ordinal
    _tied_and_missing(spread, distances.reshape(-1)[merge].reshape(features, n), positions)
    return ranks


def _tied_and_missing(ranks: np.ndarray, ordered: np.ndarray, positions: np.ndarray) -> None:
    """Correct ordinal ranks (``ranks``, flat, written at ``positions`` from rows sorted as
    ``ordered``, NaN last) in place: each run of equal values gets its mean rank, and a
    missing value NaN."""
    n = ordered.shape[1]
    equal_to_next = ordered[:, 1:] == ordered[:, :-1]
    row, pair = np.nonzero(equal_to_next)
    if row.size:
        last_pair = n - 2
        starts = (pair == 0) | ~equal_to_next[row, np.maximum(pair - 1, 0)]
        ends = (pair == last_pair) | ~equal_to_next[row, np.minimum(pair + 1, last_pair)]
        first, last = pair[starts], pair[ends] + 1  # each run's first and last position
        length = last - first + 1
        offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        where = np.repeat(row[starts] * n + first, length) + offset
        ranks[positions[where]] = np.repeat((first + last) / 2.0 + 1.0, length)
    if np.isnan(ordered[:, -1]).any():
        ranks[positions[np.flatnonzero(np.isnan(ordered))]] = np.nan


def _autocorrelations(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ρ̂_k, k = 0..n-1, of each row of a time-ordered (F, n) array, and its observed counts.

    One zero-padded FFT per row (Wiener-Khinchin, no circular wrap-around); a missing value
    counts as the row's mean, and a row with ±inf or without spread gets NaN.
    """
    centred, counts = _centred(values)
    return _autocorrelations_of_centred(centred), counts


def _centred(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row minus its mean, missing values (and ±inf) as 0; and the observed counts."""
    n = values.shape[1]
    missing = np.isnan(values)
    complete = not missing.any()  # the usual case: no masking passes
    counts = np.full(values.shape[0], n, dtype=np.int64)
    if not complete:
        counts -= missing.sum(axis=1)
    centred = values.copy() if complete else np.where(missing, 0.0, values)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = centred.sum(axis=1) / np.maximum(counts, 1)
        centred -= means[:, None]
    if not complete:
        centred[missing] = 0.0
    centred[~np.isfinite(means)] = 0.0  # ±inf in a row makes its mean infinite or NaN
    return centred, counts


def _autocorrelations_of_centred(centred: np.ndarray) -> np.ndarray:
    """ρ̂_k, k = 0..n-1, of each row of centred values, by one zero-padded FFT per row."""
    n = centred.shape[1]
    size = 1 << int(2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = autocovariance / autocovariance[:, :1]
    rho[autocovariance[:, 0] <= 0] = np.nan
    return rho


def _first_autocorrelations(centred: np.ndarray, max_lag: int) -> np.ndarray:
    """ρ̂_k, k = 0..min(max_lag, n-1), of each row of centred values, summed lag by lag.

    The same values as :func:`_autocorrelations_of_centred` up to rounding, for far less
    work when only the first lags are needed.
    """
    n = centred.shape[1]
    autocovariance = np.empty((centred.shape[0], min(max_lag, n - 1) + 1))
    for lag in range(autocovariance.shape[1]):
        autocovariance[:, lag] = np.einsum("ij,ij->i", centred[:, lag:], centred[:, : n - lag])
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = autocovariance / autocovariance[:, :1]
    rho[autocovariance[:, 0] <= 0] = np.nan
    return rho


def _geyer_time(rho: np.ndarray, max_lag: int | None) -> np.ndarray:
    """τ = -1 + 2 Σ Γ_m over the initial positive sequence Γ_m = ρ_{2m} + ρ_{2m+1}, up to lag
    ``max_lag`` (default n/4), per row (Geyer 1992, §3.3)."""
    n = rho.shape[1]
    lags = max(2, min(max_lag or n // 4, n - 1))
    pairs = lags // 2
    gamma = rho[:, 0 : 2 * pairs : 2] + rho[:, 1 : 2 * pairs : 2]  # Γ_m, m = 0 .. pairs-1
    positive = np.cumprod(np.nan_to_num(gamma, nan=-1.0) > 0, axis=1).astype(bool)
    return -1.0 + 2.0 * np.where(positive, gamma, 0.0).sum(axis=1)
