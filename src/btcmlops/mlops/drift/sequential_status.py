"""What the hourly sequential drift detector of a feature set reports: its status, its
evidence points and what one hourly run did (``sequential_monitor`` produces them; the
retraining policy, the API and the scheduler read them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, TypedDict

FitState = Literal["fitted", "not_fitted"]
FITTED: Final = "fitted"
NOT_FITTED: Final = "not_fitted"
THRESHOLD = 1.0  # the statistic is the evidence as a share of its threshold


def utc_minute(instant: datetime) -> str:
    """``2024-03-01 17:00 UTC``: an instant as alarms and reasons print it."""
    return f"{instant:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class FitWindows:
    """The rows a fit reads: history ``[history_start, reference_start)``, then the reference
    ``[reference_start, reference_end)``."""

    history_start: datetime
    reference_start: datetime
    reference_end: datetime


@dataclass(frozen=True)
class SequentialStatus:
    """Where a feature set's hourly detector stands: fitted (with its latest evidence and any
    alarm) or not, and why not."""

    feature_set: str
    status: FitState
    mtbf_hours: float
    smoothing: float
    reason: str | None = None  # why it is not fitted
    fitted_at: datetime | None = None
    fit_reason: str | None = None
    windows: FitWindows | None = None
    last_hour: datetime | None = None  # the newest feature row it has seen
    statistic: float | None = None  # the latest evidence as a share of its threshold
    alarm_at: datetime | None = None  # the feature row at which the alarm went off
    change_at: datetime | None = None  # the estimated first changed feature row

    @property
    def alarm(self) -> bool:
        return self.alarm_at is not None

    def alarm_words(self) -> str:
        """``alarmed at 2024-03-01 17:00 UTC (change estimated at 2024-03-01 09:00 UTC)``."""
        if self.alarm_at is None:
            return "quiet"
        change = f" (change estimated at {utc_minute(self.change_at)})" if self.change_at else ""
        return f"alarmed at {utc_minute(self.alarm_at)}{change}"


@dataclass(frozen=True)
class EvidencePoint:
    """The detector's evidence after the feature row of ``hour``."""

    hour: datetime
    statistic: float
    alarm: bool


class NotFittedDetail(TypedDict):
    status: Literal["not_fitted"]
    reason: str | None


class AdvancedDetail(TypedDict):
    status: Literal["fitted"]
    rows: int
    statistic: float | None
    alarm: bool
    refitted: str | None


@dataclass(frozen=True)
class HourlyUpdate:
    """What one run of the hourly job did for a feature set."""

    status: SequentialStatus
    rows: int = 0  # feature rows fed to the detector
    refitted: str | None = None  # why it was (re)fitted in this run
    alarm_started: bool = False

    def as_detail(self) -> NotFittedDetail | AdvancedDetail:
        """The job run's numbers (``job_runs.detail``)."""
        status = self.status
        if status.status == NOT_FITTED:
            return {"status": NOT_FITTED, "reason": status.reason}
        return {
            "status": FITTED,
            "rows": self.rows,
            "statistic": status.statistic,
            "alarm": status.alarm,
            "refitted": self.refitted,
        }
