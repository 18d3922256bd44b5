"""The two-sample KS statistic of every feature, as an integer gap numerator.

One merge of the two sorted samples per block of features; for long samples a search of
the shorter side's values in the longer one, and for the longest only of the values near
the largest gap. Each way gives the same integer, the numerator of
``scipy.stats.ks_2samp``'s statistic (``tests/test_drift_statistics.py`` checks each
against scipy).

>>> import numpy as np
>>> from btcmlops.mlops.drift.statistics.samples import SortedSample
>>> reference = SortedSample.from_rows(np.array([[1.0], [2.0], [3.0], [4.0]]))
>>> current = SortedSample.from_rows(np.array([[3.5], [5.0], [6.0]]))
>>> int(ks_gap_numerators(reference, current)[0])  # D = 9 / (4 x 3) = 0.75
9
"""

from __future__ import annotations

import numpy as np

from btcmlops.mlops.drift.statistics.pool import WORKER_THREADS, run_all
from btcmlops.mlops.drift.statistics.samples import (
    BLOCK_VALUES,
    SortedSample,
    check_same_features,
)

# ks_gap_numerators searches instead of merging from this many values per feature (both
# sides): below it the per-feature calls cost more than the merge of all features at once.
_SEARCH_MIN_WIDTH = 2_000
# From this many values on each side the search probes only the keys near the largest gap
# (_sampled_gap), bounding the others by segments of _SAMPLED_SEGMENT keys.
_SAMPLED_MIN_KEYS = 8_192
_SAMPLED_SEGMENT = 16


