"""The hourly sequential drift detector of each feature set, run on the store's feature rows.

Every hour (the scheduler's ``sequential_drift`` job, after the features are built) each
feature set's :class:`~btcmlops.mlops.drift.sequential.SequentialDetector` takes the
monitored features of every feature row built since the last one it saw, in time order.

* **Fit.** On the latest ``drift_sequential_fit_days`` of feature rows (the reference) and as
  many days before them (the history). A younger store is fitted once it holds two weeks,
  split in half (up to ``fit_days`` each): the detector needs a week in each window.
* **Refit** on the latest rows, resetting the alarm, after a retraining run of any pair of the
  feature set has finished after an alarm (deployed or not: the alarm has been acted on; a
  retraining while the detector is quiet leaves its reference alone), after a rollback
  of one of its champions, and when the mean time between false alarms or the monitored
  features change. Until then an alarm stays latched.
* **Store.** Each fit is a ``sequential_detectors`` row with its windows, parameters and
  state; each fed row a ``sequential_points`` row. The calibration is not stored: the fit is
  deterministic, so a restarted process refits on the rows of ``[history_start,
  reference_end)`` and continues from the stored state (``with_state``). The fitted detector
  stays in memory between hours; an hour costs one small read and one small write.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select

from btcmlops.clock import HOUR, Clock, floor_hour
from btcmlops.config import Settings
from btcmlops.db.models import FeatureRow, SequentialDetectorFit, SequentialPoint
from btcmlops.db.store import Store
from btcmlops.errors import ConflictError, InvalidInputError
from btcmlops.features.frames import feature_matrix, feature_rows_query, load_feature_frame
from btcmlops.features.schema import (
    FEATURE_VERSION,
    monitored_feature_names,
    validate_feature_set,
)
from btcmlops.mlops.drift.sequential import SequentialDetector, SequentialState
from btcmlops.mlops.drift.sequential_fits import (
    ADD_POINTS,
    ADVANCE_FIT,
    CURRENT_FIT,
    FitHead,
    RunningFit,
    acted_on,
    windows_of,
)
from btcmlops.mlops.drift.sequential_status import (
    FITTED,
    NOT_FITTED,
    EvidencePoint,
    FitWindows,
    HourlyUpdate,
    SequentialStatus,
    utc_minute,
)

log = logging.getLogger(__name__)

FIRST_FIT = "first fit"
MIN_WINDOW_DAYS = 7  # the detector needs a week of hourly rows in its history and reference
DAY = timedelta(days=1)


class SequentialMonitor:
    """The hourly sequential detector of every feature set, its fits and points in the store."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self._running: dict[str, RunningFit] = {}
        self._lock = threading.Lock()  # one hourly run at a time per process

    @property
    def mtbf_hours(self) -> float:
        return self.settings.drift_sequential_mtbf_days * 24.0

    # ------------------------------------------------------------------ the hourly job
    def advance(self, feature_set: str) -> HourlyUpdate:
        """Fit or refit the feature set's detector when due, then feed it the feature rows
        built since the last one it saw."""
        feature_set = validate_feature_set(feature_set)
        with self._lock:
            running = self._running.get(feature_set)
            head, new_rows = self._read_hour(feature_set, running)
            stored = None  # the stored fit, read when memory does not hold it at its hour
            if head is None:
                why: str | None = FIRST_FIT
            elif running is not None and running.continues(head):
                detector = running.detector
                why = self._refit_reason(
                    head, FEATURE_VERSION, detector.features, detector.mtbf_hours
                )
            else:
                stored = self._stored_fit(head.fit_id)
                why = self._refit_reason(
                    head, stored.feature_version, stored.features, stored.mtbf_hours
                )
            if why is not None:
                fitted = self._fit(feature_set, why)
                if not isinstance(fitted, str):
                    return self._feed(fitted, refitted=why)
                if head is None:
                    return HourlyUpdate(self._not_fitted(feature_set, fitted))
                log.warning("refit of the %s detector failed (%s): %s", feature_set, why, fitted)
            if stored is None:
                assert running is not None
                return self._feed(running, refitted=None, rows=new_rows)
            restored, refitted = self._restore(stored)
            return self._feed(restored, refitted=refitted)

    def _read_hour(
        self, feature_set: str, running: RunningFit | None
    ) -> tuple[FitHead | None, Sequence[Any] | None]:
        """One read: the current fit's position, whether it is due for a refit, and the
        feature rows after the last hour of the detector in memory (if one is)."""
        with self.store.session() as session:
            connection = session.connection()  # Core: the ORM layer costs more than the read
            row = connection.execute(CURRENT_FIT, {"feature_set": feature_set}).first()
            new_rows = None
            if running is not None:
                new_rows = connection.execute(self._rows_after(running)).all()
        return (None if row is None else FitHead(feature_set, *row)), new_rows

    def _rows_after(self, running: RunningFit) -> Select[tuple[datetime, dict[str, Any]]]:
        """The feature rows the detector has not seen whose bar has closed."""
        return feature_rows_query(
            running.feature_set,
            FEATURE_VERSION,
            start=running.last_hour + HOUR,
            end=floor_hour(self.clock.now()),
        )

    def _stored_fit(self, fit_id: int) -> SequentialDetectorFit:
        with self.store.session() as session:
            fit = session.get(SequentialDetectorFit, fit_id)
        assert fit is not None, f"sequential detector fit {fit_id} vanished"
        return fit

    def _refit_reason(
        self, head: FitHead, feature_version: str, features: Sequence[str], mtbf_hours: float
    ) -> str | None:
        """Why the current fit must be replaced, or None while it stands."""
        monitored = monitored_feature_names(head.feature_set)
        if feature_version != FEATURE_VERSION or list(features) != monitored:
            return "the monitored features changed"
        if not math.isclose(mtbf_hours, self.mtbf_hours):
            return (
                f"the mean time between false alarms changed from {mtbf_hours / 24:g} to "
                f"{self.mtbf_hours / 24:g} days"
            )
        if self.clock.now() <= head.fitted_at:
            return None  # a fit is never replaced at its own instant (a pinned clock)
        if head.retrained_since or head.rolled_back_since:
            return acted_on(self.store, head)
        return None

    def _restore(self, fit: SequentialDetectorFit) -> tuple[RunningFit, str | None]:
        """The stored fit refitted on its own rows and continued from its state; when that
        fails (its rows changed), a new fit, with why."""
        detector = SequentialDetector(fit.mtbf_hours, fit.smoothing)
        windows = windows_of(fit)
        try:
            self._calibrate(detector, fit.feature_set, list(fit.features), windows)
            detector = detector.with_state(SequentialState.from_dict(fit.state))
        except InvalidInputError as exc:
            why = f"the stored detector could not be restored: {exc}"
            fitted = self._fit(fit.feature_set, why)
            if isinstance(fitted, str):
                raise InvalidInputError(
                    f"the {fit.feature_set} detector can be neither restored nor refitted: {fitted}"
                ) from exc
            return fitted, why
        running = RunningFit(
            feature_set=fit.feature_set,
            fit_id=fit.id,
            detector=detector,
            fitted_at=fit.fitted_at,
            fit_reason=fit.fit_reason,
            windows=windows,
            last_hour=fit.last_hour,
            alarm_at=fit.alarm_at,
            change_at=fit.change_at,
        )
        self._running[fit.feature_set] = running
        return running, None

    # ------------------------------------------------------------------ fitting
    def _fit(self, feature_set: str, why: str) -> RunningFit | str:
        """A new fit on the latest rows, stored; or why there is none."""
        windows = self.fit_windows(feature_set)
        if isinstance(windows, str):
            return windows
        features = monitored_feature_names(feature_set)
        detector = SequentialDetector(mtbf_hours=self.mtbf_hours)  # the detector's smoothing
        try:
            self._calibrate(detector, feature_set, features, windows)
        except InvalidInputError as exc:
            return (
                f"cannot fit on the feature rows of {utc_minute(windows.history_start)} to "
                f"{utc_minute(windows.reference_end)}: {exc}"
            )
        now = self.clock.now()
        last_hour = windows.reference_end - HOUR
        fit = SequentialDetectorFit(
            feature_set=feature_set,
            feature_version=FEATURE_VERSION,
            features=features,
            fitted_at=now,
            fit_reason=why,
            history_start=windows.history_start,
            reference_start=windows.reference_start,
            reference_end=windows.reference_end,
            mtbf_hours=detector.mtbf_hours,
            smoothing=detector.smoothing,
            state=detector.state().to_dict(),
            last_hour=last_hour,
            updated_at=now,
            statistic=float(detector.statistic),
        )
        with self.store.session() as session:
            session.add(fit)
            session.flush()
            fit_id = fit.id
        running = RunningFit(feature_set, fit_id, detector, now, why, windows, last_hour)
        self._running[feature_set] = running
        return running

    def fit_windows(self, feature_set: str) -> FitWindows | str:
        """The windows a fit now would read, or why there are not enough rows for one."""
        end = floor_hour(self.clock.now())  # rows whose bar has closed
        with self.store.session() as session:
            first, last = session.execute(
                select(func.min(FeatureRow.ts), func.max(FeatureRow.ts)).where(
                    FeatureRow.feature_set == feature_set,
                    FeatureRow.feature_version == FEATURE_VERSION,
                    FeatureRow.ts < end,
                )
            ).one()
        needed = f"needs {2 * MIN_WINDOW_DAYS} days of feature rows"
        if first is None:
            return f"{needed}; the store holds none"
        stop = last + HOUR
        fit_span = timedelta(days=self.settings.drift_sequential_fit_days)
        held = stop - max(first, stop - 2 * fit_span)
        half = min(fit_span, HOUR * ((held // HOUR) // 2))
        if half < timedelta(days=MIN_WINDOW_DAYS):
            return f"{needed}; the store holds {(stop - first) / DAY:.1f}"
        return FitWindows(stop - 2 * half, stop - half, stop)

    def _calibrate(
        self,
        detector: SequentialDetector,
        feature_set: str,
        features: list[str],
        windows: FitWindows,
    ) -> None:
        frame = load_feature_frame(
            self.store,
            feature_set,
            FEATURE_VERSION,
            features,
            start=windows.history_start,
            end=windows.reference_end,
        )
        in_reference = frame.index >= windows.reference_start
        detector.fit(frame[in_reference], features, history=frame[~in_reference])

    # ------------------------------------------------------------------ feeding
    def _feed(
        self, running: RunningFit, *, refitted: str | None, rows: Sequence[Any] | None = None
    ) -> HourlyUpdate:
        """Update the detector with the new feature rows (read now unless given), in time
        order, and store where it got to."""
        detector = running.detector
        if rows is None:
            with self.store.session() as session:
                rows = session.connection().execute(self._rows_after(running)).all()
        hours, values = feature_matrix(rows, detector.features)
        hours_before, alarmed_before = detector.hours, detector.alarm
        points = []
        try:
            for hour, row in zip(hours, values, strict=True):
                alarm = detector.update(row)
                points.append(EvidencePoint(hour, float(detector.statistic), alarm))
            started = detector.alarm and not alarmed_before
            if points:
                if started:
                    running = self._with_alarm(running, points, hours_before)
                running = self._store_hour(running, points)
        except BaseException:
            # the detector moved on in memory but not in the store: it is reloaded next run
            self._running.pop(running.feature_set, None)
            raise
        return HourlyUpdate(
            running.status(), rows=len(points), refitted=refitted, alarm_started=started
        )

    def _with_alarm(
        self, running: RunningFit, points: list[EvidencePoint], hours_before: int
    ) -> RunningFit:
        """The alarm and estimated change hours as the feature rows' own hours."""
        detector = running.detector
        assert detector.alarm_hour is not None and detector.change_hour is not None
        alarm_at = points[detector.alarm_hour - hours_before - 1].hour
        change = detector.change_hour
        if change > hours_before:
            change_at: datetime | None = points[change - hours_before - 1].hour
        else:  # fed in an earlier hour: the change-th stored point of this fit
            with self.store.session() as session:
                change_at = session.scalar(
                    select(SequentialPoint.hour)
                    .where(SequentialPoint.detector_id == running.fit_id)
                    .order_by(SequentialPoint.hour)
                    .offset(change - 1)
                    .limit(1)
                )
        return replace(running, alarm_at=alarm_at, change_at=change_at)

    def _store_hour(self, running: RunningFit, points: list[EvidencePoint]) -> RunningFit:
        """One write: the fit's state moves to the newest point, the points are added. The
        update is conditional on the stored last hour, so two processes cannot both feed it."""
        detector, feature_set = running.detector, running.feature_set
        last_hour = points[-1].hour
        with self.store.session() as session:
            connection = session.connection()
            moved = connection.execute(
                ADVANCE_FIT,
                {
                    "fit_id": running.fit_id,
                    "seen_until": running.last_hour,
                    "new_state": detector.state().to_dict(),
                    "new_last_hour": last_hour,
                    "new_updated_at": self.clock.now(),
                    "new_statistic": float(detector.statistic),
                    "new_alarm_at": running.alarm_at,
                    "new_change_at": running.change_at,
                },
            ).rowcount
            if moved != 1:
                raise ConflictError(
                    f"the {feature_set} sequential detector was moved past "
                    f"{utc_minute(running.last_hour)} elsewhere; it is reloaded from the store "
                    "at the next run"
                )
            connection.execute(
                ADD_POINTS,
                [
                    {
                        "feature_set": feature_set,
                        "detector_id": running.fit_id,
                        "hour": point.hour,
                        "statistic": point.statistic,
                        "alarm": point.alarm,
                    }
                    for point in points
                ],
            )
        running = replace(running, last_hour=last_hour)
        self._running[feature_set] = running
        return running

    # ------------------------------------------------------------------ reading
    def status(self, feature_set: str) -> SequentialStatus:
        """The current fit of the feature set with its latest evidence, or why there is none."""
        feature_set = validate_feature_set(feature_set)
        with self.store.session() as session:
            fit = session.scalar(
                select(SequentialDetectorFit)
                .where(SequentialDetectorFit.feature_set == feature_set)
                .order_by(SequentialDetectorFit.id.desc())
                .limit(1)
            )
        if fit is None:
            windows = self.fit_windows(feature_set)
            reason = (
                windows
                if isinstance(windows, str)
                else "enough feature rows are stored: the hourly job (hh:06) fits it at its "
                "next run"
            )
            return self._not_fitted(feature_set, reason)
        return SequentialStatus(
            feature_set=feature_set,
            status=FITTED,
            mtbf_hours=fit.mtbf_hours,
            smoothing=fit.smoothing,
            fitted_at=fit.fitted_at,
            fit_reason=fit.fit_reason,
            windows=windows_of(fit),
            last_hour=fit.last_hour,
            statistic=fit.statistic,
            alarm_at=fit.alarm_at,
            change_at=fit.change_at,
        )

    def points(self, feature_set: str, days: float) -> list[EvidencePoint]:
        """The evidence after each feature row of the last ``days`` (every fit), oldest first."""
        feature_set = validate_feature_set(feature_set)
        since = floor_hour(self.clock.now()) - timedelta(days=days)
        with self.store.session() as session:
            rows = session.execute(
                select(SequentialPoint.hour, SequentialPoint.statistic, SequentialPoint.alarm)
                .where(SequentialPoint.feature_set == feature_set, SequentialPoint.hour >= since)
                .order_by(SequentialPoint.hour, SequentialPoint.id)
            ).all()
        return [EvidencePoint(hour, statistic, alarm) for hour, statistic, alarm in rows]

    def _not_fitted(self, feature_set: str, reason: str) -> SequentialStatus:
        return SequentialStatus(
            feature_set=feature_set,
            status=NOT_FITTED,
            mtbf_hours=self.mtbf_hours,
            smoothing=SequentialDetector().smoothing,  # what a fit would use
            reason=reason,
        )
