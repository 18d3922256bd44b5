"""From a feature row to the sequential detector's evidence, against a fitted calibration.

Each feature gives two rank scores against the reference (location and spread), smoothed by
an EWMA; the location EWMAs are studentized by their running variance; the evidence is the
larger of the per-channel statistic and the breadth statistic, each as a share of its
threshold. The method and its references are in :mod:`btcmlops.mlops.drift.sequential`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from btcmlops.mlops.drift.sequential_calibration import Calibration

_SQRT12 = math.sqrt(12.0)


def _uniform_scores(sorted_values: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """sqrt(12) * (mid-rank / (n + 1) - 1/2) of each value; 0 (no evidence) where missing."""
    below = (sorted_values[None, :, :] < rows[:, :, None]).sum(axis=2)
    at_or_below = (sorted_values[None, :, :] <= rows[:, :, None]).sum(axis=2)
    rank = (below + at_or_below) / 2.0 + 0.5
    scores = _SQRT12 * (rank / (counts + 1.0) - 0.5)
    return np.where(np.isnan(rows), 0.0, scores)


def rank_scores(calibration: Calibration, rows: np.ndarray) -> np.ndarray:
    """(rows, 2 * features): location scores, then spread scores."""
    location = _uniform_scores(calibration.reference, calibration.counts, rows)
    deviation = np.abs(rows - calibration.medians)
    spread = _uniform_scores(calibration.deviations, calibration.counts, deviation)
    return np.hstack([location, spread])


def studentize(calibration: Calibration, ewma: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Location EWMAs over the root of their running variance (relative to the calibration's
    mean square, floored at a quarter): the rank of a return swings with volatility."""
    ratio = np.maximum((second - ewma**2) / calibration.second_moments, 0.25)
    return np.where(calibration.located, ewma / np.sqrt(ratio), ewma)


def ewma_path(scores: np.ndarray, smoothing: float, start: np.ndarray | None = None) -> np.ndarray:
    path = np.empty_like(scores)
    level = np.zeros(scores.shape[1]) if start is None else start.copy()
    for t in range(scores.shape[0]):
        level += smoothing * (scores[t] - level)
        path[t] = level
    return path


def breadth_scores(calibration: Calibration, z: np.ndarray) -> np.ndarray:
    """Normal scores of mean(Z^2) under its fitted F law."""
    statistic = np.mean(z**2, axis=1)
    # F(h, m) rather than chi2_h: the channels' scales rest on about m independent values.
    tail = stats.f.sf(
        statistic / calibration.breadth_mean,
        calibration.breadth_dof,
        calibration.breadth_denominator_dof,
    )
    return stats.norm.isf(np.clip(tail, 1e-300, 1.0))


def relative_evidence(calibration: Calibration, ewma: np.ndarray) -> np.ndarray:
    """The larger of the two statistics as a share of its threshold, per row of EWMAs."""
    z = ewma / calibration.scales
    per_channel = _largest_normal_equivalent(np.abs(z), calibration.effective)
    breadth = breadth_scores(calibration, z) / calibration.breadth_threshold
    return np.maximum(per_channel / calibration.channel_threshold, breadth)


def _normal_equivalent(size: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """The normal quantile with the same upper tail as ``size`` has under Student-t(dof)."""
    return stats.norm.isf(np.clip(stats.t.sf(size, dof), 1e-300, 0.5))


def _largest_normal_equivalent(size: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Row-wise max of :func:`_normal_equivalent`. For one row (the hourly update) only the
    channels that can beat the largest ``size``'s equivalent are evaluated: an equivalent is
    never above its ``size``, so the others cannot win."""
    if size.shape[0] != 1:
        return np.max(_normal_equivalent(size, dof[None, :]), axis=1)
    row = size[0]
    first = int(np.argmax(row))
    best = float(_normal_equivalent(row[first : first + 1], dof[first : first + 1])[0])
    contenders = np.flatnonzero(row > best)
    if contenders.size:
        best = max(best, float(np.max(_normal_equivalent(row[contenders], dof[contenders]))))
    return np.array([best])
