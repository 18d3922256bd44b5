"""Time Evidently's DataDriftPreset on two Parquet files and print one JSON line.

Run by bench/drift.py in an interpreter that has Evidently (a bench-only extra, kept out of
the project's environment); it imports nothing from btcmlops. The timed part reads both
files and runs the report, as ``btcmlops drift compare`` reads and compares.

usage: python bench/evidently_drift.py REFERENCE.parquet CURRENT.parquet [REPEATS]
"""

from __future__ import annotations

import json
import sys
import time


def run_report(reference_path: str, current_path: str) -> tuple[float, int | None]:
    import pandas as pd

    try:  # Evidently >= 0.7
        from evidently import Report
        from evidently.presets import DataDriftPreset

        legacy = False
    except ImportError:  # Evidently 0.4-0.6
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report

        legacy = True

    started = time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    report = Report([DataDriftPreset()]) if not legacy else Report(metrics=[DataDriftPreset()])
    outcome = report.run(reference_data=reference, current_data=current)
    seconds = time.perf_counter() - started
    return seconds, drifted_columns(outcome if not legacy else report)


def drifted_columns(outcome) -> int | None:
    try:
        payload = outcome.dict() if hasattr(outcome, "dict") else outcome.as_dict()
        first = payload["metrics"][0]
        value = first.get("value") or first.get("result") or {}
        count = value.get("count", value.get("number_of_drifted_columns"))
        return None if count is None else int(count)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def main() -> None:
    reference_path, current_path = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    import evidently

    timings, drifted = [], None
    for _ in range(repeats):
        seconds, drifted = run_report(reference_path, current_path)
        timings.append(seconds)
    print(
        json.dumps(
            {
                "evidently_version": getattr(evidently, "__version__", "unknown"),
                "seconds": timings,
                "drifted_columns": drifted,
            }
        )
    )


if __name__ == "__main__":
    main()