def ks_gap_numerators(reference: SortedSample, current: SortedSample) -> np.ndarray:
    """``max_x |m·#{ref <= x} - n·#{cur <= x}|`` per feature (int64), so that D = value/(n·m).

    Both ECDFs are evaluated after every copy of a tied value, as ``scipy.stats.ks_2samp``
    does with ``searchsorted(side="right")``. Short rows are merged, a block of features at
    a time (:func:`_gap_numerators_block`); long ones search the shorter side's values in
    the longer one (:func:`_searched_gaps`, :func:`_searched_gap` for rows with missing
    values), which reads the longer side only where it is probed, and the longest search
    only the keys near the largest gap (:func:`_sampled_gap`). Large merges run on the two
    worker threads (numpy releases the GIL in sorts and array passes).
    """
    check_same_features(reference, current)
    features = reference.feature_count
    numerators = np.zeros(features, dtype=np.int64)
    width = reference.values.shape[1] + current.values.shape[1]
    searched = width >= _SEARCH_MIN_WIDTH
    shorter = min(reference.values.shape[1], current.values.shape[1])
    sampled = searched and shorter >= _SAMPLED_MIN_KEYS
    # Two threads pay for large merges and searches (the searches wait on memory more than
    # they compute: 16.5 -> 10.5 ms at 10,000 x 2,000 and 135 -> 98 ms at 200,000 x 50,000,
    # medians on 2026-12-07); small merges gain nothing.
    threads = WORKER_THREADS if features * width >= BLOCK_VALUES // 8 else 1
    n_all = reference.counts
    m_all = current.counts
    block = -(-features // threads) if searched else BLOCK_VALUES // max(width, 1)
    block = max(1, min(block, -(-features // threads)))

    def solve(start: int) -> None:
        rows = slice(start, min(start + block, features))
        if not searched:
            numerators[rows] = _gap_numerators_block(
                reference.values[rows], current.values[rows], n_all[rows], m_all[rows]
            )
            return
        complete = (n_all[rows] == reference.values.shape[1]).all() and (
            m_all[rows] == current.values.shape[1]
        ).all()
        if complete:  # no missing values: the same shapes in every row, done together
            step = max(1, BLOCK_VALUES // max(width, 1))
            for part in range(rows.start, rows.stop, step):
                within = slice(part, min(part + step, rows.stop))
                numerators[within] = _searched_gaps(
                    reference.values[within], current.values[within]
                )
            return
        for j in range(rows.start, rows.stop):
            numerators[j] = _searched_gap(
                reference.values[j, : n_all[j]], current.values[j, : m_all[j]]
            )

    def solve_sampled(start: int) -> None:
        for j in range(start, min(start + block, features)):
            reference_row = reference.values[j, : n_all[j]]
            current_row = current.values[j, : m_all[j]]
            if min(current_row.size, reference_row.size) < _SAMPLED_MIN_KEYS:  # missing values
                numerators[j] = _searched_gap(reference_row, current_row)
            elif current_row.size <= reference_row.size:
                numerators[j] = _sampled_gap(current_row, reference_row)
            else:
                numerators[j] = _sampled_gap(reference_row, current_row)

    run_all(solve_sampled if sampled else solve, range(0, features, block))
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


def _sampled_gap(keys: np.ndarray, table: np.ndarray) -> int:
    """:func:`_searched_gap` with the keys searched only near the largest gap (keys: the
    shorter side, both sorted, no missing values).

    With 1-based key index i, A⁺(i) = #(table <= k_i) and A⁻(i) = #(table < k_i), the gap
    is the largest of R(i) = |K·A⁺(i) - T·i| at the last copy of each key and
    L(i) = |K·A⁻(i) - T·(i-1)| at the first copy (:func:`_searched_gap`). Cut the keys into
    segments of S; within a segment [a, b] both counts lie in [A⁻(a), A⁺(b)], so every R
    and L there is at most max(K·A⁺(b) - T·(a-1), T·b - K·A⁻(a)). One search per segment
    gives A⁺(b); A⁻(a) is at least the previous segment's A⁺(b) when k_a differs from the
    key before it (it is searched where it does not). R at the segment ends are gaps
    themselves, so their largest is a lower bound of the result; only the segments whose
    bound exceeds it (and that hold a first or last copy) are searched key by key. Under no
    drift about 1 % of a long sample's keys are; a drifted feature's peak is narrower still.
    """
    count, total = keys.size, table.size
    size = _SAMPLED_SEGMENT
    starts = np.arange(0, count, size)
    ends = np.minimum(starts + size, count) - 1
    at_end = np.searchsorted(table, keys[ends], side="right").astype(np.int64)
    last_copy = np.empty(count, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=last_copy[:-1])
    last_copy[-1] = True
    first_copy = np.empty(count, dtype=bool)
    first_copy[1:] = last_copy[:-1]
    first_copy[0] = True
    below_start = np.zeros(starts.size, dtype=np.int64)  # a lower bound of A⁻ at each start
    below_start[1:] = at_end[:-1]
    tied = np.flatnonzero(~first_copy[starts])  # a key running on across a segment boundary
    if tied.size:
        below_start[tied] = np.searchsorted(table, keys[starts[tied]], side="left")
    best = int(np.where(last_copy[ends], np.abs(count * at_end - total * (ends + 1)), 0).max())
    bound = np.maximum(count * at_end - total * starts, total * (ends + 1) - count * below_start)
    evaluated = np.zeros(starts.size * size, dtype=bool)
    evaluated[:count] = last_copy | first_copy
    wanted = np.flatnonzero((bound > best) & evaluated.reshape(-1, size).any(axis=1))
    if wanted.size == 0:
        return best
    index = (starts[wanted][:, None] + np.arange(size)[None, :]).reshape(-1)
    index = index[index < count]
    probes = keys[index]
    at_most = np.searchsorted(table, probes, side="right").astype(np.int64)
    below = np.searchsorted(table, probes, side="left").astype(np.int64)
    right = np.where(last_copy[index], np.abs(count * at_most - total * (index + 1)), 0)
    left = np.where(first_copy[index], np.abs(count * below - total * index), 0)
    return max(best, int(right.max()), int(left.max()))


def _searched_gaps(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """:func:`_searched_gap` of a block of rows without missing values, row by row only in
    the searches (numpy searches one sorted table at a time) and together in the rest."""
    keys, table = (
        (current, reference)
        if current.shape[1] <= reference.shape[1]
        else (
            reference,
            current,
        )
    )
    count, total = keys.shape[1], table.shape[1]
    if count == 0 or total == 0:
        return np.zeros(keys.shape[0], dtype=np.int64)
    at_most = np.empty(keys.shape, dtype=np.int64)
    for row in range(keys.shape[0]):
        at_most[row] = np.searchsorted(table[row], keys[row], side="right")
    # #(table < k) differs from #(table <= k) only for keys that occur in the table
    below = at_most.copy()
    previous = np.take_along_axis(table, np.maximum(at_most - 1, 0), axis=1)
    shared = (at_most > 0) & (previous == keys)
    for row in np.flatnonzero(shared.any(axis=1)):
        wanted = shared[row]
        below[row, wanted] = np.searchsorted(table[row], keys[row, wanted], side="left")
    seen = np.arange(1, count + 1, dtype=np.int64)
    same_as_next = keys[:, 1:] == keys[:, :-1]
    at_most *= count
    at_most -= total * seen
    np.abs(at_most, out=at_most)
    at_most[:, :-1][same_as_next] = 0  # only at the last copy of a key
    below *= count
    below -= total * (seen - 1)
    np.abs(below, out=below)
    below[:, 1:][same_as_next] = 0  # only at the first copy of a key
    return np.maximum(at_most.max(axis=1), below.max(axis=1))


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
