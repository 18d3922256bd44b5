"""The sequential detector's volatility channel: the hour's range against a GARCH forecast.

Against the reference's marginal law, a jump in volatility on a GARCH path is hard to tell
from the path's own swings, which span a factor of two. Against a *forecast* it is not: a
GARCH(1,1) variance (Bollerslev 1986) fitted on the hourly return of the history and
reference predicts each hour's variance from the hours before, so a large range after large
returns is expected, and a large range after calm hours is news. The channel reads

* ``y_t = log(range_t / sqrt(h_t))``, ``h_t`` the forecast of hour t's return variance from the
  returns before it (``h_t = omega + alpha r_{t-1}^2 + beta h_{t-1}``, Gaussian quasi-likelihood,
  ``omega`` from the calibration's variance); the high-low range measures an hour's volatility
  several times more efficiently than its squared return (Parkinson 1980);
* its normal score ``w_t`` (the mid-rank of ``y_t`` among the calibration's values, through
  the normal quantile), so no law is assumed for the range;
* an EWMA of ``w_t`` with weight ``1 - beta``: after a volatility jump the forecast catches up
  at the rate ``beta`` per hour, so the excess of ``w`` fades at that rate and an EWMA with the
  same memory is its matched filter (at least the detector's smoothing, at most 1/2).

The EWMA is standardised and thresholded as the detector's rank channels are: by its root
mean square on the calibration run, read as a Student-t with the effective number of
independent values behind that scale (:func:`upcrossings.student_dof`), and with a level from
the upcrossing rate of its lag-one correlation. It is one-sided: it watches volatility
rises; a fall is left to the rank channels (in real data flat hours of zero range would
otherwise read as a volatility collapse).

The channel needs the project's hourly return and range features (:data:`RETURN_FEATURE`,
:data:`RANGE_FEATURE`); a detector fitted without them has none.

>>> rng = np.random.default_rng(0)
>>> returns = rng.normal(size=2000) * np.repeat(rng.uniform(0.5, 2.0, size=20), 100)
>>> garch = Garch.fit(returns)
>>> 0.0 <= garch.alpha and 0.0 <= garch.beta and garch.alpha + garch.beta < 1.0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, signal, special, stats

from btcmlops.mlops.drift.upcrossings import lag_one, level_for_rate, student_dof

RETURN_FEATURE = "ret_1h"
RANGE_FEATURE = "range_1h"
BURN_IN_HOURS = 168  # calibration hours before the forecasts count (the start is a guess)
MAX_PERSISTENCE = 0.999  # alpha + beta below this: a stationary variance


@dataclass(frozen=True)
class Garch:
    """``h_t = omega + alpha r_{t-1}^2 + beta h_{t-1}`` on returns less ``mean``.

    A missing return counts as one of the calibration's average size (``variance``), in the
    fit and hour by hour alike.
    """

    mean: float
    variance: float  # the calibration's mean squared (centred) return
    alpha: float
    beta: float

    @property
    def omega(self) -> float:
        return self.variance * (1.0 - self.alpha - self.beta)

    @classmethod
    def fit(cls, returns: np.ndarray) -> Garch:
        """Gaussian quasi-maximum likelihood (Bollerslev & Wooldridge 1992) with the variance
        targeted at the sample's, from alpha 0.05, beta 0.9 (Nelder-Mead; deterministic)."""
        finite = returns[np.isfinite(returns)]
        mean = float(np.mean(finite))
        variance = float(np.mean((finite - mean) ** 2))
        if variance <= 0.0:
            return cls(mean, 1.0, 0.0, 0.0)

        def negative_log_likelihood(parameters: np.ndarray) -> float:
            alpha, beta = parameters
            if alpha < 0.0 or beta < 0.0 or alpha + beta >= MAX_PERSISTENCE:
                return math.inf
            candidate = cls(mean, variance, float(alpha), float(beta))
            forecasts = candidate.forecasts(returns)
            squares = candidate._squares(returns)
            return float(np.sum(np.log(forecasts) + squares / forecasts))

        best = optimize.minimize(negative_log_likelihood, [0.05, 0.9], method="Nelder-Mead")
        alpha, beta = (float(v) for v in best.x)
        if not math.isfinite(best.fun) or alpha < 0.0 or beta < 0.0:
            return cls(mean, variance, 0.0, 0.0)
        return cls(mean, variance, alpha, beta)

    def _squares(self, returns: np.ndarray) -> np.ndarray:
        squares = (returns - self.mean) ** 2
        return np.where(np.isfinite(squares), squares, self.variance)

    def forecasts(self, returns: np.ndarray) -> np.ndarray:
        """``h_t`` for every hour t of ``returns``, from the hours before it (the first is the
        calibration variance); the forecast for the hour after the last is :meth:`next`."""
        squares = self._squares(returns)
        previous = np.concatenate([[self.variance], squares[:-1]])
        initial = signal.lfiltic([1.0], [1.0, -self.beta], [self.variance])
        path, _ = signal.lfilter(
            [1.0], [1.0, -self.beta], self.omega + self.alpha * previous, zi=initial
        )
        return path

    def next(self, variance: float, value: float) -> float:
        """The forecast for the next hour, given this hour's forecast and return."""
        square = (value - self.mean) ** 2
        if not math.isfinite(square):
            square = self.variance
        return self.omega + self.alpha * square + self.beta * variance


