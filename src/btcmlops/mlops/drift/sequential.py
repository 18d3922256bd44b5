"""An hourly sequential drift detector with a stated mean time between false alarms.

Each hour's feature row is turned into two scale-free scores per feature against a fixed
reference window: the *location* score ``sqrt(12) * (u - 1/2)`` with ``u`` the mid-rank of
the value among the reference's values, and the *spread* score, the same of ``|x - median|``
among the reference's ``|x_i - median|``. Both are uniform on ``(-sqrt 3, sqrt 3)`` with mean
0 and variance 1 when nothing has changed, whatever the feature's units or tails. Each score
is smoothed by an EWMA (Roberts 1959; smoothing ``lambda``) and divided by the EWMA's own
root mean square on the history and reference (an in-sample run of the same recursion), so
the feature's memory is in the scale: a slowly moving feature has an EWMA almost as wide as
its bounded score and can hardly alarm on a swing, an hour-to-hour feature a narrow one.
The rank of a return swings wider when volatility is high, so each location EWMA is first
divided by the root of its running variance (an EWMA of the squared score less the squared
EWMA, relative to the calibration's mean square): a change of spread alone moves the spread
channels, not the location ones.

That scale rests on few independent values (``m = n (1 - r) / (1 + r)`` for a path of ``n``
hours with lag-one correlation ``r``), and scores whose spread clusters in time make the EWMA
heavy-tailed, so each standardised EWMA ``Z_c`` is read as a Student-t with ``nu_c`` degrees
of freedom, the smaller of ``m`` and ``4 + 6 / k`` (the t with the path's excess kurtosis
``k``), and mapped to the normal quantile with the same tail. Two statistics watch them:

* **per channel**: the largest of those normal equivalents, alarming at a level ``c1``;
* **breadth**: ``S = mean(Z_c ** 2)`` over its calibration mean, read as ``F(h, m)`` with
  ``h = C^2 / sum(rho^2)`` the effective number of independent channels from the channels'
  correlation matrix (its eigenvalues: ``(sum l)^2 / sum l^2``; Satterthwaite 1946), so that
  correlated features lower ``h`` instead of multiplying evidence, and ``m`` the median
  effective count behind the scales; its normal score alarms at a level ``c2``.

Thresholds come from the expected number of upcrossings per hour (Rice's formula in discrete
time): a stationary Gaussian series with lag-one correlation ``r`` crosses ``c`` upwards with
probability ``P(X_t < c <= X_{t+1})`` per step. Channels whose ``Z`` paths correlate above 0.9
count once (they are one series), the union bound adds the rest, and the budget
``1 / mtbf_hours`` is shared equally by the statistics. With the project's hourly return and
range among the features a third statistic watches volatility conditionally (the hour's
range against a GARCH forecast from the hours before; :mod:`.volatility`), which finds a
volatility jump that the ranks against the reference's marginal law read as one more swing
of a clustered volatility.

The change-time estimate is the hour after the evidence (the largest statistic as a share of
its threshold) was last below its median on the calibration run: a change lifts the EWMAs at
once, so that hour is at or just before the change unless the change began during a long
excursion of the no-drift noise.

The detector is deliberately conservative where the calibration cannot see: scores of the
history are taken against the reference, so a history unlike the reference widens the scales.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> history, reference = rng.normal(size=(336, 3)), rng.normal(size=(336, 3))
>>> detector = SequentialDetector().fit(reference, history=history)
>>> any(detector.update(row) for row in rng.normal(size=(500, 3)))
False
>>> any(detector.update(row) for row in rng.normal(loc=2.0, size=(48, 3)))
True
>>> abs(detector.change_hour - 501) <= 6
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.upcrossings import (
    distinct_series,
    lag_one,
    level_for_rate,
    student_dof,
)
from btcmlops.mlops.drift.volatility import VolatilityChannel, fit_channel

MIN_HISTORY_ROWS = 168  # one week of hourly rows
MIN_REFERENCE_ROWS = 168
MIN_FEATURE_VALUES = 24  # finite reference values a feature needs to be watched
_CALM_QUANTILE = 0.5  # evidence below this quantile of the calibration run is "no change"
_SQRT12 = math.sqrt(12.0)


@dataclass(frozen=True)
class SequentialState:
    """What changes from hour to hour: enough to continue exactly after a restart.

    ``hours`` counts the rows seen since the fit or the last reset; ``alarm_hour`` and
    ``change_hour`` use the same count (None before an alarm); ``calm_hour`` is the last hour
    at which the evidence was below its no-drift median. ``variance`` (the next hour's return
    variance forecast) and ``volatility_ewma`` belong to the volatility channel and are None
    for a fit without one.
    """

    hours: int
    ewma: tuple[float, ...]
    calm_hour: int
    alarm_hour: int | None = None
    change_hour: int | None = None
    second: tuple[float, ...] = ()  # EWMA of the squared scores (location studentizing)
    variance: float | None = None
    volatility_ewma: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "hours": self.hours,
            "ewma": list(self.ewma),
            "calm_hour": self.calm_hour,
            "alarm_hour": self.alarm_hour,
            "change_hour": self.change_hour,
            "second": list(self.second),
            "variance": self.variance,
            "volatility_ewma": self.volatility_ewma,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, object]) -> SequentialState:
        return cls(
            hours=int(payload["hours"]),  # type: ignore[call-overload]
            ewma=tuple(float(v) for v in payload["ewma"]),  # type: ignore[attr-defined]
            calm_hour=int(payload["calm_hour"]),  # type: ignore[call-overload]
            alarm_hour=_optional_int(payload.get("alarm_hour")),
            change_hour=_optional_int(payload.get("change_hour")),
            second=tuple(float(v) for v in payload.get("second", ())),  # type: ignore[attr-defined]
            variance=_optional_float(payload.get("variance")),
            volatility_ewma=_optional_float(payload.get("volatility_ewma")),
        )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Calibration:
    """Everything ``fit`` learns; shared, never changed, by detectors made by ``with_state``."""

    features: tuple[str, ...]
    second_moments: np.ndarray  # calibration mean of each channel's squared score
    located: np.ndarray  # True for location channels (studentized)
    effective: np.ndarray  # independent calibration values behind each channel's scale
    watched: np.ndarray  # indices of the watched features in the input row
    reference: np.ndarray  # (features, n) sorted values, NaN-padded
    deviations: np.ndarray  # (features, n) sorted |value - median|, NaN-padded
    medians: np.ndarray
    counts: np.ndarray  # finite reference values per watched feature
    channels: np.ndarray  # indices into the 2 * features scores that are watched
    scales: np.ndarray  # null standard deviation of each channel's EWMA
    breadth_mean: float
    breadth_dof: float  # h
    breadth_denominator_dof: float  # m, the median effective count of the channels
    channel_threshold: float
    breadth_threshold: float
    calm_level: float = 0.5  # the evidence's median on the calibration run
    distinct_series: int = field(default=0)
    volatility: VolatilityChannel | None = None  # needs the hourly return and range features


class SequentialDetector:
    """Hourly drift detector on rank scores; its threshold targets ``mtbf_hours``.

    Parameters
    ----------
    mtbf_hours:
        The mean time between false alarms the thresholds aim at, in hours (default 2,160:
        90 days). At least 24.
    smoothing:
        The EWMA weight of the newest hour, in (0, 1); the default 0.04 averages about two
        days (``(2 - lambda) / lambda`` hours), which on the benchmark found small shifts
        and the simulator's regime change more often than 0.1 at the same false-alarm rate.
    """

    def __init__(self, mtbf_hours: float = 2160.0, smoothing: float = 0.04) -> None:
        if not (isinstance(mtbf_hours, int | float) and math.isfinite(mtbf_hours)):
            raise InvalidInputError(f"mtbf_hours must be a finite number, got {mtbf_hours!r}")
        if mtbf_hours < 24:
            raise InvalidInputError(f"mtbf_hours must be at least 24, got {mtbf_hours}")
        if not (isinstance(smoothing, int | float) and 0.0 < smoothing < 1.0):
            raise InvalidInputError(f"smoothing must be between 0 and 1, got {smoothing!r}")
        self.mtbf_hours = float(mtbf_hours)
        self.smoothing = float(smoothing)
        self._calibration: _Calibration | None = None
        self._state = SequentialState(hours=0, ewma=(), calm_hour=0)
        self._ewma = np.zeros(0)
        self._second = np.zeros(0)
        self._variance: float | None = None  # the volatility channel's next-hour forecast
        self._volatility_ewma = 0.0
        self.statistic = 0.0  # the latest evidence as a share of its threshold (1 = alarm)

    # ------------------------------------------------------------------------ fitting
    def fit(
        self,
        reference: np.ndarray | object,
        names: Sequence[str] | None = None,
        *,
        history: np.ndarray | object,
    ) -> SequentialDetector:
        """Learn the reference's values and the null scales from ``history`` + ``reference``.

        Both are rows in time order (arrays rows x features, or DataFrames), the history
        before the reference, with at least 168 rows each. NaN marks a missing value; a
        feature with fewer than 24 finite reference values is not watched.
        """
        names, reference_rows = _as_rows(reference, names, "reference")
        _, history_rows = _as_rows(history, names, "history")
        if reference_rows.shape[0] < MIN_REFERENCE_ROWS:
            raise InvalidInputError(
                f"the reference needs at least {MIN_REFERENCE_ROWS} rows (a week of hours), "
                f"got {reference_rows.shape[0]}"
            )
        if history_rows.shape[0] < MIN_HISTORY_ROWS:
            raise InvalidInputError(
                f"the history needs at least {MIN_HISTORY_ROWS} rows (a week of hours) to "
                f"measure the features' memory, got {history_rows.shape[0]}"
            )
        if history_rows.shape[1] != reference_rows.shape[1]:
            raise InvalidInputError(
                f"history has {history_rows.shape[1]} columns, the reference "
                f"{reference_rows.shape[1]}"
            )
        self._calibration = _calibrate(
            tuple(names), reference_rows, history_rows, self.smoothing, self.mtbf_hours
        )
        channel = self._calibration.volatility
        self._variance = None if channel is None else channel.first_variance
        self.reset()
        return self

    # ------------------------------------------------------------------------ running
    def update(self, row: Sequence[float] | np.ndarray) -> bool:
        """Take one hour's feature row (in the fitted column order); True while in alarm."""
        calibration = self._fitted()
        values = np.asarray(row, dtype=float)
        if values.shape != (len(calibration.features),):
            raise InvalidInputError(
                f"expected a row of {len(calibration.features)} values, got shape {values.shape}"
            )
        scores = _scores(calibration, values[None, calibration.watched])[0, calibration.channels]
        self._ewma += self.smoothing * (scores - self._ewma)
        self._second += self.smoothing * (scores**2 - self._second)
        channel = calibration.volatility
        if channel is not None and self._variance is not None:
            score = channel.score(values[channel.range_column], self._variance)
            self._volatility_ewma += channel.smoothing * (score - self._volatility_ewma)
            self._variance = channel.garch.next(self._variance, values[channel.return_column])
        self.statistic = self._evidence()
        state = self._state
        hours = state.hours + 1
        calm_hour = hours if self.statistic < calibration.calm_level else state.calm_hour
        alarm_hour, change_hour = state.alarm_hour, state.change_hour
        if alarm_hour is None and self.statistic >= 1.0:
            alarm_hour, change_hour = hours, calm_hour + 1
        self._state = SequentialState(hours, (), calm_hour, alarm_hour, change_hour)
        return alarm_hour is not None

    def _evidence(self) -> float:
        """The largest statistic as a share of its threshold."""
        calibration = self._fitted()
        studentized = _studentize(calibration, self._ewma, self._second)
        evidence = float(_evidence(calibration, studentized[None, :])[0])
        if calibration.volatility is not None:
            evidence = max(evidence, float(calibration.volatility.evidence(self._volatility_ewma)))
        return evidence

    def reset(self) -> None:
        """Forget the hours seen (keep the fit), as after a retraining. The volatility
        forecast is kept: it describes the market, not the evidence."""
        calibration = self._fitted()
        self._ewma = np.zeros(len(calibration.channels))
        self._second = calibration.second_moments.copy()
        self._volatility_ewma = 0.0
        self._state = SequentialState(hours=0, ewma=(), calm_hour=0)
        self.statistic = 0.0

    @property
    def alarm(self) -> bool:
        return self._state.alarm_hour is not None

    @property
    def alarm_hour(self) -> int | None:
        return self._state.alarm_hour

    @property
    def change_hour(self) -> int | None:
        """The estimated first changed hour (1 = the first row after fit or reset)."""
        return self._state.change_hour

    @property
    def hours(self) -> int:
        return self._state.hours

    @property
    def features(self) -> tuple[str, ...]:
        return self._fitted().features

    @property
    def thresholds(self) -> tuple[float, float]:
        """The per-channel and the breadth thresholds (in Z and normal-score units)."""
        calibration = self._fitted()
        return calibration.channel_threshold, calibration.breadth_threshold

    # ------------------------------------------------------------------------ storage
    def state(self) -> SequentialState:
        """The hour-to-hour state (``to_dict`` makes it JSON)."""
        return SequentialState(
            hours=self._state.hours,
            ewma=tuple(float(v) for v in self._ewma),
            calm_hour=self._state.calm_hour,
            alarm_hour=self._state.alarm_hour,
            change_hour=self._state.change_hour,
            second=tuple(float(v) for v in self._second),
            variance=self._variance,
            volatility_ewma=None if self._variance is None else self._volatility_ewma,
        )

    def with_state(self, state: SequentialState) -> SequentialDetector:
        """A detector with this fit that continues from ``state``."""
        calibration = self._fitted()
        if not len(state.ewma) == len(state.second) == len(calibration.channels):
            raise InvalidInputError(
                f"the state holds {len(state.ewma)} EWMA values and {len(state.second)} "
                f"second moments; this fit watches {len(calibration.channels)} channels"
            )
        with_channel = calibration.volatility is not None
        if with_channel != (state.variance is not None and state.volatility_ewma is not None):
            raise InvalidInputError(
                "the state and this fit disagree on the volatility channel (a state stored "
                "before the channel existed needs a refit)"
            )
        twin = SequentialDetector(self.mtbf_hours, self.smoothing)
        twin._calibration = calibration
        twin._ewma = np.array(state.ewma, dtype=float)
        twin._second = np.array(state.second, dtype=float)
        twin._variance = state.variance
        twin._volatility_ewma = state.volatility_ewma or 0.0
        twin._state = SequentialState(
            state.hours, (), state.calm_hour, state.alarm_hour, state.change_hour
        )
        twin.statistic = twin._evidence()
        return twin

    def _fitted(self) -> _Calibration:
        if self._calibration is None:
            raise InvalidInputError("the detector is not fitted: call fit(reference, history=)")
        return self._calibration


