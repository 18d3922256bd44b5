"""Certified bounds of two-sample KS p-values, where a bound costs far less than the value.

A check needs a KS p-value exactly only where its verdict could change with it (a
Benjamini–Hochberg threshold lies between the bounds); everywhere else a certified interval
decides as well (``docs/drift.md``, "Exact where the verdict needs it"). Two cases have a
cheap interval around the value :func:`~.ks.ks_pvalues` would give:

- **One size divides the other** (exact mode, L = a·S): with P₁ = P(max X >= h) the
  one-sided exceedance of the hitting-time sum (:mod:`.ks_exact`), the two-sided p-value
  is 2·P₁ - P(both sides), so P₁ <= p <= min(1, 2·P₁) (each side alone is at most the union
  of both, and the union is at most their sum). The exact value needs the band recursion,
  whose cost grows with the cube of the statistic.
- **Smirnov's law in scipy's Durbin-matrix region** (asymptotic mode, N = round(n·m/(n+m))
  above 140, N·d^1.5 <= 1.4): scipy evaluates P(D_N >= d) by a matrix power of order about
  N·d (hundreds of milliseconds at N = 40,000); P(D_N >= d) >= P(D⁺_N >= d), the one-sided
  Birnbaum–Tingey sum, and there d is so small that this lower bound is above 0.9.

Elsewhere no bound is given (NaN): the p-value is cheap or needed anyway.

>>> import numpy as np
>>> from btcmlops.mlops.drift.statistics.ks_exact import exact_two_sided_pvalues
>>> lower, upper = ks_pvalue_bounds(np.array([30 * 24]), np.array([168]), np.array([24]))
>>> exact = exact_two_sided_pvalues(168, 24, np.array([30]))  # D = 30/168
>>> [round(float(value), 4) for value in (lower[0], exact[0], upper[0])]
[0.2412, 0.4763, 0.4824]
"""

from __future__ import annotations

import numpy as np

from btcmlops.mlops.drift.statistics.ks_asymptotic import smirnov_one_sided
from btcmlops.mlops.drift.statistics.ks_exact import one_sided_exceedance

# ks.MAX_EXACT_SIZE, repeated to keep this module below ks in the import order
_MAX_EXACT_SIZE = 10_000


def ks_pvalue_bounds(
    numerators: np.ndarray, n: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Certified (lower, upper) bounds of each feature's KS p-value; NaN where none is cheap.

    ``numerators`` are :func:`~.ks.ks_gap_numerators` (D = numerator/(n·m)), ``n`` and ``m``
    the observed sizes, per feature.
    """
    numerators = np.asarray(numerators, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    lower = np.full(numerators.shape, np.nan)
    upper = np.full(numerators.shape, np.nan)
    large, small = np.maximum(n, m), np.minimum(n, m)
    testable = small > 0
    exact_mode = testable & (large <= _MAX_EXACT_SIZE)
    divisible = exact_mode & (large != small) & (large % np.where(testable, small, 1) == 0)
    for size_large, size_small in _distinct_pairs(large[divisible], small[divisible]):
        members = divisible & (large == size_large) & (small == size_small)
        # small divides large: gcd = small, lcm = large, D = h/large with h = numerator/small
        h = numerators[members] // size_small
        one_sided = np.ones(h.shape)
        positive = h > 0
        if positive.any():
            distinct, back = np.unique(h[positive], return_inverse=True)
            exceedance = one_sided_exceedance(size_large, size_small, distinct)
            one_sided[positive] = exceedance[back.reshape(-1)]
        lower[members] = np.where(positive, one_sided, 1.0)
        upper[members] = np.where(positive, np.minimum(1.0, 2.0 * one_sided), 1.0)

    asymptotic = testable & ~exact_mode
    if asymptotic.any():
        effective = np.round(n * m / np.maximum(n + m, 1)).astype(float)
        d = numerators / np.maximum(n * m, 1).astype(float)
        durbin = (
            asymptotic
            & (effective > 140)
            & (effective * d > 1.0)
            & (d < 0.5)
            & (effective * d**2 < 2.2)
            & (effective <= 100_000)
            & (effective * d**1.5 <= 1.4)
        )
        if durbin.any():
            lower[durbin] = smirnov_one_sided(effective[durbin], d[durbin])
            upper[durbin] = 1.0
    return lower, upper


def _distinct_pairs(large: np.ndarray, small: np.ndarray) -> list[tuple[int, int]]:
    # a set of a hundred pairs: cheaper than np.unique along an axis
    return sorted(set(zip(large.tolist(), small.tolist(), strict=True)))
