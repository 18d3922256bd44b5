"""Calendar features of the instant a row is computed at (``t + 1h``, the hour being predicted).

Bitcoin trades around the clock, but the people and desks that move it keep office hours.
Sessions are fixed UTC ranges on weekdays (no daylight-saving shifts, no holidays): they are
coarse markers of who is awake, not exchange calendars.

>>> grid = HourlyGrid(first_hour=0, length=2)  # 1970-01-01 00:00 and 01:00 UTC, a Thursday
>>> features = compute_calendar_features(grid)
>>> features["hour_of_day"].tolist(), features["day_of_week"].tolist()
([1.0, 2.0], [3.0, 3.0])
"""

from __future__ import annotations

import numpy as np

from btcmlops.features.windows import Array, HourlyGrid, Slots, pick

_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)

# (first hour, end hour) in UTC, weekdays only.
SESSIONS_UTC: dict[str, tuple[int, int]] = {
    "session_asia": (0, 8),
    "session_europe": (7, 16),
    "session_us": (13, 21),
    "session_europe_us_overlap": (13, 16),
}


def compute_calendar_features(grid: HourlyGrid, *, at: Slots = None) -> dict[str, Array]:
    """Hour, weekday, their cyclic encodings and session flags at the slots ``at`` of ``grid``
    (default: every hour of it)."""
    as_of_hours = pick(grid.hours(), at) + 1
    hour = as_of_hours % 24
    weekday = (as_of_hours // 24 + _EPOCH_WEEKDAY) % 7
    weekend = weekday >= 5
    features: dict[str, Array] = {
        "hour_of_day": hour.astype(float),
        "day_of_week": weekday.astype(float),
        "hour_sin": np.sin(2.0 * np.pi * hour / 24.0),
        "hour_cos": np.cos(2.0 * np.pi * hour / 24.0),
        "dow_sin": np.sin(2.0 * np.pi * weekday / 7.0),
        "dow_cos": np.cos(2.0 * np.pi * weekday / 7.0),
        "is_weekend": weekend.astype(float),
    }
    for name, (first, end) in SESSIONS_UTC.items():
        features[name] = ((hour >= first) & (hour < end) & ~weekend).astype(float)
    return features
