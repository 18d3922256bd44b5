"""The one label definition, used to train models and to resolve live outcomes.

The target for hour ``t`` is ``close(t + 1h) > close(t)`` on hourly bars keyed by their UTC
start. Decisions, documented in ``docs/features.md``:

* **Ties** (``close(t + 1h) == close(t)``) are *down* (0): the question the model answers is
  "will the price go up?", and an unchanged price did not go up.
* **Missing bars**: if the bar at ``t`` or at ``t + 1h`` is missing, the target is unknown
  (NaN in training, so the row is not used; still pending for a live outcome). Nothing is
  interpolated or taken from a later bar.

>>> import pandas as pd
>>> hours = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
>>> closes = pd.Series([100.0, 101.0, 101.0, 99.0], index=hours)
>>> direction_targets(closes).tolist()
[1.0, 0.0, 0.0, nan]
"""

from __future__ import annotations

import pandas as pd

UP = 1
DOWN = 0


def direction(close_now: float, close_next: float) -> int:
    """1 if the price rose over the hour, else 0 (ties are 0)."""
    return UP if close_next > close_now else DOWN


def direction_targets(closes: pd.Series) -> pd.Series:
    """Targets for every hour of ``closes`` (a Series indexed by UTC hour starts).

    Uses the bar exactly one hour later by timestamp, never "the next row": across a gap in
    the data the target is NaN.
    """
    closes = closes.sort_index()
    following = closes.reindex(closes.index + pd.Timedelta(hours=1)).to_numpy()
    targets = pd.Series((following > closes.to_numpy()).astype(float), index=closes.index)
    targets[pd.isna(following)] = float("nan")
    return targets
