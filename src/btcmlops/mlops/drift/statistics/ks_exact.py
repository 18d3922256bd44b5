"""Exact two-sample KS p-values, P(D_{n,m} >= h/lcm(n, m)) under the null.

The share of merge orders whose ECDF gap stays inside a band (Hodges 1958), counted by one
of two band recursions; closed forms for equal sizes (Gnedenko & Korolyuk 1951) and, in the
body of the distribution, for sizes that divide each other (the hitting time theorem).
Results are memoised by (n, m, h): a monitoring loop asks for the same sizes every hour.

>>> import numpy as np
>>> exact_two_sided_pvalues(4, 3, np.array([9])).round(6).tolist()  # D = 9/12 = 0.75
[0.228571]
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict

import numpy as np
from scipy import special, stats

from btcmlops.mlops.drift.statistics.ks_asymptotic import (
    TAIL_PVALUE,
    row_sums_of_exponentials,
    smirnov_asymptotic,
    two_sample_dkw_bound,
)
from btcmlops.mlops.drift.statistics.pool import one_blas_thread, run_all

# Divisible sizes (_divisible_sizes_pvalues): where twice the one-sided tail is at most this,
# the one-sided closed form replaces the band recursion once P(both sides) is shown to be
# below _BOTH_TOLERANCE.
_UNION_SHORTCUT_LEVEL = 3e-3
_BOTH_TOLERANCE = 3e-11
# _first_h_at_level evaluates every h at once while that sums at most this many terms.
_ALL_H_TERMS = 1 << 15


def exact_pvalues_by_size(n: np.ndarray, m: np.ndarray, h: np.ndarray) -> np.ndarray:
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
    _log_integers.cache_clear()
    _geometric_factors.cache_clear()


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
    cap = two_sample_dkw_bound(d, large, small)
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
        asymptotic = smirnov_asymptotic(d[tail], float(large), float(small))
        pvalue[tail] = np.minimum(asymptotic, cap[tail])
    return np.clip(pvalue, 0.0, 1.0)


def _divisible_sizes_pvalues(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """Exact p-values when the smaller sample size divides the larger (a = L/S, b = 1).

    Write the merge order as a walk X = i - a·j (i long-sample and j short-sample values
    seen): +1 per long value, -a per short one, from 0 back to 0. D >= h/L means the walk
    reaches h or -h. It climbs one step at a time, so by the hitting time theorem (the cycle
    lemma, which needs only exchangeable steps, as a uniformly random merge order has)
    P(the walk first reaches h after t values) = (h/t)·P(X_t = h), a hypergeometric
    probability: P(max X >= h) is a sum of S terms (:func:`one_sided_exceedance`). Read
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
    result = np.ones(distinct.shape)
    level = _UNION_SHORTCUT_LEVEL
    # union falls with h, so the candidates for the shortcut are a suffix of ``distinct``:
    # the h from the first one at the level on. Many wanted h of a large sample find it
    # sooner by the search for that h (which the shortcut needs anyway) than by a sum per h.
    if _union_search_is_cheaper(large, small, distinct.size):
        first = int(np.searchsorted(distinct, _first_h_at_level(large, small, level)))
        union = 2.0 * one_sided_exceedance(large, small, distinct[first:])
    else:
        union = 2.0 * one_sided_exceedance(large, small, distinct)
        first = int(np.searchsorted(-union, -level, side="left"))
        union = union[first:]
    body = distinct[:first]
    candidates = np.arange(first, distinct.size)
    h0 = None
    if candidates.size:
        level_h = _first_h_at_level(large, small, level)
        h0 = int(distinct[first]) if distinct[first] <= 1.25 * level_h else level_h
    exact = 1.0 - _inside_probability(large, small, body if h0 is None else np.append(body, h0))
    result[:first] = exact[:first]
    if h0 is not None:
        union_at_h0 = (
            union[0]
            if h0 == distinct[first]
            else 2.0 * one_sided_exceedance(large, small, np.array([h0]))[0]
        )
        both_at_h0 = float(union_at_h0) - float(exact[-1])
        if abs(both_at_h0) <= _BOTH_TOLERANCE:
            result[candidates] = union
        else:
            result[candidates] = 1.0 - _inside_probability(large, small, distinct[candidates])
    return result[back.reshape(-1)]


def _union_search_is_cheaper(large: int, small: int, wanted: int) -> bool:
    """Whether the search of :func:`_first_h_at_level` (about log2(large) single sums) costs
    less than one sum per wanted h. Measured on one core: a sum costs about 0.25 ms plus
    0.15 µs per term, and has small + 1 terms per h."""
    terms = small + 1
    return wanted * terms * 1.5e-7 > large.bit_length() * (2.5e-4 + terms * 1.5e-7)


@functools.lru_cache(maxsize=8)
def _log_factorials(total: int) -> np.ndarray:
    """log(k!) for k = 0..total (read-only: it is shared between calls)."""
    table = special.gammaln(np.arange(total + 1, dtype=float) + 1.0)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=8)
