"""The hourly grid and the time-window primitives every feature family is computed with.

Everything here works on a dense hourly grid (:class:`HourlyGrid`): one slot per UTC hour,
NaN where no bar exists. A window of ``W`` hours ending at ``t`` is therefore exactly the
``W`` slots ``t-W+1 .. t`` whatever is missing: windows are time-based, never row counts.

Why not ``pandas.rolling``: its online algorithm (add the entering value, subtract the leaving
one) makes the last bits of a window's sum depend on where the computation started, so an
incremental build could differ from a full rebuild. The primitives below add the ``W`` lagged
copies of the series in a fixed order instead, so each value depends only on its own window,
bit for bit, and the work is still vectorised over all hours.

>>> grid_values = np.array([1.0, 2.0, np.nan, 4.0])
>>> trailing_sum(grid_values, 2)[0].tolist()
[1.0, 3.0, 2.0, 4.0]
>>> trailing_mean(grid_values, 3, min_count=2).tolist()
[nan, 1.5, 1.5, 3.0]
>>> trailing_mean(grid_values, 3, min_count=2, at=np.array([3])).tolist()  # one slot alone
[3.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOUR_NS = 3_600_000_000_000

Array = np.ndarray


@dataclass(frozen=True)
class HourlyGrid:
    """The consecutive UTC hours ``first_hour .. first_hour + length - 1`` (hours since epoch)."""

    first_hour: int
    length: int

    def hours(self) -> Array:
        """Each slot's hour start, in whole hours since 1970-01-01T00:00Z."""
        return np.arange(self.first_hour, self.first_hour + self.length, dtype=np.int64)


# ------------------------------------------------------------------------ window primitives
#
# Every primitive takes ``at``: the grid slots to return values for, sorted (``None``: every
# slot, vectorised over the whole grid lag by lag). With ``at`` a window is gathered per output
# slot (:func:`window_matrix`) and reduced in the same lag order, so the value of a slot does
# not depend on which other slots were asked for: an hourly build that asks for one slot gets
# the bits a full build gets.

Slots = Array | None


def pick(values: Array, at: Slots) -> Array:
    """``values`` at the slots ``at`` (all of them when ``at`` is ``None``)."""
    return values if at is None else values[at]


def lag(values: Array, hours: int) -> Array:
    """The value ``hours`` slots earlier (the bar exactly at ``t - hours``), NaN before the grid."""
    shifted = np.full(len(values), np.nan)
    if hours < len(values):
        shifted[hours:] = values[: len(values) - hours]
    return shifted


def window_slots(at: Array, hours: int) -> Array:
    """The slots the ``hours``-slot windows ending at ``at`` cover, sorted and unique."""
    reach = (at[:, np.newaxis] - np.arange(hours)).ravel()
    return np.unique(reach[reach >= 0])


def on_grid(values_at: Array, at: Slots, length: int) -> Array:
    """A grid-long series holding ``values_at`` at the slots ``at`` and NaN elsewhere."""
    if at is None:
        return values_at
    dense = np.full(length, np.nan)
    dense[at] = values_at
    return dense


def window_matrix(values: Array, hours: int, at: Array, fill: float | int) -> Array:
    """One row per slot ``t`` of ``at``: ``values[t], values[t-1], ..., values[t-hours+1]``.

    Column ``j`` is lag ``j``; lags before the grid hold ``fill``, chosen so that reducing
    them changes nothing (0 for sums, NaN for ``np.fmax`` / ``np.fmin``).
    """
    positions = at[:, np.newaxis] - np.arange(hours)
    if len(at) == 0 or at[0] >= hours - 1:  # ``at`` is sorted: no window leaves the grid
        return values[positions]
    window = values[np.maximum(positions, 0)]
    window[positions < 0] = fill
    return window


