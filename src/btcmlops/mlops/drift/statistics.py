"""Drift statistics computed for every feature at once.

Two-sample Kolmogorov–Smirnov (statistic and p-value matching ``scipy.stats.ks_2samp``),
the population stability index (PSI) on reference-quantile bins, Benjamini–Hochberg
adjustment, the expected PSI under no drift, and effective sample sizes for autocorrelated
series. ``docs/drift.md`` gives the formulas and the papers behind them.

Layout: a *sample* holds F features as a feature-major 2-D array, one row per feature, each
row sorted ascending with missing values (NaN) last; ``counts[j]`` says how many leading
entries of row ``j`` are observed. Every function works on all rows with array operations;
where a loop remains it runs over blocks of rows, distinct sample sizes or lattice columns,
never over features one at a time.

>>> import numpy as np
>>> reference = SortedSample.from_rows(np.array([[1.0], [2.0], [3.0], [4.0]]))
>>> current = SortedSample.from_rows(np.array([[3.5], [5.0], [6.0]]))
>>> result = ks_two_sample(reference, current)
>>> float(result.statistic[0]), round(float(result.pvalue[0]), 6)
(0.75, 0.228571)
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from threadpoolctl import ThreadpoolController

from btcmlops.errors import InvalidInputError

# scipy.stats.ks_2samp(method="auto") computes the exact p-value while both samples have at
# most this many observations and uses Smirnov's asymptotic distribution above it.
MAX_EXACT_SIZE = 10_000

# Exact p-values below this level are not worth their cost (the band recursion grows with the
# statistic); they are reported from the asymptotic formula, capped so that they stay within
# this distance of the exact value.
TAIL_PVALUE = 1e-10
# Divisible sizes (_divisible_sizes_pvalues): where twice the one-sided tail is at most this,
# the one-sided closed form replaces the band recursion once P(both sides) is shown to be
# below _BOTH_TOLERANCE.
_UNION_SHORTCUT_LEVEL = 3e-3
_BOTH_TOLERANCE = 3e-11

# Empty PSI bins get this share, so one bin with no observations cannot make PSI infinite.
PSI_FLOOR = 1e-4

# Temporary arrays of the vectorised KS statistic are built for blocks of about this many
# values (rows x observations), which bounds peak memory on large samples.
_BLOCK_VALUES = 1 << 21

_BLAS = ThreadpoolController()
_EXACT_THREADS = max(1, min(2, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
# start_ks_two_sample uses a background thread from this many observations on a side.
_BACKGROUND_MIN_SIZE = 1_000
# SortedSample sorts on both worker threads from this many values.
_PARALLEL_SORT_VALUES = 1 << 18


def _run_all(task, items) -> None:  # type: ignore[no-untyped-def]
    """``task(item)`` for every item, on the module's two worker threads.

    One pool for the process, created on first use (starting threads costs about 0.4 ms
    each, more than a small check's whole KS step); a forked child starts a new one.
    """
    global _POOL
    items = list(items)
    if len(items) < 2 or _EXACT_THREADS < 2:
        for item in items:
            task(item)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_EXACT_THREADS, thread_name_prefix="drift")
    list(_POOL.map(task, items))


def _forget_pool() -> None:
    global _POOL
    _POOL = None  # the parent's threads do not exist in a forked child


os.register_at_fork(after_in_child=_forget_pool)


@dataclass(frozen=True)
class SortedSample:
    """Observations of F features: ``values`` is (F, n), each row ascending with NaN last."""

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> SortedSample:
        """From an (n observations x F features) array; NaN marks a missing value."""
        matrix = np.asarray(rows, dtype=float)
        if matrix.ndim != 2:
            raise InvalidInputError(
                f"expected a 2-D array (rows x features), got {matrix.ndim} dimension(s)"
            )
        return cls.from_columns(matrix.T)

    @classmethod
    def from_columns(cls, columns: np.ndarray, *, copy: bool = True) -> SortedSample:
        """From an (F features x n observations) array, sorted row by row.

        With ``copy=False`` a C-ordered float64 array is sorted in place (the caller gives
        it up); anything else is copied.
        """
        values = np.array(columns, dtype=float, order="C", copy=copy or None)
        if values.ndim != 2:
            raise InvalidInputError(
                f"expected a 2-D array (features x observations), got {values.ndim} dimension(s)"
            )
        counts = values.shape[1] - np.count_nonzero(np.isnan(values), axis=1)
        if values.size >= _PARALLEL_SORT_VALUES and values.shape[0] > 1:
            # two halves of the rows on the two worker threads (numpy sorts without the GIL)
            middle = values.shape[0] // 2
            halves = [slice(0, middle), slice(middle, None)]
            _run_all(lambda rows: values[rows].sort(axis=1), halves)
        else:
            values.sort(axis=1)
        return cls(values=values, counts=counts.astype(np.int64))

    @property
    def feature_count(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class KSResult:
    """Two-sample KS per feature; NaN where a side has no observations."""

    statistic: np.ndarray
    pvalue: np.ndarray
    reference_count: np.ndarray
    current_count: np.ndarray


# --------------------------------------------------------------------------------------
# Kolmogorov–Smirnov statistic
# --------------------------------------------------------------------------------------


def ks_gap_numerators(reference: SortedSample, current: SortedSample) -> np.ndarray:
    """``max_x |m·#{ref <= x} - n·#{cur <= x}|`` per feature (int64), so that D = value/(n·m).

    The two sorted rows of a feature are merged with a stable sort (linear for two sorted
    runs), the counts of each side come from one cumulative sum, and the gap is read only
    where the merged value changes, which is how ties are counted: both ECDFs are evaluated
    after every copy of a tied value, as ``scipy.stats.ks_2samp`` does with
    ``searchsorted(side="right")``. Blocks of rows of a large sample run on two threads
    (numpy releases the GIL in the sort and the array passes).
    """
    _check_same_features(reference, current)
    features = reference.feature_count
    numerators = np.zeros(features, dtype=np.int64)
    width = reference.values.shape[1] + current.values.shape[1]
    threads = _EXACT_THREADS if features * width >= _BLOCK_VALUES // 8 else 1  # else: no gain
    block = max(1, min(_BLOCK_VALUES // max(width, 1), -(-features // threads)))
    n_all = reference.counts
    m_all = current.counts

    def solve(start: int) -> None:
        rows = slice(start, min(start + block, features))
        numerators[rows] = _gap_numerators_block(
            reference.values[rows], current.values[rows], n_all[rows], m_all[rows]
        )

    _run_all(solve, range(0, features, block))
    return numerators


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


# --------------------------------------------------------------------------------------
# Kolmogorov–Smirnov p-values
# --------------------------------------------------------------------------------------


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
        pvalue[asymptotic] = _smirnov_asymptotic(d, na, ma)

    if exact.any():
        g = np.gcd(n[exact], m[exact])
        h = numerators[exact] // g
        lcm = (n[exact] // g) * m[exact]
        statistic[exact] = h / lcm
        pvalue[exact] = _exact_pvalues_by_size(n[exact], m[exact], h)
    return statistic, np.clip(pvalue, 0.0, 1.0)


def _smirnov_asymptotic(d: np.ndarray, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """scipy's large-sample p-value: the one-sample exact law at N = round(n·m/(n+m)).

    Where 2·exp(-2N·d²) < 1e-10 (N·d² > 11.85) scipy evaluates 2·smirnov(N, d), an O(N) sum,
    and the one-sided DKW bound smirnov(N, d) <= exp(-2N·d²) (Massart 1990) puts it below
    that; the bound itself is returned there, within 1e-10 of scipy's value.
    """
    d = np.asarray(d, dtype=float)
    effective = np.broadcast_to(np.round(n * m / (n + m)), d.shape).astype(float)
    leading = 2.0 * np.exp(-2.0 * effective * d**2)
    deep = leading < TAIL_PVALUE
    # scipy's branch for N > 140 and N·d² >= 2.2: 2·smirnov(N, d), summed here in one go
    one_sided = ~deep & (effective > 140) & (effective * d**2 >= 2.2) & (d < 0.5)
    rest = ~deep & ~one_sided
    result = np.where(deep, leading, np.nan)
    if one_sided.any():
        result[one_sided] = 2.0 * _smirnov_one_sided(effective[one_sided], d[one_sided])
    if rest.any():
        result[rest] = stats.kstwo.sf(d[rest], effective[rest])
    return result


def _smirnov_one_sided(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(D+_n >= x) by the Birnbaum–Tingey (1951) sum, vectorised:

    x·Σ_{j=0}^{floor(n(1-x))} C(n, j)·(1 - x - j/n)^(n-j)·(x + j/n)^(j-1),

    summed in logs (positive terms) in blocks of rows that bound the temporaries.
    Agrees with ``scipy.special.smirnov`` to ~1e-12 for n up to 2·10^5.
    """
    result = np.empty(x.shape)
    width = int(n.max()) + 1
    block = max(1, (1 << 21) // width)
    j = np.arange(width, dtype=float)[None, :]
    for start in range(0, x.size, block):
        rows = slice(start, start + block)
        size = n[rows][:, None]
        at = x[rows][:, None]
        valid = j <= np.floor(size * (1.0 - at))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_terms = (
                special.gammaln(size + 1.0)
                - special.gammaln(j + 1.0)
                - special.gammaln(size - j + 1.0)
                + (size - j) * np.log(1.0 - at - j / size)
                + (j - 1.0) * np.log(at + j / size)
            )
        log_terms = np.where(valid, log_terms, -np.inf)
        result[rows] = x[rows] * np.exp(special.logsumexp(log_terms, axis=1))
    return result


def _exact_pvalues_by_size(n: np.ndarray, m: np.ndarray, h: np.ndarray) -> np.ndarray:
    pvalue = np.empty(h.shape)
    sizes, inverse = np.unique(np.stack([n, m], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for index, (size_a, size_b) in enumerate(sizes):  # one pass per distinct (n, m)
        members = inverse == index
        distinct, back = np.unique(h[members], return_inverse=True)
        values = _EXACT_MEMO.pvalues(int(size_a), int(size_b), distinct)
        pvalue[members] = values[back.reshape(-1)]
    return pvalue


class _ExactPValueMemo:
    """Exact p-values already computed, by (larger size, smaller size, h); bounded LRU.

    A monitoring loop asks for the same sample sizes every hour, so most look-ups hit.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._values: OrderedDict[tuple[int, int, int], float] = OrderedDict()

    def clear(self) -> None:
        self._values.clear()

    def pvalues(self, n: int, m: int, h: np.ndarray) -> np.ndarray:
        large, small = max(n, m), min(n, m)
        result = np.empty(h.shape)
        missing: list[int] = []
        for position, value in enumerate(h.tolist()):
            cached = self._values.get((large, small, value))
            if cached is None:
                missing.append(position)
            else:
                self._values.move_to_end((large, small, value))
                result[position] = cached
        if missing:
            wanted = h[missing]
            computed = exact_two_sided_pvalues(large, small, wanted)
            result[missing] = computed
            for value, p in zip(wanted.tolist(), computed.tolist(), strict=True):
                self._values[(large, small, value)] = p
            while len(self._values) > self._capacity:
                self._values.popitem(last=False)
        return result


_EXACT_MEMO = _ExactPValueMemo()


def clear_exact_pvalue_cache() -> None:
    """Forget memoised exact p-values (benchmarks use this to time cold runs)."""
    _EXACT_MEMO.clear()
    _first_h_at_level.cache_clear()
    _log_factorials.cache_clear()


def exact_two_sided_pvalues(n: int, m: int, h: np.ndarray) -> np.ndarray:
    """P(D_{n,m} >= h/lcm(n, m)) under the null, for every integer ``h`` in the array.

    Exact except in the far tail (< 1e-10), see :func:`ks_pvalues`.
    """
    large, small = max(n, m), min(n, m)
    h = np.asarray(h, dtype=np.int64)
    pvalue = np.ones(h.shape)
    if large != small and large % small == 0 and (h > 0).any():
        pvalue[h > 0] = _divisible_sizes_pvalues(large, small, h[h > 0])
        return np.clip(pvalue, 0.0, 1.0)
    g = math.gcd(large, small)
    d = h / ((large // g) * small)
    cap = _two_sample_dkw_bound(d, large, small)
    tail = (h > 0) & (cap < TAIL_PVALUE)
    body = (h > 0) & ~tail
    if large == small:
        if body.any():
            pvalue[body] = _equal_sizes_pvalues(large, h[body])
    elif body.any():
        # The p-value decreases in h: once the exact value at some h* is in the far tail,
        # every larger h is too and needs no band recursion of its own (the widest ones).
        # h* is the smallest h whose leading term 2·exp(-2·N·d²) is below 1e-10; it joins
        # the body's batched pass, so it costs about as much as one more wanted value.
        h_star = _smallest_likely_tail_h(large, small)
        beyond = body & (h >= h_star)
        body &= ~beyond
        distinct = np.unique(h[body])
        if beyond.any():
            distinct = np.append(distinct, h_star)
        exact = 1.0 - _inside_probability(large, small, distinct)
        pvalue[body] = exact[np.searchsorted(distinct, h[body])]
        if beyond.any() and exact[-1] < TAIL_PVALUE:  # p(h) <= p(h*) < TAIL_PVALUE
            tail |= beyond
            cap = np.where(beyond, np.minimum(cap, TAIL_PVALUE), cap)
        elif beyond.any():  # the leading term was optimistic here: no shortcut
            wanted = np.unique(h[beyond])
            exact = 1.0 - _inside_probability(large, small, wanted)
            pvalue[beyond] = exact[np.searchsorted(wanted, h[beyond])]
    if tail.any():
        asymptotic = _smirnov_asymptotic(d[tail], float(large), float(small))
        pvalue[tail] = np.minimum(asymptotic, cap[tail])
    return np.clip(pvalue, 0.0, 1.0)


def _divisible_sizes_pvalues(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """Exact p-values when the smaller sample size divides the larger (a = L/S, b = 1).

    Write the merge order as a walk X = i - a·j (i long-sample and j short-sample values
    seen): +1 per long value, -a per short one, from 0 back to 0. D >= h/L means the walk
    reaches h or -h. It climbs one step at a time, so by the hitting time theorem (the cycle
    lemma, which needs only exchangeable steps, as a uniformly random merge order has)
    P(the walk first reaches h after t values) = (h/t)·P(X_t = h), a hypergeometric
    probability: P(max X >= h) is a sum of S terms (:func:`_one_sided_exceedance`). Read
    backwards the merge order is again uniform and the walk becomes -X, so
    P(min X <= -h) = P(max X >= h), and

        p(h) = 2·P(max X >= h) - P(both),   P(both) = P(max X >= h and min X <= -h).

    P(both) falls with h (the events are nested). For the wanted h where
    2·P(max X >= h) <= 3e-3, one h0 at or below all of them is computed exactly by the band
    recursion (the smallest of them, or the first h at that level when the smallest lies
    much further out), which gives P(both) at h0 = 2·P(max X >= h0) - p(h0). When that is
    below 3e-11, each of them gets 2·P(max X >= h), within 3e-11 of its exact p-value, and
    the widest (costliest) band recursions are never run; otherwise they are run.
    """
    distinct, back = np.unique(h, return_inverse=True)
    union = 2.0 * _one_sided_exceedance(large, small, distinct)
    result = np.ones(distinct.shape)
    # union falls with h, so the candidates for the shortcut are a suffix of ``distinct``
    first = int(np.searchsorted(-union, -_UNION_SHORTCUT_LEVEL, side="left"))
    body = distinct[:first]
    candidates = np.arange(first, distinct.size)
    h0 = None
    if candidates.size:
        level_h = _first_h_at_level(large, small, _UNION_SHORTCUT_LEVEL)
        h0 = int(distinct[first]) if distinct[first] <= 1.25 * level_h else level_h
    exact = 1.0 - _inside_probability(large, small, body if h0 is None else np.append(body, h0))
    result[:first] = exact[:first]
    if h0 is not None:
        union_at_h0 = (
            union[first]
            if h0 == distinct[first]
            else 2.0 * _one_sided_exceedance(large, small, np.array([h0]))[0]
        )
        both_at_h0 = float(union_at_h0) - float(exact[-1])
        if abs(both_at_h0) <= _BOTH_TOLERANCE:
            result[candidates] = union[candidates]
        else:
            result[candidates] = 1.0 - _inside_probability(large, small, distinct[candidates])
    return result[back.reshape(-1)]


@functools.lru_cache(maxsize=8)
def _log_factorials(total: int) -> np.ndarray:
    """log(k!) for k = 0..total (read-only: it is shared between calls)."""
    table = special.gammaln(np.arange(total + 1, dtype=float) + 1.0)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def _first_h_at_level(large: int, small: int, level: float) -> int:
    """The smallest h > 0 with 2·P(max X >= h) <= ``level`` (bisection; it falls with h)."""
    low, high = 0, large  # 2·P(max X >= large) <= level for any level of interest
    while high - low > 1:
        middle = (low + high) // 2
        if 2.0 * _one_sided_exceedance(large, small, np.array([middle]))[0] <= level:
            high = middle
        else:
            low = middle
    return high


def _one_sided_exceedance(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """P(max_t X_t >= h) for X = i - a·j, a = large/small, each h > 0 (see above).

    Σ_j (h/t)·C(L, i)·C(S, j)/C(L+S, t) over the points i - a·j = h, t = i + j, summed in
    logarithms from one table of log-factorials.
    """
    a = large // small
    total = large + small
    log_factorial = _log_factorials(total)
    j = np.arange(small + 1)
    i = h[:, None] + a * j[None, :]
    valid = i <= large
    i = np.minimum(i, large)
    t = i + j[None, :]

    def log_choose(top: int | np.ndarray, chosen: np.ndarray) -> np.ndarray:
        return log_factorial[top] - log_factorial[chosen] - log_factorial[top - chosen]

    log_terms = (
        np.log(h[:, None] / t)
        + log_choose(large, i)
        + log_choose(small, np.broadcast_to(j, i.shape))
        - log_choose(total, t)
    )
    log_terms = np.where(valid, log_terms, -np.inf)
    return np.exp(special.logsumexp(log_terms, axis=1))


def _smallest_likely_tail_h(n: int, m: int) -> int:
    """The smallest integer h with 2·exp(-2·N·d²) < 1e-10, N = n·m/(n+m), d = h/lcm(n, m)."""
    lcm = n * m // math.gcd(n, m)
    return math.floor(lcm * math.sqrt(math.log(2.0 / TAIL_PVALUE) * (n + m) / (2.0 * n * m))) + 1


def _two_sample_dkw_bound(d: np.ndarray, n: int, m: int) -> np.ndarray:
    """A rigorous upper bound of P(D_{n,m} >= d).

    D_{n,m} <= sup|F_n - F| + sup|F_m - F|, so with Massart's (1990) tight DKW inequality
    P(sup|F_k - F| >= t) <= 2·exp(-2k·t²) and the split t_n = d·√m/(√n+√m) the bound is
    4·exp(-2·d²·n·m/(√n+√m)²).
    """
    exponent = 2.0 * d**2 * n * m / (math.sqrt(n) + math.sqrt(m)) ** 2
    return 4.0 * np.exp(-exponent)


def _equal_sizes_pvalues(n: int, h: np.ndarray) -> np.ndarray:
    """P(D_{n,n} >= h/n) = 2·Σ_{k>=1} (-1)^(k-1)·C(2n, n-kh)/C(2n, n) (Gnedenko & Korolyuk)."""
    if h.size == 0:
        return np.empty(0)
    # log C(2n, n-t)/C(2n, n) = Σ_{j<t} log((n-j)/(n+j+1))
    j = np.arange(n, dtype=float)
    log_ratio = np.concatenate([[0.0], np.cumsum(np.log1p(-(2.0 * j + 1.0) / (n + j + 1.0)))])
    k = np.arange(1, n // int(h.min()) + 1)
    steps = h[:, None] * k[None, :]
    inside = steps <= n
    terms = np.where(inside, np.exp(log_ratio[np.minimum(steps, n)]), 0.0)
    signs = np.where(k % 2 == 1, 1.0, -1.0)
    return 2.0 * (terms * signs).sum(axis=1)


def _inside_probability(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """Share of the C(L+S, S) merge orders whose ECDF gap stays below h/lcm at every point.

    Lattice paths from (0, 0) to (L, S), one step per observation of either sample, must keep
    |b·i - a·j| < h (g = gcd(L, S), a = L/g, b = S/g; Hodges 1958). Each step is weighted by
    its sample's share p_L = L/(L+S) or p_S, so every path to (i, j) weighs the same and the
    weighted count at (L, S) divided by the binomial probability C(L+S, S)·p_L^L·p_S^S is the
    inside share; the weights keep every number in [0, 1].
    """
    if h.size == 0:
        return np.empty(0)
    periodic_seconds, stepping_seconds = _band_costs(large, small, h)
    # Thousands of modest matrix products: BLAS threads only add contention (measured).
    with _BLAS.limit(limits=1, user_api="blas"):
        if periodic_seconds <= stepping_seconds:
            weighted = _band_count_periodic(large, small, h)
        else:
            weighted = _band_count_stepping(large, small, h)
    endpoint = float(stats.binom.pmf(small, large + small, small / (large + small)))
    return np.clip(weighted / endpoint, 0.0, 1.0)


def _band_costs(large: int, small: int, h: np.ndarray) -> tuple[float, float]:
    """Rough seconds of the two band recursions on one core, to pick the cheaper one."""
    g = math.gcd(large, small)
    a, b = large // g, small // g
    frames = 2 * (-(-h // a) - 1) + 1 + b
    periodic = 0.0
    for size in frames.tolist():
        squarings = _squarings_for(g, size)
        products = (g >> squarings) + squarings
        periodic += squarings * 2.0 * size**3 * 1e-10 + products * 2.0 * size**2 * 1e-10
        periodic += a * size**2 * 1e-8
    periodic += 1.2e-4 * len(_frame_buckets(frames)) * (a + 2 * max(g.bit_length(), 1))
    windows = (2 * h // b + 2).astype(float)
    stepping = small * (1.2e-4 + float(np.sum(windows)) * 1.5e-8)
    return periodic, stepping


def _band_count_periodic(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """Weighted path count at (L, S) by powers of the one-period transfer matrix.

    The band repeats every a long steps with a shift of b short steps, so the state at the
    start of each period (the column of weighted counts over the short axis, relative to
    the band's centre) is multiplied by one fixed matrix; g = gcd(L, S) periods are done by
    repeated squaring. Distinct h of similar frame size are stacked into one batched matmul.
    """
    g = math.gcd(large, small)
    a, b = large // g, small // g
    p_long = large / (large + small)
    p_short = small / (large + small)
    r0 = -(-h // a) - 1  # state at a period start: |r| <= r0
    frames = 2 * r0 + 1 + b
    result = np.empty(h.shape)
    buckets = _frame_buckets(frames)

    def solve(members: np.ndarray) -> None:
        size = int(frames[members].max())
        result[members] = _periodic_bucket(h[members], r0[members], size, a, b, g, p_long, p_short)

    # The buckets are independent and numpy releases the GIL in their matrix products:
    # two threads keep both cores busy (each product on one BLAS thread, see above). The
    # costliest buckets (stack x R³, the squarings) go first, which balances the threads.
    by_cost = sorted(buckets, key=lambda members: -members.size * int(frames[members].max()) ** 3)
    _run_all(solve, by_cost)
    return result


def _frame_buckets(frames: np.ndarray) -> list[np.ndarray]:
    """Group indices so that each group's frames differ by at most ~10%: padding a frame
    costs its cube in every squaring, more than the Python overhead of another group."""
    order = np.argsort(frames, kind="stable")
    buckets: list[np.ndarray] = []
    start = 0
    while start < order.size:
        limit = frames[order[start]] * 1.1 + 2
        stop = start
        while stop < order.size and frames[order[stop]] <= limit:
            stop += 1
        buckets.append(order[start:stop])
        start = stop
    return buckets


def _periodic_bucket(
    h: np.ndarray,
    r0: np.ndarray,
    size: int,
    a: int,
    b: int,
    g: int,
    p_long: float,
    p_short: float,
) -> np.ndarray:
    offset = np.arange(size)[None, :] - r0[:, None]
    period = _one_period_transfer(h, offset, a, b, p_long, p_short)
    # after a long steps the band centre has moved b short steps: shift the frame by b
    period[:, : size - b, :] = period[:, b:, :]
    period[:, size - b :, :] = 0.0
    with np.errstate(under="ignore"):
        start = np.where(
            (offset >= 0) & (offset <= r0[:, None]), p_short ** np.maximum(offset, 0), 0.0
        )
    vector, vector_log = _matrix_power_apply(period, start, g)
    at_centre = vector[np.arange(h.size), r0]
    with np.errstate(under="ignore"):
        return at_centre * np.exp(vector_log)


def _one_period_transfer(
    h: np.ndarray, offset: np.ndarray, a: int, b: int, p_long: float, p_short: float
) -> np.ndarray:
    """Weighted path counts over one period, (H, row, column): from short-axis offset
    ``offset[column]`` at a period start to ``offset[row]`` after its a long steps.

    A long step followed by d short steps weighs p_long·p_short^d, and the short steps after
    the a long steps are a weak composition of the rise d = row - column, so where the band
    does not bind inside the period the entry is p_long^a·p_short^d·C(d + a - 1, a - 1), a
    Toeplitz matrix. The band's edges move by b over a period, so only the columns within
    about b of the lower edge and the rows within about b of the upper edge need the
    step-by-step recursion (forward for those columns, backward for those rows).
    """
    long_index = np.arange(1, a + 1)[:, None]
    low = np.floor((b * long_index - h[None, :]) / a).astype(np.int64) + 1  # (a, H)
    high = np.ceil((b * long_index + h[None, :]) / a).astype(np.int64) - 1
    inside = (offset[None] >= low[:, :, None]) & (offset[None] <= high[:, :, None])
    size = offset.shape[1]
    first_column = low[0] - offset[:, 0]  # frame index of the lowest reachable start
    columns = int((low[-1] - low[0]).max())
    first_row = high[0] + 1 - offset[:, 0]
    rows = int((high[-1] - high[0]).max())
    if columns + rows >= size:  # edges as wide as the frame: recursion throughout
        unit = np.broadcast_to(np.eye(size), (h.size, size, size))
        return _band_steps(unit, inside, p_long, p_short, reverse=False)

    rise = np.arange(1, size, dtype=float)
    with np.errstate(under="ignore"):  # C(d + a - 1, a - 1)·p_short^d by successive ratios
        by_rise = p_long**a * np.cumprod(np.r_[1.0, p_short * (rise + a - 1.0) / rise])
    by_rise[by_rise < 1e-290] = 0.0  # no subnormal numbers in the matrix products
    frame = np.arange(size)
    toeplitz = by_rise[np.abs(frame[:, None] - frame[None, :])]
    toeplitz[frame[:, None] < frame[None, :]] = 0.0
    free_column = offset >= low[-1][:, None]  # every later lower edge is below the start
    free_row = offset <= high[0][:, None]  # every earlier upper edge is above the end
    transfer = np.where(free_row[:, :, None] & free_column[:, None, :], toeplitz, 0.0)

    edge_columns = np.minimum(first_column[:, None] + np.arange(columns), size - 1)
    units = (frame[None, :, None] == edge_columns[:, None, :]).astype(float)
    exact_columns = _band_steps(units, inside, p_long, p_short, reverse=False)
    np.put_along_axis(transfer, edge_columns[:, None, :], exact_columns, axis=2)
    edge_rows = np.minimum(first_row[:, None] + np.arange(rows), size - 1)
    units = (frame[None, :, None] == edge_rows[:, None, :]).astype(float)
    exact_rows = _band_steps(units, inside, p_long, p_short, reverse=True)
    np.put_along_axis(transfer, edge_rows[:, :, None], exact_rows.transpose(0, 2, 1), axis=1)
    return transfer


def _band_steps(
    vectors: np.ndarray, inside: np.ndarray, p_long: float, p_short: float, *, reverse: bool
) -> np.ndarray:
    """The a long steps of one period applied to (H, frame, K) vectors, or their transpose.

    Each long step keeps the positions inside the band at its long index (``inside[s]``,
    (H, frame)), then adds the short steps as a geometric cumulative sum up the frame (down
    it for the transpose, which runs the steps in reverse order) and drops what left the
    band.
    """
    result = vectors
    for mask in inside[::-1] if reverse else inside:
        keep = mask[:, :, None]
        result = np.where(keep, result, 0.0)
        if reverse:
            result = _geometric_cumsum(result[:, ::-1], p_short, axis=1)[:, ::-1]
        else:
            result = _geometric_cumsum(result, p_short, axis=1)
        result = np.where(keep, p_long * result, 0.0)
    return result


def _matrix_power_apply(
    matrices: np.ndarray, vectors: np.ndarray, exponent: int
) -> tuple[np.ndarray, np.ndarray]:
    """matrices**exponent @ vectors for a stack, as (scaled vectors, log of their scale).

    Squares k times (k chosen to balance R³ squarings against R² products), applies the low
    k bits of the exponent with the intermediate powers and the rest as repeated products
    with the 2^k-th power. Powers and vectors are rescaled to a maximum of 1, so long
    products of probabilities neither underflow nor fall into slow subnormal arithmetic.
    """
    squarings = _squarings_for(exponent, matrices.shape[-1], matrices.shape[0])
    result = vectors.copy()
    power = matrices.copy()
    spare = np.empty_like(power)  # squarings alternate between two buffers
    power_log = np.zeros(matrices.shape[0])
    result_log = np.zeros(matrices.shape[0])
    peaks: list[np.ndarray] = []
    for bit in range(squarings):
        if (exponent >> bit) & 1:
            result = _product(power, result, peaks)
            result_log += power_log
        np.matmul(power, power, out=spare)
        power, spare = spare, power
        power_log = 2.0 * power_log + _rescale_in_place(power)
    repeats = exponent >> squarings
    for _ in range(repeats):
        result = _product(power, result, peaks)
    result_log += repeats * power_log
    if peaks:
        result_log += np.log(np.stack(peaks)).sum(axis=0)
    return result, result_log


def _product(matrices: np.ndarray, vectors: np.ndarray, peaks: list[np.ndarray]) -> np.ndarray:
    product = np.matmul(matrices, vectors[:, :, None])[:, :, 0]
    peak = np.maximum(product.max(axis=1), 1e-300)
    peaks.append(peak)
    product /= peak[:, None]
    return product


def _squarings_for(exponent: int, size: int, stack: int = 1) -> int:
    """k minimising k squarings plus exponent/2^k products, for a stack of matrices.

    Measured costs on one core: a squaring runs at BLAS speed (2R³ flops at ~25 GFLOP/s)
    plus a rescaling pass over its R² entries; a matrix-vector product is bound by reading
    the R² entries from memory (~30 GB/s); each call also has a fixed Python-level overhead.
    """
    best, best_cost = 0, math.inf
    squaring = stack * (2.0 * size**3 * 4e-11 + size**2 * 1e-9) + 3e-5
    product = stack * size**2 * 3e-10 + 2e-5
    for k in range(max(exponent.bit_length(), 1)):
        products = (exponent >> k) + bin(exponent & ((1 << k) - 1)).count("1")
        cost = k * squaring + products * product
        if cost < best_cost:
            best, best_cost = k, cost
    return best


def _rescale_in_place(stack: np.ndarray) -> np.ndarray:
    """Divide each matrix of the stack by its largest entry; return the logs of those."""
    peak = stack.reshape(stack.shape[0], -1).max(axis=1)
    safe = np.where(peak > 0, peak, 1.0)
    stack /= safe[:, None, None]
    stack[stack < 1e-290] = 0.0
    return np.where(peak > 0, np.log(safe), -np.inf)


def _band_count_stepping(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """Weighted path count at (L, S) column by column over the smaller sample.

    Column j holds the weighted counts over the long axis inside the band; the next column is
    a geometric cumulative sum of the previous one (ratio p_L >= 1/2), all distinct h at once.
    """
    g = math.gcd(large, small)
    a, b = large // g, small // g
    p_long = large / (large + small)
    p_short = small / (large + small)
    columns = np.arange(small + 1)
    low = np.maximum(np.floor((a * columns[:, None] - h[None, :]) / b).astype(np.int64) + 1, 0)
    high = np.minimum(np.ceil((a * columns[:, None] + h[None, :]) / b).astype(np.int64) - 1, large)
    width = int((high - low).max()) + 1
    # state[t, k]: weighted count at long index low[j, k] + t for the k-th h (window down
    # axis 0, so the cumulative sums add whole rows)
    t = np.arange(width)[:, None]
    columns_of_h = np.arange(h.size)[None, :]
    gather = np.minimum(t[None, :, :] + (low[1:] - low[:-1])[:, None, :], width)
    outside = t[None, :, :] > (high - low)[:, None, :]
    with np.errstate(under="ignore"):
        state = np.where(outside[0], 0.0, p_long**t * np.ones((1, h.size)))
    padded = np.zeros((width + 1, h.size))
    for j in range(1, small + 1):
        padded[:width] = state
        moved = padded[gather[j - 1], columns_of_h]
        state = _geometric_cumsum(moved * p_short, p_long, axis=0)
        state[outside[j]] = 0.0
    return state[large - low[small], np.arange(h.size)]


def _geometric_cumsum(x: np.ndarray, ratio: float, axis: int) -> np.ndarray:
    """y[t] = Σ_{u<=t} ratio^(t-u)·x[u] along ``axis``, for 0 < ratio <= 1.

    Computed blockwise as ratio^t·cumsum(ratio^-u·x[u]) with blocks short enough that the
    scale factors stay far from overflow, carrying the running value across blocks.
    """
    width = x.shape[axis]
    block = width if ratio >= 1.0 else max(1, min(width, int(300.0 / -math.log(ratio))))
    exponents = np.arange(block, dtype=float)
    shape = [1] * x.ndim
    shape[axis] = block
    up = (ratio**-exponents).reshape(shape)
    down = (ratio**exponents).reshape(shape)
    result = np.empty_like(x)
    carry = None
    for start in range(0, width, block):
        stop = min(start + block, width)
        length = stop - start
        window = [slice(None)] * x.ndim
        window[axis] = slice(start, stop)
        part = [slice(None)] * x.ndim
        part[axis] = slice(0, length)
        local = np.cumsum(x[tuple(window)] * up[tuple(part)], axis=axis) * down[tuple(part)]
        if carry is not None:
            local += carry * (ratio * down[tuple(part)])
        result[tuple(window)] = local
        last = [slice(None)] * x.ndim
        last[axis] = slice(length - 1, length)
        carry = local[tuple(last)]
    return result


# --------------------------------------------------------------------------------------
# Effective sample sizes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnMoments:
    """Per-feature count, mean, standard deviation (ddof=1) and lag-1 autocorrelation."""

    counts: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    autocorrelation: np.ndarray


def column_moments(columns: np.ndarray) -> ColumnMoments:
    """Moments of each row of a time-ordered (F, n) array, NaN skipped, in one blocked pass.

    The lag-1 autocorrelation r = Σ(x_t - x̄)(x_{t+1} - x̄)/Σ(x_t - x̄)² of an AR(1) series
    is biased by about -(1 + 4ρ)/n (Marriott & Pope 1954; Kendall 1954), so the value
    returned is (n·r + 1)/(n - 4) (pairs with a missing value are skipped; NaN below 8
    values or without spread).
    """
    values = np.asarray(columns, dtype=float)
    features = values.shape[0]
    counts = np.empty(features, dtype=np.int64)
    means = np.empty(features)
    stds = np.empty(features)
    autocorrelation = np.empty(features)
    block = max(1, _BLOCK_VALUES // max(values.shape[1], 1))
    for start in range(0, features, block):
        rows = slice(start, start + block)
        part = values[rows]
        missing = np.isnan(part)
        count = part.shape[1] - np.count_nonzero(missing, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.where(missing, 0.0, part).sum(axis=1)
            mean = total / count
            centred = part - mean[:, None]
            centred[missing] = 0.0
            spread = np.einsum("ij,ij->i", centred, centred)
            lagged = np.einsum("ij,ij->i", centred[:, 1:], centred[:, :-1])
            std = np.sqrt(spread / (count - 1))
            raw = lagged / spread
            corrected = (count * raw + 1.0) / (count - 4.0)
        counts[rows] = count
        means[rows] = np.where(count > 0, mean, np.nan)
        stds[rows] = np.where(count > 1, std, np.nan)
        autocorrelation[rows] = np.where(
            (count >= 8) & (spread > 0), np.clip(corrected, -1.0, 1.0), np.nan
        )
    return ColumnMoments(counts, means, stds, autocorrelation)


def lag1_autocorrelation(columns: np.ndarray) -> np.ndarray:
    """Bias-corrected lag-1 autocorrelation of each row of a time-ordered (F, n) array."""
    return column_moments(columns).autocorrelation


def autocorrelation_time(
    columns: np.ndarray, *, max_lag: int | None = None, max_rows: int = 2_048
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
    missing = np.isnan(values)
    counts = n - missing.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(missing, 0.0, values).sum(axis=1) / np.maximum(counts, 1)
        centred = np.nan_to_num(
            np.where(missing, 0.0, values - means[:, None]), posinf=0.0, neginf=0.0
        )
    size = 1 << int(2 * n - 1).bit_length()  # zero padding: no circular wrap-around
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = autocovariance / autocovariance[:, :1]
    lags = max(2, min(max_lag or n // 4, n - 1))
    pairs = lags // 2
    gamma = rho[:, 0 : 2 * pairs : 2] + rho[:, 1 : 2 * pairs : 2]  # Γ_m, m = 0 .. pairs-1
    positive = np.cumprod(np.nan_to_num(gamma, nan=-1.0) > 0, axis=1).astype(bool)
    tau = -1.0 + 2.0 * np.where(positive, gamma, 0.0).sum(axis=1)
    tau = np.where((counts >= 8) & (autocovariance[:, 0] > 0), tau, 1.0)
    return np.maximum(tau, 1.0)


def effective_sample_size(size: np.ndarray, autocorrelation_time: np.ndarray) -> np.ndarray:
    """n_eff = n / τ: the sample size that gives a mean the same variance (Sokal 1997;
    for AR(1) this is the Bayley & Hammersley 1946 rule n (1 - ρ)/(1 + ρ)).

    τ below 1 or unknown never inflates the size; n_eff is clipped to [1, n].
    """
    size = np.asarray(size, dtype=float)
    tau = np.maximum(np.nan_to_num(np.asarray(autocorrelation_time, dtype=float), nan=1.0), 1.0)
    return np.clip(size / tau, np.minimum(size, 1.0), size)


def ks_pvalue_effective(
    statistic: np.ndarray, n_effective: np.ndarray, m_effective: np.ndarray
) -> np.ndarray:
    """KS p-value at (possibly fractional) effective sizes, Stephens' (1970) approximation.

    p = Q_KS((√N_e + 0.12 + 0.11/√N_e)·D) with N_e = n_eff·m_eff/(n_eff + m_eff) and Q_KS
    the Kolmogorov distribution's survival function.
    """
    n_e = np.asarray(n_effective, dtype=float)
    m_e = np.asarray(m_effective, dtype=float)
    root = np.sqrt(n_e * m_e / (n_e + m_e))
    return np.asarray(stats.kstwobign.sf((root + 0.12 + 0.11 / root) * statistic), dtype=float)


# --------------------------------------------------------------------------------------
# Benjamini–Hochberg
# --------------------------------------------------------------------------------------


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values along the last axis (Benjamini & Hochberg 1995).

    adjusted_(i) = min_{k >= i} min(1, F·p_(k)/k) over the F non-missing p-values sorted
    ascending; rejecting adjusted < α controls the false discovery rate at α. NaN stays NaN
    and does not count as a test.

    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.20])).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2]
    """
    p = np.asarray(pvalues, dtype=float)
    flat = p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1)
    tests = np.count_nonzero(~np.isnan(flat), axis=1)
    order = np.argsort(flat, axis=1, kind="stable")  # NaN sorts last
    ranked = np.take_along_axis(flat, order, axis=1)
    rank = np.arange(1, flat.shape[1] + 1)
    scaled = ranked * tests[:, None] / rank[None, :]
    scaled = np.where(np.isnan(scaled), np.inf, scaled)
    adjusted_sorted = np.minimum.accumulate(scaled[:, ::-1], axis=1)[:, ::-1]
    adjusted_sorted = np.minimum(adjusted_sorted, 1.0)
    adjusted = np.empty_like(flat)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=1)
    adjusted[np.isnan(flat)] = np.nan
    return adjusted.reshape(p.shape)


# --------------------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------------------


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


def count_at_most(sample: SortedSample, thresholds: np.ndarray) -> np.ndarray:
    """#{values <= threshold} for each row's thresholds (F, K), by a vectorised binary search."""
    values = sample.values
    rows = np.arange(values.shape[0])[:, None]
    low = np.zeros(thresholds.shape, dtype=np.int64)
    high = np.broadcast_to(sample.counts[:, None], thresholds.shape).copy()
    while True:
        active = low < high
        if not active.any():
            return low
        middle = (low + high) // 2
        probe = values[rows, np.minimum(middle, values.shape[1] - 1)]
        go_right = active & (probe <= thresholds)
        low = np.where(go_right, middle + 1, low)
        high = np.where(active & ~go_right, middle, high)


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
    pairs = np.stack([r[occupied], np.broadcast_to(kappa[:, None], r.shape)[occupied]], axis=1)
    distinct, back = np.unique(pairs, axis=0, return_inverse=True)
    share, kappa = distinct[:, 0], distinct[:, 1]
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


# --------------------------------------------------------------------------------------


def _check_same_features(reference: SortedSample, current: SortedSample) -> None:
    if reference.feature_count != current.feature_count:
        raise InvalidInputError(
            f"reference has {reference.feature_count} features, current has "
            f"{current.feature_count}; both must hold the same features in the same order"
        )
