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
from dataclasses import dataclass

import numpy as np

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.sequential_calibration import Calibration, calibrate
from btcmlops.mlops.drift.sequential_evidence import rank_scores, relative_evidence, studentize

MIN_HISTORY_ROWS = 168  # one week of hourly rows
MIN_REFERENCE_ROWS = 168


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
        self._calibration: Calibration | None = None
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
        self._calibration = calibrate(
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
        scores = rank_scores(calibration, values[None, calibration.watched])[
            0, calibration.channels
        ]
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
        studentized = studentize(calibration, self._ewma, self._second)
        evidence = float(relative_evidence(calibration, studentized[None, :])[0])
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

    def _fitted(self) -> Calibration:
        if self._calibration is None:
            raise InvalidInputError("the detector is not fitted: call fit(reference, history=)")
        return self._calibration


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
