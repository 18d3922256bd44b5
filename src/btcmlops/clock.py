"""Where time comes from.

Every time-dependent part takes a :class:`Clock` instead of calling ``datetime.now()``, so
the demo and the tests replay days of history in seconds through the code that runs live.
All datetimes in btcmlops are timezone-aware UTC.

>>> clock = ManualClock(parse_utc("2024-03-01T10:30:00Z"))
>>> clock.now().isoformat()
'2024-03-01T10:30:00+00:00'
>>> clock.advance(hours=1).isoformat()
'2024-03-01T11:30:00+00:00'
>>> floor_hour(clock.now()).isoformat()
'2024-03-01T11:00:00+00:00'
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from btcmlops.errors import InvalidInputError

HOUR = timedelta(hours=1)


@runtime_checkable
class Clock(Protocol):
    """Something that says what time it is, in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock pinned to one instant (``BTCMLOPS_NOW`` or ``--as-of``)."""

    def __init__(self, instant: datetime) -> None:
        self._instant = ensure_utc(instant)

    def now(self) -> datetime:
        return self._instant

    def __repr__(self) -> str:
        return f"FixedClock({self._instant.isoformat()})"


class ManualClock:
    """A pinned clock that its owner moves forward, used to replay history hour by hour.

    Thread-safe: the replay loop advances it while API threads read it.
    """

    def __init__(self, instant: datetime) -> None:
        self._instant = ensure_utc(instant)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._instant

    def set(self, instant: datetime) -> datetime:
        instant = ensure_utc(instant)
        with self._lock:
            if instant < self._instant:
                raise ValueError(
                    f"a replay clock only moves forward: {instant.isoformat()} is before "
                    f"{self._instant.isoformat()}"
                )
            self._instant = instant
            return instant

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._instant = self._instant + timedelta(**delta)
            return self._instant

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


def ensure_utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime; naive values are taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour that contains ``moment``."""
    return ensure_utc(moment).replace(minute=0, second=0, microsecond=0)


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 instant (``Z`` suffix allowed; naive means UTC)."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        return ensure_utc(datetime.fromisoformat(cleaned))
    except ValueError as exc:
        raise InvalidInputError(
            f"not an ISO-8601 date-time: {text!r} (expected e.g. 2024-03-01T10:00:00Z)"
        ) from exc
