"""Drift detector benchmark: false alarms on no-drift streams, delays on change streams.

Detectors: the daily batch check (``compare_features`` as the service runs it), the hourly
sequential detector (``btcmlops.mlops.drift.sequential``), River's ADWIN, Page-Hinkley and
KSWIN (one per feature; an alarm is any feature's) and NannyML's default univariate drift
(daily chunks; an alarm is any alert). The anchors run in the bench-only interpreter named
by BTCMLOPS_BENCH_PYTHON or --bench-python (``make install-bench``), through
bench/detectors_anchors.py; without one they are left out, and the table says so.

Streams (bench/detector_streams.py; every seed explicit): 56 days before each stream (21 +
7 for the batch check's history and reference, 28 + 28 for the sequential detector's) and
then the monitored hours. No-drift: iid, AR(1) 0.95, stochastic volatility sd 0.2 and 0.5,
the simulated market without its regime change, the real Gemini hourly price features of
2016-2021 block-bootstrapped (mean block one week) -> mean time between false alarms in days
(total stream days / alarms; "> N" when none). Change streams, 7 days before and 7 after the
change: a 0.5 sd mean shift and a variance x 2.5 in 10% of iid features, the simulator's
regime change -> median delay in hours of the first alarm at or after the change, the share
detected within 7 days, and F1 over the change streams (TP: a change found within 7 days;
FP: an alarm before it; FN: a change missed) next to a detector that fires every day (F1
0.222). Then the sequential detector and the batch check over the whole real Gemini stream,
refitted on the last 56 days after each alarm: alarms per month, March 2020 and May 2021
marked. A sequential alarm on a no-drift stream also refits it on the latest 56 days, as a
retraining would. Without the Gemini file (``../shared/data/peer``) its streams are left out,
and the run says so at its start.

usage: OMP_NUM_THREADS=1 python bench/detectors.py [--quick] [--bench-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from detector_runs import REFERENCE_DAYS, run_batch, run_sequential_refitting
from detector_streams import (
    GEMINI_CSV,
    HOURS_PER_DAY,
    Stream,
    gemini_bootstrap,
    gemini_features,
    gemini_whole,
    simulated,
    synthetic,
)

HERE = Path(__file__).resolve().parent
BEFORE_DAYS = 56
CHANGE_DAYS = 7  # before and after the change
NO_DRIFT = ("iid", "ar95", "sv0.2", "sv0.5", "simulator", "gemini-bootstrap")
CHANGES = ("shift", "variance", "regime")
OURS = ("batch", "sequential")
ANCHORS = ("adwin", "page_hinkley", "kswin", "nannyml")
ALWAYS_DAILY_F1 = 2 * (1 / 8) / (1 / 8 + 1)  # TP 1, FP 7 per change stream
SEED = 20261206


@dataclass(frozen=True)
class Plan:
    no_drift_days: int
    no_drift_reps: int
    anchor_days: int
    kswin_days: int
    change_reps: int
    anchor_change_reps: int
    kswin_change_reps: int
    gemini_whole: bool


FULL = Plan(90, 2, 7, 2, 8, 2, 1, True)
QUICK = Plan(14, 1, 7, 2, 2, 1, 1, False)


def no_drift_stream(kind: str, days: int, seed: int, gemini) -> Stream | None:
    before, hours = BEFORE_DAYS * HOURS_PER_DAY, days * HOURS_PER_DAY
    if kind == "simulator":
        return simulated(BEFORE_DAYS, days, seed, change_day=None)
    if kind == "gemini-bootstrap":
        if gemini is None:
            return None
        return gemini_bootstrap(gemini, before, hours, 168, seed)
    return synthetic(kind, before, hours, seed)


def change_stream(kind: str, seed: int) -> Stream:
    if kind == "regime":
        return simulated(BEFORE_DAYS, 2 * CHANGE_DAYS, seed, change_day=CHANGE_DAYS)
    return synthetic(kind, BEFORE_DAYS * HOURS_PER_DAY, 2 * CHANGE_DAYS * HOURS_PER_DAY, seed)


# ------------------------------------------------------------------------------- running
def run_ours(detector: str, stream: Stream) -> tuple[list[int], float, list[int]]:
    """Alarm rows, seconds per update, and (sequential only) each alarm's estimated change."""
    if detector == "batch":
        return (*run_batch(stream), [])
    return run_sequential_refitting(stream, BEFORE_DAYS)


@dataclass(frozen=True)
class AnchorJob:
    """One stream for the anchors: which detectors, and where its results go."""

    stream: Stream
    detectors: tuple[str, ...]
    key: tuple[str, int]  # (stream kind, repetition)