def sum_in_lag_order(window: Array) -> Array:
    """Each row's sum, added lag by lag from 0.0 as the whole-grid primitives add it.

    ``np.cumsum`` adds strictly in sequence; it starts from the first term instead of 0.0,
    which differs only when every term is -0.0, and ``+ 0.0`` turns that -0.0 into the 0.0
    the other order gives (and changes no other value).
    """
    if window.shape[1] == 0:
        return np.zeros(window.shape[0])
    return np.cumsum(window, axis=1)[:, -1] + 0.0


def trailing_sum(values: Array, hours: int, at: Slots = None) -> tuple[Array, Array]:
    """Sum and count of the non-NaN values in the window of ``hours`` slots ending at each slot."""
    return trailing_sums(values, (hours,), at)[hours]


def trailing_sums(
    values: Array, windows: Sequence[int], at: Slots = None
) -> dict[int, tuple[Array, Array]]:
    """:func:`trailing_sum` of several windows of one series, in one pass over the longest.

    A window of ``w`` slots is summed once lag ``w - 1`` has been added: the additions, and
    their order, are those of a pass of its own.
    """
    longest = max(windows)
    if at is not None:
        window = window_matrix(values, longest, at, np.nan)
        present = ~np.isnan(window)
        totals = np.cumsum(np.where(present, window, 0.0), axis=1)
        counts = np.cumsum(present, axis=1, dtype=np.int64)
        # + 0.0: see sum_in_lag_order.
        return {w: (totals[:, w - 1] + 0.0, counts[:, w - 1]) for w in windows}
    n = len(values)
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    total = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    sums = {}
    for j in range(min(longest, n)):
        total[j:] += filled[: n - j]
        count[j:] += present[: n - j]
        if j + 1 in windows:
            sums[j + 1] = (total.copy(), count.copy())
    # A window longer than the grid holds all of it.
    return {w: sums[w] if w in sums else (total.copy(), count.copy()) for w in windows}


def trailing_total(values: Array, hours: int, at: Slots = None) -> Array:
    """Sum over the window of a series with no gaps (zeros where nothing happened)."""
    return trailing_totals(values, (hours,), at)[hours]


def trailing_totals(values: Array, windows: Sequence[int], at: Slots = None) -> dict[int, Array]:
    """:func:`trailing_total` of several windows of one series, in one pass over the longest."""
    longest = max(windows)
    if at is not None:
        totals = np.cumsum(window_matrix(values, longest, at, 0.0), axis=1)
        return {w: totals[:, w - 1] + 0.0 for w in windows}  # + 0.0: see sum_in_lag_order
    n = len(values)
    total = np.zeros(n)
    sums = {}
    for j in range(min(longest, n)):
        total[j:] += values[: n - j]
        if j + 1 in windows:
            sums[j + 1] = total.copy()
    return {w: sums[w] if w in sums else total.copy() for w in windows}


def trailing_weighted_total(values: Array, weights: Array, at: Slots = None) -> Array:
    """``sum_j weights[j] * values[t - j]`` over ``j < len(weights)``, for a gap-free series."""
    if at is not None:
        return sum_in_lag_order(window_matrix(values, len(weights), at, 0.0) * weights)
    n = len(values)
    total = np.zeros(n)
    for j, weight in enumerate(weights[:n]):
        total[j:] += weight * values[: n - j]
    return total


def trailing_mean(values: Array, hours: int, *, min_count: int, at: Slots = None) -> Array:
    """Mean of the values present in the window; NaN with fewer than ``min_count`` of them."""
    return mean_of(trailing_sum(values, hours, at), min_count=min_count)


def mean_of(total_and_count: tuple[Array, Array], *, min_count: int) -> Array:
    """``total / count`` of a window's sum and count; NaN with fewer than ``min_count`` values."""
    total, count = total_and_count
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count < max(min_count, 1)] = np.nan
    return mean