@dataclass(frozen=True)
class VolatilityChannel:
    """Everything the channel learns at fit time; the hour-to-hour state is the next hour's
    variance forecast and the EWMA."""

    return_column: int  # positions in the detector's input row
    range_column: int
    garch: Garch
    calibration: np.ndarray  # sorted log(range / sqrt(h)) of the calibration hours
    smoothing: float
    scale: float  # root mean square of the EWMA on the calibration run
    dof: float  # Student-t degrees of freedom for reading EWMA / scale
    threshold: float  # the normal-equivalent level of the alarm
    first_variance: float  # the forecast for the first hour after the calibration
    calibration_evidence: np.ndarray  # share of threshold on the calibration run, burnt in

    def score(self, range_value: float, variance: float) -> float:
        """The normal score of this hour's range over the forecast volatility; 0 if missing."""
        if not (math.isfinite(range_value) and math.isfinite(variance)):
            return 0.0
        value = math.log(range_value / math.sqrt(variance)) if range_value > 0 else -math.inf
        return float(_normal_scores(self.calibration, np.array([value]))[0])

    def evidence(self, ewma: np.ndarray | float) -> np.ndarray:
        """The EWMA's normal equivalent (upper side only) as a share of the threshold."""
        size = np.maximum(np.asarray(ewma, dtype=float), 0.0) / self.scale
        tail = np.clip(stats.t.sf(size, self.dof), 1e-300, 0.5)
        return stats.norm.isf(tail) / self.threshold


def fit_channel(
    names: tuple[str, ...],
    rows: np.ndarray,
    *,
    smoothing_floor: float,
    rate: float,
) -> VolatilityChannel | None:
    """The channel for the calibration ``rows`` (history then reference, all columns), with a
    false-alarm rate of ``rate`` per hour; None without the return and range features, or
    when fewer than half of the rows have them or the rows are fewer than two burn-ins."""
    if RETURN_FEATURE not in names or RANGE_FEATURE not in names:
        return None
    return_column, range_column = names.index(RETURN_FEATURE), names.index(RANGE_FEATURE)
    returns, ranges = rows[:, return_column], rows[:, range_column]
    if (
        rows.shape[0] <= 2 * BURN_IN_HOURS
        or min(np.isfinite(returns).sum(), np.isfinite(ranges).sum()) < rows.shape[0] // 2
    ):
        return None
    garch = Garch.fit(returns)
    forecasts = garch.forecasts(returns)
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.log(ranges / np.sqrt(forecasts))
    counted = logged[BURN_IN_HOURS:]
    calibration = np.sort(counted[~np.isnan(counted)])
    smoothing = min(max(1.0 - garch.beta, smoothing_floor), 0.5)
    scores = np.where(np.isnan(counted), 0.0, _normal_scores(calibration, counted))
    path = _ewma(scores, smoothing)[math.ceil(3.0 / smoothing) :]
    iid_scale = math.sqrt(smoothing / (2.0 - smoothing))
    scale = max(float(np.sqrt(np.mean(path**2))), iid_scale)
    correlation = lag_one(path[:, None])
    dof = float(student_dof(path[:, None], path[:, None] / scale)[0])
    threshold = level_for_rate(correlation, rate, two_sided=False)
    channel = VolatilityChannel(
        return_column=return_column,
        range_column=range_column,
        garch=garch,
        calibration=calibration,
        smoothing=smoothing,
        scale=scale,
        dof=dof,
        threshold=threshold,
        first_variance=garch.next(float(forecasts[-1]), float(returns[-1])),
        calibration_evidence=np.zeros(0),
    )
    return replace(channel, calibration_evidence=channel.evidence(path))


def _normal_scores(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Phi^-1(mid-rank / (n + 1)) of each value among ``sorted_values``."""
    below = np.searchsorted(sorted_values, values, side="left")
    at_or_below = np.searchsorted(sorted_values, values, side="right")
    rank = (below + at_or_below) / 2.0 + 0.5
    return special.ndtri(rank / (sorted_values.size + 1.0))


def _ewma(values: np.ndarray, smoothing: float) -> np.ndarray:
    path, _ = signal.lfilter([smoothing], [1.0, smoothing - 1.0], values, zi=[0.0])
    return path
