"""River's ADWIN, Page-Hinkley and KSWIN and NannyML's univariate drift on benchmark streams.

Run by bench/detectors.py in the bench-only interpreter (``make install-bench``: River and
NannyML need pandas < 3); it imports nothing from btcmlops. Input: one ``.npz`` with, per
job ``i``, ``s{i}_reference`` (rows x features; the rows before the stream), ``s{i}_rows``
(the monitored hours) and ``s{i}_detectors`` (the detectors to run, comma-separated). Output:
one JSON line, per job and detector, the rows at which it alarmed and the seconds per hourly
update (per daily chunk for NannyML). One process for all jobs: importing NannyML is slow.

* River, at its defaults, one detector per feature fed hour by hour (missing values skipped);
  the last week of the reference warms them up, its alarms not counted; an alarm is any
  feature's ``drift_detected`` in that hour (River's detectors reset themselves after one).
* NannyML's ``UnivariateDriftCalculator`` at its defaults (Jensen-Shannon distance for
  continuous columns, thresholds from the reference chunks), fitted on the reference, in
  chunks of 24 rows; an alarm is any alert in a chunk, placed at the chunk's last row.

usage: python bench/detectors_anchors.py JOBS.npz
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np

WARM_UP_HOURS = 168
CHUNK_HOURS = 24


def river_detector(name: str):
    from river import drift

    return {"adwin": drift.ADWIN, "page_hinkley": drift.PageHinkley, "kswin": drift.KSWIN}[name]()


def run_river(name: str, reference: np.ndarray, rows: np.ndarray) -> dict:
    detectors = [river_detector(name) for _ in range(rows.shape[1])]
    for row in reference[-WARM_UP_HOURS:]:
        for detector, value in zip(detectors, row.tolist(), strict=True):
            if not math.isnan(value):
                detector.update(value)
    alarms = []
    started = time.perf_counter()
    for t, row in enumerate(rows.tolist()):
        fired = False
        for detector, value in zip(detectors, row, strict=True):
            if not math.isnan(value):
                detector.update(value)
                fired = fired or detector.drift_detected
        if fired:
            alarms.append(t)
    return {"alarms": alarms, "seconds": (time.perf_counter() - started) / max(len(rows), 1)}


def run_nannyml(reference: np.ndarray, rows: np.ndarray) -> dict:
    import nannyml
    import pandas as pd

    names = [f"x{j}" for j in range(rows.shape[1])]
    usable = [j for j in range(rows.shape[1]) if np.isfinite(reference[:, j]).sum() > 1]
    columns = [names[j] for j in usable]
    reference_frame = pd.DataFrame(reference[:, usable], columns=columns)
    chunks = rows.shape[0] // CHUNK_HOURS
    analysis = pd.DataFrame(rows[: chunks * CHUNK_HOURS, usable], columns=columns)
    started = time.perf_counter()
    calculator = nannyml.UnivariateDriftCalculator(column_names=columns, chunk_size=CHUNK_HOURS)
    calculator.fit(reference_frame)
    results = calculator.calculate(analysis).filter(period="analysis").to_df()
    seconds = (time.perf_counter() - started) / max(chunks, 1)
    alert_columns = [c for c in results.columns if c[-1] == "alert"]
    alerted = results[alert_columns].fillna(False).astype(bool).any(axis=1).to_numpy()
    alarms = [(int(i) + 1) * CHUNK_HOURS - 1 for i in np.flatnonzero(alerted)]
    return {"alarms": alarms, "seconds": seconds}


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    archive = np.load(sys.argv[1])
    count = len([key for key in archive.files if key.endswith("_rows")])
    import nannyml
    import river

    output: dict = {
        "versions": {"river": river.__version__, "nannyml": nannyml.__version__},
        "streams": [],
    }
    for i in range(count):
        reference, rows = archive[f"s{i}_reference"], archive[f"s{i}_rows"]
        results = {}
        for name in str(archive[f"s{i}_detectors"]).split(","):
            if name == "nannyml":
                results[name] = run_nannyml(reference, rows)
            else:
                results[name] = run_river(name, reference, rows)
        output["streams"].append(results)
    print(json.dumps(output))


if __name__ == "__main__":
    main()