# ---------------------------------------------------------------------------- the kernel
def _as_rows(
    frame: np.ndarray | object, names: Sequence[str] | None, what: str
) -> tuple[list[str], np.ndarray]:
    columns = getattr(frame, "columns", None)
    if columns is not None:
        selected = list(names) if names is not None else [str(c) for c in columns]
        missing = [name for name in selected if name not in columns]
        if missing:
            raise InvalidInputError(f"the {what} lacks column(s) {', '.join(missing)}")
        values = frame[selected].to_numpy(dtype=float)  # type: ignore[index]
    else:
        values = np.asarray(frame, dtype=float)
        if values.ndim != 2:
            raise InvalidInputError(f"the {what} must be rows x features, got {values.ndim}-D")
        selected = (
            list(names) if names is not None else [f"feature_{j}" for j in range(values.shape[1])]
        )
        if len(selected) != values.shape[1]:
            raise InvalidInputError(
                f"{len(selected)} names for the {what}'s {values.shape[1]} columns"
            )
    values = np.where(np.isfinite(values), values, np.nan)
    return selected, values


def _sorted_padded(columns: list[np.ndarray]) -> np.ndarray:
    width = max(len(c) for c in columns)
    padded = np.full((len(columns), width), np.nan)
    for j, column in enumerate(columns):
        padded[j, : len(column)] = np.sort(column)
    return padded