def run_anchors(python: str, jobs: list[AnchorJob]) -> list[dict]:
    """Every job in one process of the bench interpreter; {} per job when it failed."""
    if not jobs:
        return []
    with tempfile.TemporaryDirectory(prefix="btcmlops-detectors-") as folder:
        path = Path(folder) / "jobs.npz"
        arrays: dict[str, np.ndarray] = {}
        for i, job in enumerate(jobs):
            arrays[f"s{i}_reference"] = job.stream.before[-REFERENCE_DAYS * HOURS_PER_DAY :]
            arrays[f"s{i}_rows"] = job.stream.rows
            arrays[f"s{i}_detectors"] = np.array(",".join(job.detectors))
        np.savez(path, **arrays)
        environment = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "OMP_NUM_THREADS": "1"}
        completed = subprocess.run(
            [python, str(HERE / "detectors_anchors.py"), str(path)],
            capture_output=True, text=True, timeout=3600, env=environment,
        )  # fmt: skip
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        print(f"anchors failed: {tail[0]}", file=sys.stderr)
        return [{} for _ in jobs]
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    ANCHOR_VERSIONS.update(payload["versions"])
    return payload["streams"]


ANCHOR_VERSIONS: dict[str, str] = {}


# ------------------------------------------------------------------------------ measuring
@dataclass
class Tally:
    days: float = 0.0
    alarms: int = 0
    seconds: list[float] | None = None

    def add(self, days: float, alarms: int, seconds: float) -> None:
        self.days += days
        self.alarms += alarms
        self.seconds = [*(self.seconds or []), seconds]

    def mtbf(self) -> str:
        if self.days == 0:
            return "n/a"
        if self.alarms == 0:
            return f"> {self.days:,.0f}"
        return f"{self.days / self.alarms:,.1f}"


@dataclass
class Delays:
    delays: list[float | None]
    false_alarms: int = 0
    estimate_errors: list[int] = field(default_factory=list)

    def record(self, alarms: list[int], change_at: int, estimates: Sequence[int] = ()) -> None:
        """The first alarm within 7 days of the change; earlier alarms are false. With the
        detector's change-time estimates, the error of the one that goes with that alarm."""
        self.false_alarms += sum(1 for a in alarms if a < change_at)
        window = range(change_at, change_at + CHANGE_DAYS * 24)
        found = [i for i, a in enumerate(alarms) if a in window]
        self.delays.append(float(alarms[found[0]] - change_at) if found else None)
        if found and estimates:
            self.estimate_errors.append(estimates[found[0]] - change_at)

    def summary(self) -> str:
        if not self.delays:
            return "n/a"
        found = [d for d in self.delays if d is not None]
        share = len(found) / len(self.delays)
        median = f"{statistics.median(found):.0f} h" if found else "none"
        return f"{median} ({share:.0%} of {len(self.delays)})"


def anchor_jobs(stream: Stream, key: tuple[str, int], plan: Plan, *, change: bool) -> list:
    """The anchors' share of a stream: River and NannyML on a prefix (or on the first few
    change streams), KSWIN, the slowest, on a shorter one (or fewer)."""
    rep = key[1]
    if change:
        groups = [(("adwin", "page_hinkley", "nannyml"), plan.anchor_change_reps)]
        groups.append((("kswin",), plan.kswin_change_reps))
        return [AnchorJob(stream, chosen, key) for chosen, count in groups if rep < count]
    jobs = []
    for chosen, days in (
        (("adwin", "page_hinkley", "nannyml"), plan.anchor_days),
        (("kswin",), plan.kswin_days),
    ):
        jobs.append(
            AnchorJob(replace(stream, rows=stream.rows[: days * HOURS_PER_DAY]), chosen, key)
        )
    return jobs


