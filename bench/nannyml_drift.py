"""Time NannyML's univariate drift calculator on two Parquet files and print one JSON line.

Run by bench/drift.py in an interpreter that has NannyML (the bench-only ``.venv-bench``,
``make install-bench``: NannyML needs pandas < 3); it imports nothing from btcmlops.

``nannyml.UnivariateDriftCalculator`` on every column (all numeric, so all continuous), with
one continuous method: ``jensen_shannon`` (NannyML's default) or ``kolmogorov_smirnov``, at
that method's defaults (NannyML's KS keeps the exact two-sample test below 10,000 reference
rows and switches to a 10,000-bin histogram of the reference above). Chunks of
``len(current)`` rows: the current file is one analysis chunk and the reference is cut into
chunks of the same size, from which NannyML draws its alert thresholds.

The timed part is ``fit`` on the reference plus ``calculate`` on the current, the files
already read into pandas (unlike ``btcmlops drift compare``, whose timed part reads both
Parquet files too); ``calculate_seconds`` is the ``calculate`` part alone, NannyML's cost of
one check against a reference fitted earlier. ``drifted_columns`` counts the columns alerted
in the analysis chunk.

usage: python bench/nannyml_drift.py REFERENCE.parquet CURRENT.parquet METHOD [REPEATS]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

METHODS = ("jensen_shannon", "kolmogorov_smirnov")


def run_once(reference, current, method: str) -> tuple[float, float, int]:
    """Seconds of fit + calculate, seconds of calculate alone, columns alerted."""
    import nannyml

    columns = list(reference.columns)
    started = time.perf_counter()
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=columns, continuous_methods=[method], chunk_size=len(current)
    )
    calculator.fit(reference)
    fitted = time.perf_counter()
    results = calculator.calculate(current)
    finished = time.perf_counter()
    frame = results.filter(period="analysis").to_df()
    alerts = frame[[c for c in frame.columns if c[-1] == "alert"]]
    drifted = int(alerts.fillna(False).astype(bool).any(axis=0).sum())
    return finished - started, finished - fitted, drifted


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no analytics upload from the timed calls
    reference_path, current_path, method = sys.argv[1], sys.argv[2], sys.argv[3]
    if method not in METHODS:
        raise SystemExit(f"method must be one of {', '.join(METHODS)}")
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    import nannyml
    import pandas as pd

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    timings, calculate_timings, drifted = [], [], None
    for _ in range(repeats):
        seconds, calculate_seconds, drifted = run_once(reference, current, method)
        timings.append(seconds)
        calculate_timings.append(calculate_seconds)
    print(
        json.dumps(
            {
                "nannyml_version": getattr(nannyml, "__version__", "unknown"),
                "method": method,
                "seconds": timings,
                "calculate_seconds": calculate_timings,
                "drifted_columns": drifted,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
