"""The two-sample Kolmogorov–Smirnov test for every feature at once.

The statistic comes from :mod:`.ks_statistic`; the p-value is the one
``scipy.stats.ks_2samp`` gives, exact (:mod:`.ks_exact`) while both sides have at most
10,000 observations and asymptotic (:mod:`.ks_asymptotic`) above. A drift check starts from
certified bounds where they are cheap (:mod:`.ks_bounds`) and computes the value only where
its verdict needs it (:func:`exact_where_undecided`).

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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np

from btcmlops.mlops.drift.statistics.ks_asymptotic import smirnov_asymptotic
from btcmlops.mlops.drift.statistics.ks_bounds import ks_pvalue_bounds
from btcmlops.mlops.drift.statistics.ks_exact import exact_pvalues_by_size
from btcmlops.mlops.drift.statistics.ks_statistic import ks_gap_numerators
from btcmlops.mlops.drift.statistics.samples import SortedSample, check_same_features

# scipy.stats.ks_2samp(method="auto") computes the exact p-value while both samples have at
# most this many observations and uses Smirnov's asymptotic distribution above it.
MAX_EXACT_SIZE = 10_000
# start_ks_two_sample uses a background thread from this many observations on a side.
_BACKGROUND_MIN_SIZE = 1_000


@dataclass(frozen=True)
class KSResult:
    """Two-sample KS per feature; NaN where a side has no observations.

    ``pvalue`` is scipy's p-value (to 1e-9) where ``exact`` is True. A test started with
    ``bounds=True`` leaves it False where a certified interval costs far less than the value
    (:func:`~.ks_bounds.ks_pvalue_bounds`): ``pvalue`` is then the interval's upper end and
    ``lower`` its lower end (``lower`` equals ``pvalue`` where exact), until
    :meth:`with_exact` or :func:`exact_where_undecided` computes the value.
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    reference_count: np.ndarray
    current_count: np.ndarray
    lower: np.ndarray
    exact: np.ndarray
    numerators: np.ndarray

    def with_exact(self, wanted: np.ndarray) -> KSResult:
        """This result with the exact p-values of the ``wanted`` features."""
        wanted = np.asarray(wanted, dtype=bool) & ~self.exact
        if not wanted.any():
            return self
        _, values = ks_pvalues(
            self.numerators[wanted], self.reference_count[wanted], self.current_count[wanted]
        )
        pvalue, lower, exact = self.pvalue.copy(), self.lower.copy(), self.exact.copy()
        pvalue[wanted] = lower[wanted] = values
        exact[wanted] = True
        return replace(self, pvalue=pvalue, lower=lower, exact=exact)


def exact_where_undecided(
    result: KSResult, significant_at: Callable[[np.ndarray], np.ndarray]
) -> KSResult:
    """``result`` with exact p-values wherever the verdict could depend on them.

    ``significant_at(pvalues)`` is the check's decision per feature and must be monotone:
    lowering p-values never removes a feature from it (Benjamini–Hochberg on
    max(p, corrected) is). Then lower <= exact <= upper gives
    significant_at(upper) ⊆ significant_at(exact) ⊆ significant_at(lower), and where the two
    ends agree the exact decision is known. Where they differ, the features that differ are
    computed exactly first (the usual case: one or two near the threshold), and if that does
    not settle it (another feature's interval moves the threshold), every one left.
    """
    while not result.exact.all():
        undecided = significant_at(result.lower) != significant_at(result.pvalue)
        if not undecided.any():
            break
        wanted = undecided & ~result.exact
        result = result.with_exact(wanted if wanted.any() else ~result.exact)
    return result


def bounded_pvalues_note(names: Sequence[str], bounded: np.ndarray, exact: np.ndarray) -> str:
    """One line naming the features whose KS p-value is a certified upper bound ("" if none),
    or, when those are the majority, the ones whose p-value is exact.

    >>> bounded = np.array([True, False, True])
    >>> bounded_pvalues_note(["a", "b", "c"], bounded, ~bounded)[:59]
    'ks_pvalue is exact for 1 of 3 tested features (b); a certif'
    """
    if not bounded.any():
        return ""
    tested = int(bounded.sum() + exact.sum())
    if bounded.sum() <= exact.sum():
        listed = ", ".join(str(names[j]) for j in np.flatnonzero(bounded))
        return (
            f"ks_pvalue is a certified upper bound, within which the verdict is the same, for "
            f"{int(bounded.sum())} of {tested} tested features ({listed}); exact for the others"
        )
    listed = ", ".join(str(names[j]) for j in np.flatnonzero(exact)) or "none"
    return (
        f"ks_pvalue is exact for {int(exact.sum())} of {tested} tested features ({listed}); a "
        f"certified upper bound for the other {int(bounded.sum())}, within which the verdict "
        "is the same"
    )


def start_ks_two_sample(
    reference: SortedSample,
    current: SortedSample,
    *,
    background: bool = True,
    bounds: bool = False,
) -> Callable[[], KSResult]:
    """:func:`ks_two_sample` begun on a background thread: statistic and p-values.

    Returns a function that waits for the result (and raises what the computation raised).
    The statistic's searches and the exact p-values of large samples take much of a check's
    time; the caller goes on with the dependence, PSI and moments meanwhile (the samples
    must stay unchanged until the result is in). Small samples (and ``background=False``)
    are done at once. With ``bounds=True`` a p-value with a cheap certified interval is left
    as that interval (see :class:`KSResult`), for callers that settle it with
    :func:`exact_where_undecided`.
    """
    check_same_features(reference, current)
    reference_count, current_count = reference.counts.copy(), current.counts.copy()

    def compute() -> KSResult:
        numerators = ks_gap_numerators(reference, current)
        if bounds:
            return _bounded_result(numerators, reference_count, current_count)
        statistic, pvalue = ks_pvalues(numerators, reference_count, current_count)
        exact = np.ones(pvalue.shape, dtype=bool)
        return KSResult(
            statistic, pvalue, reference_count, current_count, pvalue, exact, numerators
        )

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


def _bounded_result(numerators: np.ndarray, n: np.ndarray, m: np.ndarray) -> KSResult:
    """Certified intervals where they are cheap, exact p-values everywhere else."""
    lower, upper = ks_pvalue_bounds(numerators, n, m)
    bounded = ~np.isnan(lower)
    with np.errstate(invalid="ignore", divide="ignore"):
        # the same float as h/lcm(n, m): both round the same rational once
        statistic = np.where((n > 0) & (m > 0), numerators / (n * m).astype(float), np.nan)
    pvalue = upper.copy()
    if (~bounded).any():
        _, computed = ks_pvalues(numerators[~bounded], n[~bounded], m[~bounded])
        pvalue[~bounded] = computed
    lower = np.where(bounded, lower, pvalue)
    return KSResult(statistic, pvalue, n, m, lower, ~bounded, numerators)


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
    for all features at once (:func:`smirnov_one_sided`).

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