def f1(records: list[Delays]) -> str:
    tp = sum(1 for r in records for d in r.delays if d is not None)
    fn = sum(1 for r in records for d in r.delays if d is None)
    fp = sum(r.false_alarms for r in records)
    if tp + fn == 0:
        return "n/a"
    return f"{2 * tp / (2 * tp + fp + fn):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short streams, few repetitions")
    parser.add_argument("--bench-python", default=os.environ.get("BTCMLOPS_BENCH_PYTHON"))
    parser.add_argument("--no-anchors", action="store_true")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    python = None if args.no_anchors else args.bench_python
    started = time.perf_counter()
    gemini = gemini_features() if GEMINI_CSV.exists() else None
    print(f"plan: {plan}")
    print(f"anchor interpreter: {python or 'none (set BTCMLOPS_BENCH_PYTHON)'}")
    if gemini is None:
        print(f"Gemini file absent ({GEMINI_CSV}): its streams are left out")

    detectors = list(OURS) + (list(ANCHORS) if python else [])
    mtbf = {(d, k): Tally() for d in detectors for k in NO_DRIFT}
    delays = {(d, k): Delays([]) for d in detectors for k in CHANGES}
    jobs: list[AnchorJob] = []
    for k, kind in enumerate(NO_DRIFT):
        for rep in range(plan.no_drift_reps):
            stream = no_drift_stream(kind, plan.no_drift_days, SEED + 100 * k + rep, gemini)
            if stream is None:
                continue
            for detector in OURS:
                alarms, seconds, _ = run_ours(detector, stream)
                mtbf[(detector, kind)].add(plan.no_drift_days, len(alarms), seconds)
            if rep == 0:
                jobs += anchor_jobs(stream, (kind, rep), plan, change=False)
        print(f"  no-drift {kind}: {time.perf_counter() - started:.0f} s", flush=True)

    for k, kind in enumerate(CHANGES):
        for rep in range(plan.change_reps):
            stream = change_stream(kind, SEED + 1000 * (k + 1) + rep)
            assert stream.change_at is not None
            for detector in OURS:
                alarms, _, estimates = run_ours(detector, stream)
                delays[(detector, kind)].record(alarms, stream.change_at, estimates)
            jobs += anchor_jobs(stream, (kind, rep), plan, change=True)
        print(f"  change {kind}: {time.perf_counter() - started:.0f} s", flush=True)

    if python:
        for job, result in zip(jobs, run_anchors(python, jobs), strict=True):
            kind = job.key[0]
            for detector, outcome in result.items():
                if job.stream.change_at is None:
                    days = job.stream.rows.shape[0] / HOURS_PER_DAY
                    mtbf[(detector, kind)].add(days, len(outcome["alarms"]), outcome["seconds"])
                else:
                    delays[(detector, kind)].record(outcome["alarms"], job.stream.change_at)
        print(f"  anchors: {time.perf_counter() - started:.0f} s", flush=True)

    print()
    print_table(detectors, mtbf, delays, plan)
    for kind in CHANGES:
        errors = delays[("sequential", kind)].estimate_errors
        if errors:
            print(
                f"sequential change-time estimate, {kind}: error median "
                f"{statistics.median(errors):+.0f} h, range {min(errors):+d} to {max(errors):+d} h"
            )
    if plan.gemini_whole and gemini is not None:
        print()
        print_real_stream(gemini)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; anchors {ANCHOR_VERSIONS or 'not run'}")


def print_table(detectors, mtbf, delays, plan: Plan) -> None:
    header = ["detector", *(f"MTBF {k} (d)" for k in NO_DRIFT)]
    header += [f"{k}: median delay (share in 7 d)" for k in CHANGES]
    header += ["F1", "cost per update"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for detector in detectors:
        cells = [detector, *(mtbf[(detector, k)].mtbf() for k in NO_DRIFT)]
        cells += [delays[(detector, k)].summary() for k in CHANGES]
        cells.append(f1([delays[(detector, k)] for k in CHANGES]))
        seconds = [s for k in NO_DRIFT for s in (mtbf[(detector, k)].seconds or [])]
        unit = "per check" if detector in ("batch", "nannyml") else "per hour"
        cells.append(f"{1e3 * statistics.median(seconds):.2f} ms {unit}" if seconds else "n/a")
        print("| " + " | ".join(cells) + " |")
    daily = " | ".join(["1.0"] * len(NO_DRIFT) + ["0 h (100%)"] * len(CHANGES))
    print(f"| always fires (daily) | {daily} | {ALWAYS_DAILY_F1:.3f} | - |")


def print_real_stream(gemini) -> None:
    stream = gemini_whole(gemini, BEFORE_DAYS * HOURS_PER_DAY)
    stamps = stream.timestamps
    assert stamps is not None
    months = stamps.strftime("%Y-%m")
    counted = {}
    for detector in OURS:
        alarms, _, _ = run_ours(detector, stream)
        per_month: dict[str, int] = {}
        for a in alarms:
            per_month[months[a]] = per_month.get(months[a], 0) + 1
        counted[detector] = per_month
    print("| month | batch alarms | sequential alarms |")
    print("|---|---|---|")
    for month in sorted(set(months)):
        mark = (
            " (COVID crash)"
            if month == "2020-03"
            else " (May 2021 crash)"
            if month == "2021-05"
            else ""
        )
        print(
            f"| {month}{mark} | {counted['batch'].get(month, 0)} | "
            f"{counted['sequential'].get(month, 0)} |"
        )
    for detector in OURS:
        total = sum(counted[detector].values())
        print(f"{detector}: {total} alarms over {len(set(months))} months")


if __name__ == "__main__":
    main()
