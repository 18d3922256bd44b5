"""Drift statistics computed for every feature at once.

Two-sample Kolmogorov–Smirnov (statistic and p-value matching ``scipy.stats.ks_2samp``),
the population stability index (PSI) on reference-quantile bins, Benjamini–Hochberg
adjustment, the expected PSI under no drift, and effective sample sizes for dependent
series. ``docs/drift.md`` gives the formulas and the papers behind them.

One module per job:

- ``samples``: :class:`SortedSample` (the layout below), counts below thresholds, moments.
- ``ks``: the KS test; ``ks_statistic`` computes the statistic, ``ks_exact`` and
  ``ks_asymptotic`` the p-values, ``ks_bounds`` certified intervals where the verdict does
  not need the exact value.
- ``psi``: quantile bins, shares, PSI and its expected value under no drift.
- ``multiple_testing``: Benjamini–Hochberg.
- ``effective_sizes``: autocorrelation and dependence times, effective sample sizes.
- ``pool``: the two worker threads the others share.

Layout: a *sample* holds F features as a feature-major 2-D array, one row per feature, each
row sorted ascending with missing values (NaN) last; ``counts[j]`` says how many leading
entries of row ``j`` are observed. Every function works on all rows with array operations;
where a loop remains it runs over blocks of rows, distinct sample sizes or lattice columns,
never over features one at a time, with one exception: the KS statistic of long samples
(thousands of values per feature) searches each feature's rows in turn, each search long
enough that the loop costs nothing beside it.

>>> import numpy as np
>>> reference = SortedSample.from_rows(np.array([[1.0], [2.0], [3.0], [4.0]]))
>>> current = SortedSample.from_rows(np.array([[3.5], [5.0], [6.0]]))
>>> result = ks_two_sample(reference, current)
>>> float(result.statistic[0]), round(float(result.pvalue[0]), 6)
(0.75, 0.228571)
"""

from btcmlops.mlops.drift.statistics.effective_sizes import (
    DEPENDENCE_ROWS,
    GATE_Z,
    REFUSAL_GATE_Z,
    autocorrelation_time,
    dependence_time,
    dependence_times,
    effective_sample_size,
)
from btcmlops.mlops.drift.statistics.ks import (
    MAX_EXACT_SIZE,
    KSResult,
    bounded_pvalues_note,
    exact_where_undecided,
    ks_pvalues,
    ks_two_sample,
    start_ks_two_sample,
)
from btcmlops.mlops.drift.statistics.ks_asymptotic import TAIL_PVALUE, ks_pvalue_effective
from btcmlops.mlops.drift.statistics.ks_bounds import ks_pvalue_bounds
from btcmlops.mlops.drift.statistics.ks_exact import (
    clear_exact_pvalue_cache,
    exact_two_sided_pvalues,
)
from btcmlops.mlops.drift.statistics.ks_statistic import ks_gap_numerators
from btcmlops.mlops.drift.statistics.multiple_testing import benjamini_hochberg
from btcmlops.mlops.drift.statistics.psi import (
    PSI_FLOOR,
    bin_shares,
    psi,
    psi_expected_under_no_drift,
    quantile_edges,
)
from btcmlops.mlops.drift.statistics.samples import (
    ColumnMoments,
    SortedSample,
    column_moments,
    count_at_most,
    lag1_autocorrelation,
)

__all__ = [
    "DEPENDENCE_ROWS",
    "GATE_Z",
    "MAX_EXACT_SIZE",
    "PSI_FLOOR",
    "REFUSAL_GATE_Z",
    "TAIL_PVALUE",
    "ColumnMoments",
    "KSResult",
    "SortedSample",
    "autocorrelation_time",
    "benjamini_hochberg",
    "bin_shares",
    "bounded_pvalues_note",
    "clear_exact_pvalue_cache",
    "column_moments",
    "count_at_most",
    "dependence_time",
    "dependence_times",
    "effective_sample_size",
    "exact_two_sided_pvalues",
    "exact_where_undecided",
    "ks_gap_numerators",
    "ks_pvalue_bounds",
    "ks_pvalue_effective",
    "ks_pvalues",
    "ks_two_sample",
    "lag1_autocorrelation",
    "psi",
    "psi_expected_under_no_drift",
    "quantile_edges",
    "start_ks_two_sample",
]
