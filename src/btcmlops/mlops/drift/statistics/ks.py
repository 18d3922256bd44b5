"""The two-sample Kolmogorov–Smirnov test for every feature at once.

The statistic comes from one merge of the two sorted samples per block of features, or for
long samples from a search of the shorter side's values in the longer one; the p-value is
the one ``scipy.stats.ks_2samp`` gives, exact (:mod:`.ks_exact`) while both sides have at
most 10,000 observations and asymptotic (:mod:`.ks_asymptotic`) above.

>>> import numpy as np
>>> from btcmlops.mlops.drift.statistics.samples import SortedSample
>>> reference = SortedSample.from_rows(np.array([[1.0], [2.0], [3.0], [4.0]]))
>>> current = SortedSample.from_rows(np.array([[3.5], [5.0], [6.0]]))
>>> result = ks_two_sample(reference, current)
>>> float(result.statistic[0]), round(float(result.pvalue[0]), 6)
(0.75, 0.228571)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from btcmlops.mlops.drift.statistics.ks_asymptotic import smirnov_asymptotic
from btcmlops.mlops.drift.statistics.ks_exact import exact_pvalues_by_size
from btcmlops.mlops.drift.statistics.pool import WORKER_THREADS, run_all
from btcmlops.mlops.drift.statistics.samples import (
    BLOCK_VALUES,
    SortedSample,
    check_same_features,
)

# scipy.stats.ks_2samp(method="auto") computes the exact p-value while both samples have at
# most this many observations and uses Smirnov's asymptotic distribution above it.
MAX_EXACT_SIZE = 10_000
# start_ks_two_sample uses a background thread from this many observations on a side.
_BACKGROUND_MIN_SIZE = 1_000
# ks_gap_numerators searches instead of merging from this many values per feature (both
# sides): below it the per-feature calls cost more than the merge of all features at once.
_SEARCH_MIN_WIDTH = 2_000


@dataclass(frozen=True)
class KSResult:
    """Two-sample KS per feature; NaN where a side has no observations."""

    statistic: np.ndarray
    pvalue: np.ndarray
    reference_count: np.ndarray
    current_count: np.ndarray


def ks_gap_numerators(reference: SortedSample, current: SortedSample) -> np.ndarray:
    """``max_x |m·#{ref <= x} - n·#{cur <= x}|`` per feature (int64), so that D = value/(n·m).

    Both ECDFs are evaluated after every copy of a tied value, as ``scipy.stats.ks_2samp``
    does with ``searchsorted(side="right")``. Short rows are merged, a block of features at
    a time (:func:`_gap_numerators_block`); long ones search the shorter side's values in
    the longer one (:func:`_searched_gap`), which reads the longer side only where it is
    probed. Large samples run on the two worker threads (numpy releases the GIL in sorts,
    searches and array passes).
    """
    check_same_features(reference, current)
    features = reference.feature_count
    numerators = np.zeros(features, dtype=np.int64)
    width = reference.values.shape[1] + current.values.shape[1]
    threads = WORKER_THREADS if features * width >= BLOCK_VALUES // 8 else 1  # else: no gain
    n_all = reference.counts
    m_all = current.counts
    searched = width >= _SEARCH_MIN_WIDTH
    block = -(-features // threads) if searched else BLOCK_VALUES // max(width, 1)
    block = max(1, min(block, -(-features // threads)))

    def solve(start: int) -> None:
        rows = slice(start, min(start + block, features))
        if not searched:
            numerators[rows] = _gap_numerators_block(
                reference.values[rows], current.values[rows], n_all[rows], m_all[rows]
            )
            return
        for j in range(rows.start, rows.stop):
            numerators[j] = _searched_gap(
                reference.values[j, : n_all[j]], current.values[j, : m_all[j]]
            )

    run_all(solve, range(0, features, block))
    return numerators


def _searched_gap(reference: np.ndarray, current: np.ndarray) -> int:
    """The gap numerator of one feature from its two sorted samples (no missing values).

    With K the values of the shorter side (the keys, sorted) and T those of the longer
    (the table), |m·F_ref - n·F_cur| = |K·F_table - T·F_keys|. Between two consecutive
    distinct keys F_keys is constant and F_table rises, so the gap over the table's values
    there is largest at one end: just below the upper key (F_table = #table < key), or at
    the lower key itself, which is evaluated anyway. So the gap is the largest of
    |K·#(table <= k) - T·#(keys <= k)| at each distinct key k and
    |K·#(table < k) - T·#(keys < k)| just below it; above the largest key the gap falls to
    0 and is no larger than at that key.
    """
    if reference.size == 0 or current.size == 0:
        return 0
    keys, table = (current, reference) if current.size <= reference.size else (reference, current)
    count, total = keys.size, table.size
    at_most = np.searchsorted(table, keys, side="right")
    # #(table < k) differs from #(table <= k) only for keys that occur in the table
    below = at_most.copy()
    shared = np.flatnonzero(at_most > 0)
    shared = shared[table[at_most[shared] - 1] == keys[shared]]
    below[shared] = np.searchsorted(table, keys[shared], side="left")
    seen = np.arange(1, count + 1, dtype=np.int64)
    changes = keys[1:] != keys[:-1]
    last_of_key = np.append(changes, True)
    first_of_key = np.insert(changes, 0, True)
    at_key = np.abs(count * at_most[last_of_key] - total * seen[last_of_key])
    below_key = np.abs(count * below[first_of_key] - total * (seen[first_of_key] - 1))
    return int(max(at_key.max(), below_key.max()))


def _gap_numerators_block(
    reference: np.ndarray, current: np.ndarray, n: np.ndarray, m: np.ndarray
) -> np.ndarray:
    if reference.shape[1] == 0 or current.shape[1] == 0:
        return np.zeros(reference.shape[0], dtype=np.int64)
    stacked = np.concatenate([reference, current], axis=1)
    order = np.argsort(stacked, axis=1, kind="stable")
    merged = np.take_along_axis(stacked, order, axis=1)
    del stacked
    reference_seen = np.cumsum(order < reference.shape[1], axis=1, dtype=np.int64)
    del order
    seen = np.arange(1, merged.shape[1] + 1, dtype=np.int64)
    # m·ref_seen - n·cur_seen with cur_seen = seen - ref_seen, in place
    gap = reference_seen
    gap *= (m + n)[:, None]
    gap -= seen[None, :] * n[:, None]
    last_of_value = np.empty(merged.shape, dtype=bool)
    np.not_equal(merged[:, 1:], merged[:, :-1], out=last_of_value[:, :-1])
    last_of_value[:, -1] = True
    if (n + m < merged.shape[1]).any():  # missing values sort last: not observations
        last_of_value &= seen[None, :] <= (n + m)[:, None]
    np.abs(gap, out=gap)
    gap *= last_of_value
    return gap.max(axis=1)


def start_ks_two_sample(
    reference: SortedSample, current: SortedSample, *, background: bool = True
) -> Callable[[], KSResult]:
    """:func:`ks_two_sample` begun: the statistic now, the p-values on a background thread.

    Returns a function that waits for the result (and raises what the computation raised).
    Exact p-values of large samples take most of a check's time on the worker pool; the
    caller goes on with PSI and moments meanwhile. Small samples (and ``background=False``)
    are done at once.
    """
    numerators = ks_gap_numerators(reference, current)
    reference_count, current_count = reference.counts.copy(), current.counts.copy()

    def compute() -> KSResult:
        statistic, pvalue = ks_pvalues(numerators, reference_count, current_count)
        return KSResult(statistic, pvalue, reference_count, current_count)

    sizes = np.concatenate([reference_count, current_count])
    if not background or sizes.size == 0 or int(sizes.max()) < _BACKGROUND_MIN_SIZE:
        done = compute()
        return lambda: done
    future: Future[KSResult] = Future()

    def run() -> None:
        try:
            future.set_result(compute())
        except BaseException as exc:  # handed to the caller by future.result()
            future.set_exception(exc)

    threading.Thread(target=run, name="drift-ks", daemon=True).start()
    return future.result


def ks_two_sample(reference: SortedSample, current: SortedSample) -> KSResult:
    """Two-sided two-sample KS test for every feature, as ``scipy.stats.ks_2samp`` computes it.

    Missing values are dropped per feature. The p-value is exact (lattice-path count) while
    both sides have at most 10,000 observations and asymptotic above, like scipy's
    ``method="auto"``; statistic and p-value agree with scipy to 1e-9 (tests/test_drift_
    statistics.py), see :func:`ks_pvalues` for the one refinement in the far tail.
    """
    return start_ks_two_sample(reference, current, background=False)()


def ks_pvalues(
    numerators: np.ndarray, n: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Statistic and two-sided p-value from gap numerators and sample sizes, per feature.

    Exact mode (both sizes <= 10,000): with g = gcd(n, m) and lcm = n·m/g the statistic is
    h/lcm for an integer h, and the p-value depends on (n, m, h) only, so it is computed once
    per distinct triple. Equal sizes use the alternating binomial sum of Gnedenko & Korolyuk
    (1951); unequal sizes count the lattice paths that stay inside the band
    |i/n - j/m| < h/lcm (Hodges 1958), vectorised over all distinct h. Asymptotic mode is
    scipy's ``kstwo.sf(D, round(n·m/(n+m)))``; its one-sided Smirnov branch is summed here
    for all features at once (:func:`_smirnov_one_sided`).

    Far tail: when the exact p-value is provably below 1e-10 (a DKW bound or the exact value
    at a smaller statistic, the p-value being monotone) the asymptotic value capped by that
    bound is returned; it differs from the exact one by less than 1e-10.
    """
    numerators = np.asarray(numerators, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    statistic = np.full(numerators.shape, np.nan)
    pvalue = np.full(numerators.shape, np.nan)
    testable = (n > 0) & (m > 0)
    exact = testable & (np.maximum(n, m) <= MAX_EXACT_SIZE)
    asymptotic = testable & ~exact

    if asymptotic.any():
        na, ma = n[asymptotic].astype(float), m[asymptotic].astype(float)
        d = numerators[asymptotic] / (na * ma)
        statistic[asymptotic] = d
        pvalue[asymptotic] = smirnov_asymptotic(d, na, ma)

    if exact.any():
        g = np.gcd(n[exact], m[exact])
        h = numerators[exact] // g
        lcm = (n[exact] // g) * m[exact]
        statistic[exact] = h / lcm
        pvalue[exact] = exact_pvalues_by_size(n[exact], m[exact], h)
    return statistic, np.clip(pvalue, 0.0, 1.0)