def trailing_std(
    values: Array, hours: int, *, min_count: int, ddof: int = 1, at: Slots = None
) -> Array:
    """Standard deviation of the values present in the window (two-pass, so no cancellation)."""
    if at is not None:
        window = window_matrix(values, hours, at, np.nan)
        present = ~np.isnan(window)
        total = sum_in_lag_order(np.where(present, window, 0.0))
        count = present.sum(axis=1, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        deviation = window - mean[:, np.newaxis]
        squares = sum_in_lag_order(np.where(np.isnan(deviation), 0.0, deviation * deviation))
    else:
        n = len(values)
        total, count = trailing_sum(values, hours)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        squares = np.zeros(n)
        for j in range(min(hours, n)):
            deviation = values[: n - j] - mean[j:]
            squares[j:] += np.where(np.isnan(deviation), 0.0, deviation * deviation)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(squares / (count - ddof))
    std[count < max(min_count, ddof + 1)] = np.nan
    return std


def trailing_weighted_mean(
    values: Array, weights: Array, *, min_count: int, at: Slots = None
) -> Array:
    """``sum w_j x[t-j] / sum w_j`` over the values present in the last ``len(weights)`` slots."""
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    if at is not None:
        window = window_matrix(values, len(weights), at, np.nan)
        present_window = ~np.isnan(window)
        numerator = sum_in_lag_order(np.where(present_window, window, 0.0) * weights)
        denominator = sum_in_lag_order(present_window * weights)
        count = present_window.sum(axis=1, dtype=np.int64)
    else:
        n = len(values)
        numerator = np.zeros(n)
        denominator = np.zeros(n)
        count = np.zeros(n, dtype=np.int64)
        for j, weight in enumerate(weights[:n]):
            numerator[j:] += weight * filled[: n - j]
            denominator[j:] += weight * present[: n - j]
            count[j:] += present[: n - j]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = numerator / denominator
    mean[count < max(min_count, 1)] = np.nan
    return mean


def trailing_max(values: Array, hours: int, at: Slots = None) -> Array:
    """Largest value present in the window (NaN when none is)."""
    if at is not None:
        return _unsigned_zero(np.fmax.reduce(window_matrix(values, hours, at, np.nan), axis=1))
    n = len(values)
    largest = values.copy()
    for j in range(1, min(hours, n)):
        np.fmax(largest[j:], values[: n - j], out=largest[j:])
    return _unsigned_zero(largest)


def trailing_min(values: Array, hours: int, at: Slots = None) -> Array:
    """Smallest value present in the window (NaN when none is)."""
    if at is not None:
        return _unsigned_zero(np.fmin.reduce(window_matrix(values, hours, at, np.nan), axis=1))
    n = len(values)
    smallest = values.copy()
    for j in range(1, min(hours, n)):
        np.fmin(smallest[j:], values[: n - j], out=smallest[j:])
    return _unsigned_zero(smallest)


def _unsigned_zero(extreme: Array) -> Array:
    """``extreme`` with -0.0 made 0.0 (no other value changes).

    The maximum of 0.0 and -0.0 is either, depending on operand order and on whether numpy
    took a SIMD loop; making zero unsigned keeps a window's extreme independent of both.
    """
    extreme += 0.0
    return extreme


def half_window(hours: int) -> int:
    """The minimum count for a window statistic: at least half of its hours must have data."""
    return max(1, math.ceil(hours / 2))


def ema_weights(span: int, window: int) -> Array:
    """Weights ``(1 - α)^j``, ``α = 2 / (span + 1)``, of an EMA cut at ``window`` hours."""
    alpha = 2.0 / (span + 1.0)
    return (1.0 - alpha) ** np.arange(window, dtype=float)


def truncated_ema(values: Array, span: int, window: int, at: Slots = None) -> Array:
    """An exponential moving average over a fixed finite window.

    The usual EMA is a recursion over the whole history; this is the same weighted average
    (pandas' ``ewm(span=span, adjust=True)``) restricted to the last ``window`` hours and to
    the bars present in them, so it depends only on a bounded stretch of data.
    """
    return trailing_weighted_mean(
        values, ema_weights(span, window), min_count=half_window(window), at=at
    )
