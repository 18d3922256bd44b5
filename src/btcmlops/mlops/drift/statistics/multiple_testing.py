"""Multiple testing across the features of one check: Benjamini–Hochberg adjustment.

>>> import numpy as np
>>> adjusted = benjamini_hochberg(np.array([0.001, 0.2, np.nan]))
>>> adjusted.round(3).tolist()  # two tests: NaN is not one
[0.002, 0.2, nan]
"""

from __future__ import annotations

import numpy as np


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
