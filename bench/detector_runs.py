"""Running the project's own detectors over a benchmark stream (bench/detectors.py).

Both return the stream rows (hours) at which they alarmed, and the seconds spent:

* the sequential detector (``btcmlops.mlops.drift.sequential``), fitted on the stream's
  ``before`` rows (28 days of history, then the 28-day reference) and, in
  ``run_sequential_refitting``, refitted on the latest rows after each alarm as after a
  retraining (``BTCMLOPS_BENCH_SMOOTHING`` overrides its smoothing, for experiments);
* the daily batch check as the service runs it (``compare_features`` with the settings'
  windows: the last 2 days against the 7 before, history the 21 days before those), once a
  day; an alarm is a severity of medium or high.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from btcmlops.mlops.drift.feature_drift import compare_features
from btcmlops.mlops.drift.sequential import SequentialDetector
from detector_streams import HOURS_PER_DAY, Stream

REFERENCE_DAYS = 28
SMOOTHING = float(os.environ.get("BTCMLOPS_BENCH_SMOOTHING", "0.04"))
CURRENT_DAYS, BATCH_REFERENCE_DAYS, BATCH_HISTORY_DAYS = 2, 7, 21


def fit_sequential(stream: Stream, *, mtbf_hours: float = 2160.0) -> SequentialDetector:
    split = stream.before.shape[0] - REFERENCE_DAYS * HOURS_PER_DAY
    return SequentialDetector(mtbf_hours=mtbf_hours, smoothing=SMOOTHING).fit(
        stream.before[split:], stream.names, history=stream.before[:split]
    )


def run_sequential(
    stream: Stream, *, stop_at_first: bool = False
) -> tuple[list[int], float, list[int]]:
    """Alarm rows, seconds per update, and each alarm's estimated change row (one fit)."""
    detector = fit_sequential(stream)
    alarms, changes = [], []
    started = time.perf_counter()
    offset = 0  # the stream row of the detector's hour 0
    for t, row in enumerate(stream.rows):
        if detector.update(row):
            alarms.append(t)
            changes.append(offset + (detector.change_hour or 1) - 1)
            if stop_at_first:
                break
            detector.reset()
            offset = t + 1
    seconds = (time.perf_counter() - started) / max(
        (len(alarms) and alarms[-1] + 1) or len(stream.rows), 1
    )
    return alarms, seconds, changes


def run_sequential_refitting(
    stream: Stream, before_days: int
) -> tuple[list[int], float, list[int]]:
    """The sequential detector, refitted on the latest ``before_days`` after each alarm, as a
    retraining would."""
    alarms: list[int] = []
    changes: list[int] = []
    spent, hours, start = 0.0, 0, 0
    while start < stream.rows.shape[0]:
        seen = np.vstack([stream.before, stream.rows[:start]])
        window = replace(
            stream, before=seen[-before_days * HOURS_PER_DAY :], rows=stream.rows[start:]
        )
        found, seconds, estimated = run_sequential(window, stop_at_first=True)
        used = found[0] + 1 if found else window.rows.shape[0]
        spent, hours = spent + seconds * used, hours + used
        if not found:
            break
        alarms.append(start + found[0])
        changes.append(start + estimated[0])
        start += used
    return alarms, spent / max(hours, 1), changes


def run_batch(stream: Stream, *, hours: int | None = None) -> tuple[list[int], float]:
    """Alarm rows (the last row of each alarming check's window) and seconds per check."""
    everything = np.vstack([stream.before, stream.rows])
    first = stream.before.shape[0]
    last = first + (stream.rows.shape[0] if hours is None else hours)
    frame = pd.DataFrame(everything, columns=stream.names)
    alarms, spent, checks = [], 0.0, 0
    for end in range(first + HOURS_PER_DAY, last + 1, HOURS_PER_DAY):
        split = end - CURRENT_DAYS * HOURS_PER_DAY
        start = split - BATCH_REFERENCE_DAYS * HOURS_PER_DAY
        history_start = max(0, start - BATCH_HISTORY_DAYS * HOURS_PER_DAY)
        started = time.perf_counter()
        result = compare_features(
            frame.iloc[start:split],
            frame.iloc[split:end],
            stream.names,
            history=frame.iloc[history_start:start],
        )
        spent += time.perf_counter() - started
        checks += 1
        if result.drift_severity in ("medium", "high"):
            alarms.append(end - 1 - first)
    return alarms, spent / max(checks, 1)