def _uniform_scores(sorted_values: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """sqrt(12) * (mid-rank / (n + 1) - 1/2) of each value; 0 (no evidence) where missing."""
    below = (sorted_values[None, :, :] < rows[:, :, None]).sum(axis=2)
    at_or_below = (sorted_values[None, :, :] <= rows[:, :, None]).sum(axis=2)
    rank = (below + at_or_below) / 2.0 + 0.5
    scores = _SQRT12 * (rank / (counts + 1.0) - 0.5)
    return np.where(np.isnan(rows), 0.0, scores)


def _scores(calibration: _Calibration, rows: np.ndarray) -> np.ndarray:
    """(rows, 2 * features): location scores, then spread scores."""
    location = _uniform_scores(calibration.reference, calibration.counts, rows)
    deviation = np.abs(rows - calibration.medians)
    spread = _uniform_scores(calibration.deviations, calibration.counts, deviation)
    return np.hstack([location, spread])


def _studentize(calibration: _Calibration, ewma: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Location EWMAs over the root of their running variance (relative to the calibration's
    mean square, floored at a quarter): the rank of a return swings with volatility."""
    ratio = np.maximum((second - ewma**2) / calibration.second_moments, 0.25)
    return np.where(calibration.located, ewma / np.sqrt(ratio), ewma)


def _ewma_path(scores: np.ndarray, smoothing: float, start: np.ndarray | None = None) -> np.ndarray:
    path = np.empty_like(scores)
    level = np.zeros(scores.shape[1]) if start is None else start.copy()
    for t in range(scores.shape[0]):
        level += smoothing * (scores[t] - level)
        path[t] = level
    return path


def _breadth(calibration: _Calibration, z: np.ndarray) -> np.ndarray:
    """Normal scores of mean(Z^2) under its fitted F law."""
    statistic = np.mean(z**2, axis=1)
    # F(h, m) rather than chi2_h: the channels' scales rest on about m independent values.
    tail = stats.f.sf(
        statistic / calibration.breadth_mean,
        calibration.breadth_dof,
        calibration.breadth_denominator_dof,
    )
    return stats.norm.isf(np.clip(tail, 1e-300, 1.0))


def _evidence(calibration: _Calibration, ewma: np.ndarray) -> np.ndarray:
    """The larger of the two statistics as a share of its threshold, per row of EWMAs."""
    z = ewma / calibration.scales
    per_channel = _largest_normal_equivalent(np.abs(z), calibration.effective)
    breadth = _breadth(calibration, z) / calibration.breadth_threshold
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


def _calibrate(
    features: tuple[str, ...],
    reference: np.ndarray,
    history: np.ndarray,
    smoothing: float,
    mtbf_hours: float,
) -> _Calibration:
    tables = _reference_tables(features, reference)
    scores = _scores(tables, np.vstack([history, reference])[:, tables.watched])
    # A channel whose score hardly varies (a nearly constant feature) carries no evidence.
    channels = np.flatnonzero(scores.std(axis=0) > 0.1)
    if channels.size == 0:
        raise InvalidInputError("every feature is (nearly) constant in the reference")
    # The false-alarm budget is shared equally by the statistics: per channel, breadth and,
    # with the hourly return and range among the features, the volatility channel.
    volatility = fit_channel(
        features,
        np.vstack([history, reference]),
        smoothing_floor=smoothing,
        rate=1.0 / (3.0 * mtbf_hours),
    )
    budget = 1.0 / ((2.0 if volatility is None else 3.0) * mtbf_hours)
    scaled, path = _fit_scales(tables, scores[:, channels], channels, smoothing)
    thresholded = _fit_thresholds(scaled, path / scaled.scales, budget)
    evidence = _evidence(thresholded, path)
    if volatility is not None:  # both runs end at the last calibration hour
        common = min(evidence.size, volatility.calibration_evidence.size)
        evidence = np.maximum(evidence[-common:], volatility.calibration_evidence[-common:])
    calm_level = float(np.quantile(evidence, _CALM_QUANTILE))
    return replace(thresholded, calm_level=calm_level, volatility=volatility)


def _reference_tables(features: tuple[str, ...], reference: np.ndarray) -> _Calibration:
    """The reference's sorted values and deviations; every channel watched, unit scales."""
    finite = np.isfinite(reference).sum(axis=0)
    watched = np.flatnonzero(finite >= MIN_FEATURE_VALUES)
    if watched.size == 0:
        raise InvalidInputError(
            f"no feature has {MIN_FEATURE_VALUES} finite values in the reference"
        )
    columns = [reference[np.isfinite(reference[:, j]), j] for j in watched]
    medians = np.array([np.median(c) for c in columns])
    channels = 2 * watched.size
    return _Calibration(
        features=features,
        watched=watched,
        reference=_sorted_padded(columns),
        deviations=_sorted_padded([np.abs(c - m) for c, m in zip(columns, medians, strict=True)]),
        medians=medians,
        counts=np.array([len(c) for c in columns], dtype=float),
        channels=np.arange(channels),
        scales=np.ones(channels),
        second_moments=np.ones(channels),
        located=np.zeros(channels, dtype=bool),
        effective=np.full(channels, np.inf),
        breadth_mean=1.0,
        breadth_dof=1.0,
        breadth_denominator_dof=np.inf,
        channel_threshold=1.0,
        breadth_threshold=1.0,
    )


def _fit_scales(
    tables: _Calibration, scores: np.ndarray, channels: np.ndarray, smoothing: float
) -> tuple[_Calibration, np.ndarray]:
    """Each channel's null scale and degrees of freedom from the in-sample EWMA run; returns
    the calibration so far and the run's (studentized) EWMA path after its burn-in."""
    burn_in = min(math.ceil(3.0 / smoothing), scores.shape[0] // 4)
    second_moments = np.mean(scores**2, axis=0)
    studentizing = replace(
        tables,
        channels=channels,
        second_moments=second_moments,
        located=channels < tables.watched.size,
    )
    seconds = _ewma_path(scores**2, smoothing, start=second_moments)
    path = _studentize(studentizing, _ewma_path(scores, smoothing), seconds)[burn_in:]
    iid_scale = math.sqrt(smoothing / (2.0 - smoothing)) * scores.std(axis=0)
    scales = np.maximum(np.sqrt(np.mean(path**2, axis=0)), iid_scale)
    # The RMS of a persistent EWMA over a few weeks rests on few independent values, and
    # scores whose spread clusters in time make it heavy-tailed: a new value over that scale
    # is read as a Student-t, not normal.
    effective = student_dof(path, path / scales)
    return replace(studentizing, scales=scales, effective=effective), path


def _fit_thresholds(scaled: _Calibration, z: np.ndarray, budget: float) -> _Calibration:
    """The breadth's law and both thresholds, ``budget`` false alarms per hour each."""
    correlation = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((1, 1))
    representatives = distinct_series(np.nan_to_num(correlation, nan=0.0))
    channel_threshold = level_for_rate(lag_one(z)[representatives], budget, two_sided=True)
    # The effective number of independent channels from the eigenvalues of their second-moment
    # correlation, (sum l)^2 / sum l^2 = C^2 / sum rho^2; more stable than the variance of
    # the mean Z^2 over a few weeks, and the correlation's sampling noise only lowers it
    # (a heavier tail).
    second = (z.T @ z) / z.shape[0]
    diagonal = np.sqrt(np.diag(second))
    rho = second / np.outer(diagonal, diagonal)
    with_breadth = replace(
        scaled,
        breadth_mean=float(np.mean(z**2)),
        breadth_dof=float(z.shape[1] ** 2 / np.sum(rho**2)),
        breadth_denominator_dof=float(np.median(scaled.effective)),
    )
    breadth_lag_one = lag_one(_breadth(with_breadth, z)[:, None])
    return replace(
        with_breadth,
        channel_threshold=channel_threshold,
        breadth_threshold=level_for_rate(breadth_lag_one, budget, two_sided=False),
        distinct_series=len(representatives),
    )