def _log_integers(total: int) -> np.ndarray:
    """log(k) for k = 0..total, -inf at 0 (read-only: it is shared between calls)."""
    with np.errstate(divide="ignore"):
        table = np.log(np.arange(total + 1, dtype=float))
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def _first_h_at_level(large: int, small: int, level: float) -> int:
    """The smallest h > 0 with 2·P(max X >= h) <= ``level`` (it falls with h).

    Small samples evaluate every h in one call (cheaper than the calls of a bisection);
    larger ones bisect.
    """
    if large * (small + 1) <= _ALL_H_TERMS:
        at_level = 2.0 * one_sided_exceedance(large, small, np.arange(1, large)) <= level
        # 2·P(max X >= large) <= level for any level of interest
        return int(np.argmax(at_level)) + 1 if at_level.any() else large
    low, high = 0, large  # 2·P(max X >= large) <= level for any level of interest
    while high - low > 1:
        middle = (low + high) // 2
        if 2.0 * one_sided_exceedance(large, small, np.array([middle]))[0] <= level:
            high = middle
        else:
            low = middle
    return high


# one_sided_exceedance sums this many terms at a time.
_ONE_SIDED_BLOCK_TERMS = 1 << 14


def one_sided_exceedance(large: int, small: int, h: np.ndarray) -> np.ndarray:
    """P(max_t X_t >= h) for X = i - a·j, a = large/small, each h > 0 (see above).

    Σ_j (h/t)·C(L, i)·C(S, j)/C(L+S, t) over the points i - a·j = h, t = i + j, summed in
    logarithms from one table of log-factorials.
    """
    a = large // small
    total = large + small
    log_factorial = _log_factorials(total)
    log_integer = _log_integers(total)
    j = np.arange(small + 1)

    def log_choose(top: int | np.ndarray, chosen: np.ndarray) -> np.ndarray:
        return log_factorial[top] - log_factorial[chosen] - log_factorial[top - chosen]

    log_choose_small = log_choose(small, j)[None, :]  # the same for every h: computed once
    result = np.empty(h.shape)
    # blocks of h whose temporaries stay in the cache (measured on 106 h of 2,001 terms:
    # 4.3 ms, against 15.9 ms all at once)
    block = max(1, _ONE_SIDED_BLOCK_TERMS // j.size)
    for start in range(0, h.size, block):
        rows = h[start : start + block]
        i = rows[:, None] + a * j[None, :]
        valid = i <= large
        np.minimum(i, large, out=i)
        t = i + j[None, :]
        log_terms = (
            log_integer[rows][:, None]  # log(h/t), from a table: a tenth of np.log's cost
            - log_integer[t]
            + log_choose(large, i)
            + log_choose_small
            - log_choose(total, t)
        )
        log_terms[~valid] = -np.inf
        result[start : start + block] = row_sums_of_exponentials(log_terms)
    return result


def _smallest_likely_tail_h(n: int, m: int) -> int:
    """The smallest integer h with 2·exp(-2·N·d²) < 1e-10, N = n·m/(n+m), d = h/lcm(n, m)."""
    lcm = n * m // math.gcd(n, m)
    return math.floor(lcm * math.sqrt(math.log(2.0 / TAIL_PVALUE) * (n + m) / (2.0 * n * m))) + 1


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
    with one_blas_thread():
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
    run_all(solve, by_cost)
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
    flat_gather = gather * h.size + columns_of_h  # positions in padded, read flat (faster)
    for j in range(1, small + 1):
        padded[:width] = state
        moved = np.take(padded, flat_gather[j - 1])
        moved *= p_short
        state = _geometric_cumsum(moved, p_long, axis=0)
        state[outside[j]] = 0.0
    return state[large - low[small], np.arange(h.size)]


@functools.lru_cache(maxsize=64)
def _geometric_factors(ratio: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """ratio^-u and ratio^u for u = 0..block-1 (read-only: shared by the steps of a
    recursion, which use the same ratio and block every time)."""
    exponents = np.arange(block, dtype=float)
    up, down = ratio**-exponents, ratio**exponents
    up.flags.writeable = down.flags.writeable = False
    return up, down


def _geometric_cumsum(x: np.ndarray, ratio: float, axis: int) -> np.ndarray:
    """y[t] = Σ_{u<=t} ratio^(t-u)·x[u] along ``axis``, for 0 < ratio <= 1.

    Computed blockwise as ratio^t·cumsum(ratio^-u·x[u]) with blocks short enough that the
    scale factors stay far from overflow, carrying the running value across blocks.
    """
    width = x.shape[axis]
    block = width if ratio >= 1.0 else max(1, min(width, int(300.0 / -math.log(ratio))))
    shape = [1] * x.ndim
    shape[axis] = block
    up, down = (factors.reshape(shape) for factors in _geometric_factors(ratio, block))
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
