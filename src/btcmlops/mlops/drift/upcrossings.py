"""Thresholds for smoothed statistics from their expected number of upcrossings.

A stationary Gaussian series with lag-one correlation ``r`` crosses a level ``c`` upwards
with probability ``P(X_t < c <= X_{t+1})`` per step (Rice's formula in discrete time; Rice
1945, Leadbetter, Lindgren & Rootzen 1983, ch. 7). Summed over the distinct series watched
(a union bound), it is the expected number of false alarms per step, so its inverse is the
mean time between them; ``level_for_rate`` finds the level for a stated rate.

>>> level = level_for_rate(np.array([0.9, 0.9]), 1 / 2160, two_sided=True)
>>> round(level, 2)
3.56
"""

from __future__ import annotations

import numpy as np
from scipy import special

DISTINCT_CORRELATION = 0.9  # series correlated above this are counted once


def lag_one(paths: np.ndarray) -> np.ndarray:
    """Lag-one autocorrelation of each column, clipped to [0, 0.9999]."""
    centred = paths - paths.mean(axis=0)
    numerator = np.sum(centred[1:] * centred[:-1], axis=0)
    denominator = np.sum(centred**2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lag = numerator / denominator
    return np.clip(np.nan_to_num(lag, nan=0.0), 0.0, 0.9999)


def distinct_series(correlation: np.ndarray) -> np.ndarray:
    """Greedy representatives: each channel joins the first kept one it correlates with."""
    kept: list[int] = []
    for c in range(correlation.shape[0]):
        if not kept or np.max(np.abs(correlation[c, kept])) < DISTINCT_CORRELATION:
            kept.append(c)
    return np.array(kept)


def upcrossing_probability(level: float, lag_one: np.ndarray) -> np.ndarray:
    """``P(X_t < c <= X_{t+1})`` for standard normal pairs with correlation ``lag_one``.

    ``= integral_c^inf phi(y) Phi((c - r y) / sqrt(1 - r^2)) dy`` (condition on X_{t+1} = y),
    by the trapezoid rule on a fine grid.

    >>> round(float(upcrossing_probability(0.0, np.array([0.0]))[0]), 4)
    0.25
    """
    grid = level + np.linspace(0.0, 10.0, 2001)
    spread = np.sqrt(1.0 - lag_one**2)[:, None]
    # scipy.special rather than scipy.stats.norm: the same values (norm.pdf and norm.cdf
    # compute exactly these), without the distribution's argument checks, which cost more
    # than the arithmetic here and run 50 times per level searched.
    density = np.exp(-(grid**2) / 2.0) / np.sqrt(2.0 * np.pi)
    integrand = density[None, :] * special.ndtr((level - lag_one[:, None] * grid[None, :]) / spread)
    return np.trapezoid(integrand, grid, axis=1)


def level_for_rate(lag_one: np.ndarray, rate: float, *, two_sided: bool) -> float:
    """The level whose summed upcrossing probability per hour is ``rate`` (bisection)."""
    sides = 2.0 if two_sided else 1.0
    low, high = 0.0, 12.0
    for _ in range(50):
        middle = (low + high) / 2.0
        if sides * float(np.sum(upcrossing_probability(middle, lag_one))) > rate:
            low = middle
        else:
            high = middle
    return high


def student_dof(path: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Degrees of freedom for reading each column of ``z`` (``path`` over its calibration
    root mean square) as a Student-t, at least 3.

    The root mean square of a persistent path rests on few independent values,
    ``n (1 - r) / (1 + r)`` for lag-one correlation ``r``, so a new value over it is
    Student-t with that many degrees of freedom; a path whose spread clusters in time is
    heavier-tailed than normal, and the t with its excess kurtosis ``k`` has ``4 + 6 / k``.
    The smaller of the two is used.
    """
    r = lag_one(path)
    effective = path.shape[0] * (1.0 - r) / (1.0 + r)
    excess = np.mean(z**4, axis=0) / np.mean(z**2, axis=0) ** 2 - 3.0
    from_kurtosis = np.where(excess > 0.0, 4.0 + 6.0 / np.maximum(excess, 1e-9), np.inf)
    return np.maximum(np.minimum(effective, from_kurtosis), 3.0)
