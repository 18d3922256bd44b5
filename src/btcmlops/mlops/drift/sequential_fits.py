"""A fit of the sequential detector, as stored and as running in memory.

The current fit's head row (its position, and whether a retraining after its alarm or a
rollback came since), what that retraining or rollback was, in words, and the Core
statements of the hourly path that read the head and move the fit on. Used by
:class:`~btcmlops.mlops.drift.sequential_monitor.SequentialMonitor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from btcmlops.db.models import (
    DECISION_ONLY_TRIGGERS,
    ChampionChange,
    RetrainingRun,
    SequentialDetectorFit,
    SequentialPoint,
)
from btcmlops.db.store import Store
from btcmlops.mlops.drift.sequential import SequentialDetector
from btcmlops.mlops.drift.sequential_status import (
    FITTED,
    FitWindows,
    SequentialStatus,
    utc_minute,
)
from btcmlops.modeling.registry import ROLLBACK


@dataclass(frozen=True)
class FitHead:
    """The current fit's position, and whether a retraining or a rollback came after it."""

    feature_set: str
    fit_id: int
    last_hour: datetime
    fitted_at: datetime
    retrained_since: bool
    rolled_back_since: bool


@dataclass(frozen=True)
class RunningFit:
    """A fitted detector kept in memory between hours, and the stored fit it continues."""

    feature_set: str
    fit_id: int
    detector: SequentialDetector
    fitted_at: datetime
    fit_reason: str
    windows: FitWindows
    last_hour: datetime
    alarm_at: datetime | None = None
    change_at: datetime | None = None

    def continues(self, head: FitHead) -> bool:
        return (self.fit_id, self.last_hour) == (head.fit_id, head.last_hour)

    def status(self) -> SequentialStatus:
        detector = self.detector
        return SequentialStatus(
            feature_set=self.feature_set,
            status=FITTED,
            mtbf_hours=detector.mtbf_hours,
            smoothing=detector.smoothing,
            fitted_at=self.fitted_at,
            fit_reason=self.fit_reason,
            windows=self.windows,
            last_hour=self.last_hour,
            statistic=float(detector.statistic),
            alarm_at=self.alarm_at,
            change_at=self.change_at,
        )


def windows_of(fit: SequentialDetectorFit) -> FitWindows:
    """The history and reference windows a stored fit was fitted on."""
    return FitWindows(fit.history_start, fit.reference_start, fit.reference_end)


def acted_on(store: Store, head: FitHead) -> str:
    """The retraining after the alarm, or else the rollback, since the fit, in words (read
    only when there is one)."""
    feature_set = head.feature_set
    with store.session() as session:
        if head.retrained_since:
            retrained = session.execute(
                select(RetrainingRun.model_type, RetrainingRun.decision, RetrainingRun.finished_at)
                .where(
                    RetrainingRun.feature_set == feature_set,
                    RetrainingRun.status == "succeeded",
                    RetrainingRun.trigger.not_in(DECISION_ONLY_TRIGGERS),
                    RetrainingRun.finished_at >= head.fitted_at,
                )
                .order_by(RetrainingRun.finished_at.desc())
                .limit(1)
            ).one()
            return (
                f"retraining of {feature_set}/{retrained.model_type} finished at "
                f"{utc_minute(retrained.finished_at)} ({retrained.decision})"
            )
        rolled_back = session.execute(
            select(ChampionChange.model_type, ChampionChange.changed_at)
            .where(
                ChampionChange.feature_set == feature_set,
                ChampionChange.action.like("%" + ROLLBACK),
                ChampionChange.changed_at >= head.fitted_at,
            )
            .order_by(ChampionChange.changed_at.desc())
            .limit(1)
        ).one()
    return (
        f"rollback of {feature_set}/{rolled_back.model_type} at "
        f"{utc_minute(rolled_back.changed_at)}"
    )


# The hourly path's statements, built once: building and compiling them each hour cost more
# than running them. Core, not ORM: the rows are plain, the ORM layer would cost more too.
_FITS = SequentialDetectorFit.__table__
CURRENT_FIT = (
    select(
        _FITS.c.id,
        _FITS.c.last_hour,
        _FITS.c.fitted_at,
        select(RetrainingRun.id)
        .where(
            RetrainingRun.feature_set == _FITS.c.feature_set,
            RetrainingRun.status == "succeeded",
            RetrainingRun.trigger.not_in(DECISION_ONLY_TRIGGERS),
            # ">=": a run finished at the very instant of the fit (one replayed hour) ran
            # after it
            RetrainingRun.finished_at >= _FITS.c.fitted_at,
            # only a run after the alarm acted on it: a retraining for another reason (the
            # schedule, the performance check) leaves a quiet detector's reference alone
            _FITS.c.alarm_at.is_not(None),
            RetrainingRun.finished_at >= _FITS.c.alarm_at,
        )
        .exists(),
        select(ChampionChange.id)
        .where(
            ChampionChange.feature_set == _FITS.c.feature_set,
            ChampionChange.action.like("%" + ROLLBACK),
            ChampionChange.changed_at >= _FITS.c.fitted_at,
        )
        .exists(),
    )
    .where(_FITS.c.feature_set == bindparam("feature_set"))
    .order_by(_FITS.c.id.desc())
    .limit(1)
)
ADVANCE_FIT = (
    update(_FITS)
    .where(_FITS.c.id == bindparam("fit_id"), _FITS.c.last_hour == bindparam("seen_until"))
    .values(
        state=bindparam("new_state"),
        last_hour=bindparam("new_last_hour"),
        updated_at=bindparam("new_updated_at"),
        statistic=bindparam("new_statistic"),
        alarm_at=bindparam("new_alarm_at"),
        change_at=bindparam("new_change_at"),
    )
)
ADD_POINTS = insert(SequentialPoint.__table__)
