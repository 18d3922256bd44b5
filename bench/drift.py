"""Benchmark ``btcmlops drift compare`` and, when available, NannyML and Evidently.

Deterministic synthetic data: 106 numeric features (independent normals, AR(0.9) series,
log-normal, Student-t and discrete columns); 11 features (about 10%) shifted by half a
standard deviation in the current window. Sizes (reference x current rows): small 168 x 24,
medium 10,000 x 2,000, large 200,000 x 50,000, written as Parquet (and CSV for small) to a
temporary folder. The small reference is too short to show its own dependence, so a check on
it is refused without a history: small also gets a 504-row history (three weeks, what the
service's daily check passes; an independent draw of the same unshifted features), which our
compare reads as part of its timed region. The other tools do not use it.

Measured per size:
- wall time of the in-process compare (``compare_files``: read both files, all statistics),
  cold (memoised exact p-values cleared before each run): first run, best and median;
- peak resident memory (VmHWM) of a fresh process that imports btcmlops and runs one
  compare, next to that process's peak after imports alone;
- NannyML's UnivariateDriftCalculator on the same Parquet files, in both its default
  continuous method (Jensen-Shannon) and its Kolmogorov-Smirnov mode (bench/nannyml_drift.py),
  in the interpreter named by --nannyml-python, BTCMLOPS_BENCH_PYTHON or
  BTCMLOPS_EVIDENTLY_PYTHON, or this one if it has NannyML. Its timed part is fit on the
  reference + calculate on the current, NOT reading the files (ours includes the reads).
  Each mode runs in --nannyml-processes fresh processes (JS and KS alternating) of
  --nannyml-repeats runs each; its time is the median over processes of each process's
  best run. The ratio is NannyML's faster mode over our median time.
- Evidently's DataDriftPreset on the same Parquet files (read + report), in the interpreter
  named by BTCMLOPS_EVIDENTLY_PYTHON (or --evidently-python), or this one if it has
  Evidently; reported as a ratio to our median time.

usage: python bench/drift.py [--sizes small,medium,large] [--repeats 5]
                             [--nannyml-sizes small,medium,large] [--nannyml-processes 3]
                             [--nannyml-repeats 3] [--evidently-sizes small,medium]
                             [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

FEATURES = 106
SHIFTED = list(range(0, FEATURES, 10))  # 11 features
SHIFT_SD = 0.5
SIZES = {"small": (168, 24), "medium": (10_000, 2_000), "large": (200_000, 50_000)}
TARGET_SECONDS = {"small": 0.020, "medium": 0.150, "large": 3.0}
TARGET_PEAK_MB = {"large": 1536}
HISTORY_ROWS = {"small": 504}
NANNYML_METHODS = {"jensen_shannon": "JS", "kolmogorov_smirnov": "KS"}
HERE = Path(__file__).resolve().parent


def make_data(rows_reference: int, rows_current: int, seed: int) -> tuple[pd.DataFrame, ...]:
    """Reference and current frames; the current continues the reference in time."""
    rng = np.random.default_rng(seed)
    total = rows_reference + rows_current
    columns: dict[str, np.ndarray] = {}
    for j in range(FEATURES):
        if j < 50:
            values = rng.normal(size=total)
        elif j < 70:  # AR(0.9), unit variance: what hourly rolling features look like
            shocks = rng.normal(size=total) * np.sqrt(1 - 0.9**2)
            values = lfilter([1.0], [1.0, -0.9], shocks)
        elif j < 85:
            values = rng.lognormal(mean=0.0, sigma=0.6, size=total)
        elif j < 95:
            values = rng.standard_t(df=3, size=total)
        else:
            values = rng.choice(5, size=total, p=[0.4, 0.25, 0.15, 0.12, 0.08]).astype(float)
        if j in SHIFTED:
            values[rows_reference:] += SHIFT_SD * np.std(values[:rows_reference])
        columns[f"feature_{j:03d}"] = values
    frame = pd.DataFrame(columns)
    return frame.iloc[:rows_reference].reset_index(drop=True), frame.iloc[
        rows_reference:
    ].reset_index(drop=True)


def write_size(name: str, folder: Path, seed: int) -> dict[str, Path]:
    reference, current = make_data(*SIZES[name], seed=seed)
    paths = {
        "reference": folder / f"{name}_reference.parquet",
        "current": folder / f"{name}_current.parquet",
    }
    reference.to_parquet(paths["reference"], index=False)
    current.to_parquet(paths["current"], index=False)
    history = None
    if name in HISTORY_ROWS:
        history, _ = make_data(HISTORY_ROWS[name], 0, seed=seed + 1)
        paths["history"] = folder / f"{name}_history.parquet"
        history.to_parquet(paths["history"], index=False)
    if name == "small":
        paths["reference_csv"] = folder / "small_reference.csv"
        paths["current_csv"] = folder / "small_current.csv"
        reference.to_csv(paths["reference_csv"], index=False)
        current.to_csv(paths["current_csv"], index=False)
        if history is not None:
            paths["history_csv"] = folder / "small_history.csv"
            history.to_csv(paths["history_csv"], index=False)
    return paths


def time_in_process(
    reference: Path, current: Path, repeats: int, history: Path | None = None
) -> tuple[list[float], object]:
    from btcmlops.mlops.drift.compare import compare_files
    from btcmlops.mlops.drift.statistics import clear_exact_pvalue_cache

    timings, report = [], None
    for _ in range(repeats):
        clear_exact_pvalue_cache()
        started = time.perf_counter()
        report = compare_files(reference, current, history_path=history)
        timings.append(time.perf_counter() - started)
    return timings, report


def peak_memory(reference: Path, current: Path, history: Path | None) -> dict[str, float]:
    """Run one compare in a fresh interpreter and read its peak RSS."""
    extra = [] if history is None else ["--history", str(history)]
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure-one", str(reference),
         str(current), *extra],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident set size.

    VmHWM belongs to the process image, so unlike ru_maxrss it does not start from the
    high-water mark of the (large) parent that forked this process.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(reference: str, current: str, history: str | None) -> None:
    from btcmlops.mlops.drift.compare import compare_files

    after_imports = peak_rss_mb()
    started = time.perf_counter()
    compare_files(reference, current, history_path=history)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "imports_rss_mb": after_imports}
        )
    )


def evidently_python(option: str | None) -> str | None:
    chosen = option or os.environ.get("BTCMLOPS_EVIDENTLY_PYTHON")
    if chosen:
        return chosen
    if importlib.util.find_spec("evidently") is not None:
        return sys.executable
    return None


def run_evidently(python: str, reference: Path, current: Path, repeats: int) -> dict:
    completed = subprocess.run(
        [python, str(HERE / "evidently_drift.py"), str(reference), str(current), str(repeats)],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def nannyml_python(option: str | None) -> str | None:
    for chosen in (
        option,
        os.environ.get("BTCMLOPS_BENCH_PYTHON"),
        os.environ.get("BTCMLOPS_EVIDENTLY_PYTHON"),
    ):
        if chosen:
            return chosen
    if importlib.util.find_spec("nannyml") is not None:
        return sys.executable
    return None


def run_nannyml(
    python: str, reference: Path, current: Path, processes: int, repeats: int
) -> dict[str, dict]:
    """Both NannyML modes, each in ``processes`` fresh interpreters (modes alternating)."""
    environment = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    runs: dict[str, list[dict]] = {method: [] for method in NANNYML_METHODS}
    errors: dict[str, str] = {}
    for _ in range(processes):
        for method in NANNYML_METHODS:
            if method in errors:
                continue
            completed = subprocess.run(
                [python, str(HERE / "nannyml_drift.py"), str(reference), str(current), method,
                 str(repeats)],
                capture_output=True, text=True, timeout=3600, env=environment,
            )  # fmt: skip
            if completed.returncode != 0:
                tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
                errors[method] = tail[0]
                continue
            runs[method].append(json.loads(completed.stdout.strip().splitlines()[-1]))
    outcome: dict[str, dict] = {}
    for method in NANNYML_METHODS:
        if method in errors:
            outcome[method] = {"error": errors[method]}
            continue
        bests = [min(run["seconds"]) for run in runs[method]]
        outcome[method] = {
            "nannyml_version": runs[method][0]["nannyml_version"],
            "process_best_s": bests,
            "seconds": statistics.median(bests),
            "drifted_columns": runs[method][-1]["drifted_columns"],
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[method]),
        }
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nannyml-sizes", default="small,medium,large")
    parser.add_argument("--nannyml-processes", type=int, default=3)
    parser.add_argument("--nannyml-repeats", type=int, default=3)
    parser.add_argument("--nannyml-python", default=None)
    parser.add_argument("--evidently-sizes", default="small,medium")
    parser.add_argument("--evidently-repeats", type=int, default=1)
    parser.add_argument("--evidently-python", default=None)
    parser.add_argument("--out", default=None, help="keep the data files in this folder")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--measure-one", nargs=2, metavar=("REFERENCE", "CURRENT"))
    parser.add_argument("--history", default=None, help="with --measure-one")
    args = parser.parse_args()
    if args.measure_one:
        measure_one(*args.measure_one, args.history)
        return

    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="btcmlops-drift-"))
    folder.mkdir(parents=True, exist_ok=True)
    python = evidently_python(args.evidently_python)
    evidently_sizes = set(args.evidently_sizes.split(",")) if python else set()
    nannyml = nannyml_python(args.nannyml_python)
    nannyml_sizes = set(args.nannyml_sizes.split(",")) if nannyml else set()
    print(f"data folder: {folder}")
    print(f"nannyml interpreter: {nannyml or 'none (set BTCMLOPS_BENCH_PYTHON)'}")
    print(f"evidently interpreter: {python or 'none (set BTCMLOPS_EVIDENTLY_PYTHON)'}")
    rows = []
    try:
        for name in args.sizes.split(","):
            paths = write_size(name, folder, args.seed)
            history = paths.get("history")
            timings, report = time_in_process(
                paths["reference"], paths["current"], args.repeats, history
            )
            memory = peak_memory(paths["reference"], paths["current"], history)
            row = {
                "size": name,
                "rows": SIZES[name],
                "history_rows": HISTORY_ROWS.get(name, 0),
                "first_s": timings[0],
                "best_s": min(timings),
                "median_s": statistics.median(timings),
                "peak_rss_mb": memory["peak_rss_mb"],
                "imports_rss_mb": memory["imports_rss_mb"],
                "severity": report.result.drift_severity,
                "drifted": report.result.significant_drift_count,
                "drifted_shifted": sum(
                    f"feature_{j:03d}" in report.result.drifted_features for j in SHIFTED
                ),
            }
            if name == "small":
                csv_timings, _ = time_in_process(
                    paths["reference_csv"],
                    paths["current_csv"],
                    args.repeats,
                    paths.get("history_csv"),
                )
                row["csv_median_s"] = statistics.median(csv_timings)
            if name in nannyml_sizes:
                outcome = run_nannyml(
                    nannyml,
                    paths["reference"],
                    paths["current"],
                    args.nannyml_processes,
                    args.nannyml_repeats,
                )
                row["nannyml"] = outcome
                timed = [m["seconds"] for m in outcome.values() if "seconds" in m]
                if timed:
                    row["nannyml_ratio"] = min(timed) / row["median_s"]
            if name in evidently_sizes:
                outcome = run_evidently(
                    python, paths["reference"], paths["current"], args.evidently_repeats
                )
                row["evidently"] = outcome
                if "seconds" in outcome:
                    row["ratio"] = statistics.median(outcome["seconds"]) / row["median_s"]
            rows.append(row)
            print(json.dumps(row))
    finally:
        if not args.out:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(rows)
    print_comparison(rows)


def print_table(rows: list[dict]) -> None:
    print()
    print("| size | rows (ref x cur) | median | best | first | peak RSS (imports) | target "
          "| drifted (of 11 shifted) | Evidently | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        target = f"<= {TARGET_SECONDS[row['size']] * 1000:.0f} ms"
        if row["size"] in TARGET_PEAK_MB:
            target += f", <= {TARGET_PEAK_MB[row['size']]} MB"
        evidently = row.get("evidently", {})
        if "seconds" in evidently:
            seconds = statistics.median(evidently["seconds"])
            evidently_text = (
                f"{seconds:.2f} s (v{evidently['evidently_version']}, "
                f"{evidently['drifted_columns']} drifted)"
            )
            ratio = f"{row['ratio']:.0f}x"
        else:
            evidently_text = evidently.get("error", "not run")
            ratio = "–"
        print(
            f"| {row['size']} | {row['rows'][0]:,} x {row['rows'][1]:,} "
            f"| {row['median_s'] * 1000:.1f} ms | {row['best_s'] * 1000:.1f} ms "
            f"| {row['first_s'] * 1000:.1f} ms "
            f"| {row['peak_rss_mb']:.0f} MB ({row['imports_rss_mb']:.0f} MB) | {target} "
            f"| {row['drifted']} ({row['drifted_shifted']}) | {evidently_text} | {ratio} |"
        )
    if any("csv_median_s" in row for row in rows):
        small = next(row for row in rows if "csv_median_s" in row)
        print(f"\nsmall from CSV: median {small['csv_median_s'] * 1000:.1f} ms")


def print_comparison(rows: list[dict]) -> None:
    """btcmlops beside NannyML's two modes and Evidently, one line per size."""
    if not any("nannyml" in row or "evidently" in row for row in rows):
        return
    print()
    print("btcmlops: median of in-process cold runs, reading both Parquet files (and small's")
    print("history); peak RSS of a fresh process. NannyML: fit + calculate only (files already")
    print("read), median over processes of each process's best run; peak RSS of its process")
    print("(file reads included). ratio: NannyML's faster mode / btcmlops. Evidently: read +")
    print("report, median.")
    print()
    print("| size | btcmlops | NannyML JS (default) | NannyML KS | ratio (faster NannyML mode "
          "/ btcmlops) | Evidently DataDriftPreset |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for row in rows:
        nannyml = row.get("nannyml", {})
        cells = []
        for method in NANNYML_METHODS:
            outcome = nannyml.get(method, {})
            if "seconds" in outcome:
                cells.append(
                    f"{format_seconds(outcome['seconds'])}, {outcome['peak_rss_mb']:.0f} MB "
                    f"(flags {outcome['drifted_columns']})"
                )
            else:
                cells.append(outcome.get("error", "not run"))
        ratio = f"{row['nannyml_ratio']:.1f}x" if "nannyml_ratio" in row else "–"
        evidently = row.get("evidently", {})
        if "seconds" in evidently:
            evidently_text = (
                f"{format_seconds(statistics.median(evidently['seconds']))} "
                f"({row['ratio']:.0f}x, flags {evidently['drifted_columns']})"
            )
        else:
            evidently_text = evidently.get("error", "not run")
        print(
            f"| {row['rows'][0]:,} x {row['rows'][1]:,} "
            f"| {format_seconds(row['median_s'])}, {row['peak_rss_mb']:.0f} MB "
            f"(flags {row['drifted']}) | {cells[0]} | {cells[1]} | {ratio} | {evidently_text} |"
        )
    versions = {
        m.get("nannyml_version") for row in rows for m in row.get("nannyml", {}).values()
    } - {None}
    if versions:
        print(f"\nNannyML {', '.join(sorted(versions))}")


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main()
