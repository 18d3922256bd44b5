"""Benchmark ``btcmlops drift compare`` and, when available, NannyML and Evidently.

Deterministic synthetic data: 106 numeric features (independent normals, AR(0.9) series,
log-normal, Student-t and discrete columns); 11 features (about 10%) shifted by half a
standard deviation in the current window. Sizes (reference x current rows): small 168 x 24,
medium 10,000 x 2,000, large 200,000 x 50,000, written as Parquet (and CSV for small) to a
temporary folder. The small reference is too short to show its own dependence, so a check on
it is refused without a history: small also gets a 504-row history (three weeks, what the
service's daily check passes; an independent draw of the same unshifted features), which our
compare reads as part of its timed region. The other tools do not use it.

The 1M x 200k size (``--sizes huge``, not in the default set) is written once into a cache
folder outside the repository (``--cache``, default ``$TMPDIR/btcmlops-drift-cache``) and
reused by later runs; it measures our check only.

Measured per size:
- wall time of the check against a stored reference (``check_stored``): the
  ``DriftReference`` (sorted values, quantile edges and shares, moments, dependence times;
  from the history for small) is built once from the reference file, outside the timed
  region, as a service holds it between checks; the timed part reads the current file and
  runs ``compare_features`` on it. Cold (memoised exact p-values cleared before each run):
  the process's first run on its own, then best and median of --repeats runs. Issue 18's
  targets apply to this time.
- wall time of the in-process compare of two files (``compare_files``: read both files, all
  statistics), cold the same way;
- peak resident memory (VmHWM) of a fresh process that imports btcmlops and runs one
  compare (and, separately, one that builds the stored reference and runs one check), next
  to that process's peak after imports alone;
- NannyML's UnivariateDriftCalculator on the same Parquet files, in both its default
  continuous method (Jensen-Shannon) and its Kolmogorov-Smirnov mode (bench/nannyml_drift.py),
  in the interpreter named by --nannyml-python, BTCMLOPS_BENCH_PYTHON or
  BTCMLOPS_EVIDENTLY_PYTHON, or this one if it has NannyML. Its timed part is fit on the
  reference + calculate on the current, NOT reading the files (ours includes the reads).
  Each mode runs in --nannyml-processes fresh processes (JS and KS alternating) of
  --nannyml-repeats runs each; its time is the median over processes of each process's
  best run. The ratio is NannyML's faster mode over our median time; NannyML's
  ``calculate`` alone (its check against a reference fitted earlier) is reported too, over
  our stored-reference check and over the same check on the current data already read
  (``compare_features`` on the in-memory columns, timed cold the same way): that last ratio
  is the like-for-like one, both sides checking data in memory against a prepared reference.
- Evidently's DataDriftPreset on the same Parquet files (read + report), in the interpreter
  named by BTCMLOPS_EVIDENTLY_PYTHON (or --evidently-python), or this one if it has
  Evidently; reported as a ratio to our median time.

usage: python bench/drift.py [--sizes small,medium,large,huge] [--repeats 5]
                             [--nannyml-sizes small,medium,large] [--nannyml-processes 3]
                             [--nannyml-repeats 3] [--evidently-sizes small,medium]
                             [--out DIR] [--cache DIR]
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
SIZES = {
    "small": (168, 24),
    "medium": (10_000, 2_000),
    "large": (200_000, 50_000),
    "huge": (1_000_000, 200_000),
}
# Issue 18's targets for the check against a stored reference (and the large peak).
TARGET_SECONDS = {"small": 0.005, "medium": 0.038, "large": 0.5}
TARGET_PEAK_MB = {"large": 800, "huge": 24 * 1024}
# Written once into the cache folder and reused: too large to write on every run.
CACHED_SIZES = {"huge"}
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
    paths = {
        "reference": folder / f"{name}_reference.parquet",
        "current": folder / f"{name}_current.parquet",
    }
    if name in CACHED_SIZES:
        folder = folder / f"seed-{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = {side: folder / path.name for side, path in paths.items()}
        if all(path.exists() for path in paths.values()):
            return paths
    reference, current = make_data(*SIZES[name], seed=seed)
    for side, frame in (("reference", reference), ("current", current)):
        partial = paths[side].with_suffix(".partial")  # a killed run leaves no half file
        frame.to_parquet(partial, index=False)
        partial.rename(paths[side])
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
    for _ in range(repeats + 1):  # the first run of the process is reported on its own
        clear_exact_pvalue_cache()
        started = time.perf_counter()
        report = compare_files(reference, current, history_path=history)
        timings.append(time.perf_counter() - started)
    return timings, report


def prepare_reference(reference: Path, history: Path | None = None) -> object:
    """The stored reference a service keeps between checks: sorted values, PSI bins, moments
    and dependence times (from the history when there is one)."""
    from btcmlops.mlops.drift.files import read_numeric_table
    from btcmlops.mlops.drift.reference import Dependence, DriftReference

    table = read_numeric_table(reference)
    names = list(table.numeric)
    columns = table.columns(names)
    del table
    dependence = None
    if history is not None:
        history_columns = read_numeric_table(history).columns(names)
        dependence = Dependence.estimate(history_columns, "history")
    return DriftReference.from_columns(columns, names, copy=False, dependence=dependence)


def check_stored(prepared: object, current: Path) -> object:
    """One check of the current file against a stored reference: read it, compare."""
    from btcmlops.mlops.drift.feature_drift import compare_features
    from btcmlops.mlops.drift.files import read_numeric_table

    columns = read_numeric_table(current).columns(list(prepared.features))
    return compare_features(prepared, columns.T)


def time_stored(
    reference: Path, current: Path, repeats: int, history: Path | None = None
) -> tuple[list[float], object, float, list[float]]:
    """Cold timings of the stored-reference check reading the current file, the result, the
    reference's build time, and cold timings of the same check on the current data already
    read (what NannyML's ``calculate`` is timed on)."""
    from btcmlops.mlops.drift.feature_drift import compare_features
    from btcmlops.mlops.drift.files import read_numeric_table
    from btcmlops.mlops.drift.statistics import clear_exact_pvalue_cache

    started = time.perf_counter()
    prepared = prepare_reference(reference, history)
    build_seconds = time.perf_counter() - started
    timings, result = [], None
    for _ in range(repeats + 1):  # the first run of the process is reported on its own
        clear_exact_pvalue_cache()
        started = time.perf_counter()
        result = check_stored(prepared, current)
        timings.append(time.perf_counter() - started)
    rows = read_numeric_table(current).columns(list(prepared.features)).T
    in_memory = []
    for _ in range(repeats + 1):
        clear_exact_pvalue_cache()
        started = time.perf_counter()
        compare_features(prepared, rows)
        in_memory.append(time.perf_counter() - started)
    return timings, result, build_seconds, in_memory


def verdicts(result: object) -> tuple:
    """What a check decides: severity, and per feature tested / significant / drifted / level."""
    return (
        result.status,
        result.drift_severity,
        tuple(
            sorted(
                (item.feature, item.tested, item.ks_significant, item.drift_detected, item.level)
                for item in result.drift_results
            )
        ),
    )


def peak_memory(
    reference: Path, current: Path, history: Path | None, stored: bool = False
) -> dict[str, float]:
    """Run one compare (or one stored-reference check) in a fresh interpreter; its peak RSS."""
    extra = [] if history is None else ["--history", str(history)]
    extra += ["--stored"] if stored else []
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure-one", str(reference),
         str(current), *extra],
        capture_output=True, text=True, check=True, timeout=3600,
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


def measure_one(reference: str, current: str, history: str | None, stored: bool) -> None:
    from btcmlops.mlops.drift.compare import compare_files

    after_imports = peak_rss_mb()
    outcome = {"imports_rss_mb": after_imports}
    started = time.perf_counter()
    if stored:
        prepared = prepare_reference(Path(reference), None if history is None else Path(history))
        outcome["reference_rss_mb"] = peak_rss_mb()
        started = time.perf_counter()
        check_stored(prepared, Path(current))
    else:
        compare_files(reference, current, history_path=history)
    outcome["seconds"] = time.perf_counter() - started
    outcome["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(outcome))


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
        calculate_bests = [min(run["calculate_seconds"]) for run in runs[method]]
        outcome[method] = {
            "nannyml_version": runs[method][0]["nannyml_version"],
            "process_best_s": bests,
            "seconds": statistics.median(bests),
            "calculate_seconds": statistics.median(calculate_bests),
            "drifted_columns": runs[method][-1]["drifted_columns"],
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[method]),
        }
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="small,medium,large",
        help="comma-separated, of small, medium, large and huge (1M x 200k, not by default)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--huge-repeats", type=int, default=2)
    parser.add_argument("--nannyml-sizes", default="small,medium,large")
    parser.add_argument("--nannyml-processes", type=int, default=3)
    parser.add_argument("--nannyml-repeats", type=int, default=3)
    parser.add_argument("--nannyml-python", default=None)
    parser.add_argument("--evidently-sizes", default="small,medium")
    parser.add_argument("--evidently-repeats", type=int, default=1)
    parser.add_argument("--evidently-python", default=None)
    parser.add_argument("--out", default=None, help="keep the data files in this folder")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "btcmlops-drift-cache"),
        help="folder for the sizes written once and reused (huge)",
    )
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--measure-one", nargs=2, metavar=("REFERENCE", "CURRENT"))
    parser.add_argument("--history", default=None, help="with --measure-one")
    parser.add_argument("--stored", action="store_true", help="with --measure-one")
    args = parser.parse_args()
    if args.measure_one:
        measure_one(*args.measure_one, args.history, args.stored)
        return

    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="btcmlops-drift-"))
    folder.mkdir(parents=True, exist_ok=True)
    python = evidently_python(args.evidently_python)
    evidently_sizes = set(args.evidently_sizes.split(",")) if python else set()
    nannyml = nannyml_python(args.nannyml_python)
    nannyml_sizes = set(args.nannyml_sizes.split(",")) if nannyml else set()
    print(f"data folder: {folder} (cached sizes: {args.cache})")
    print(f"nannyml interpreter: {nannyml or 'none (set BTCMLOPS_BENCH_PYTHON)'}")
    print(f"evidently interpreter: {python or 'none (set BTCMLOPS_EVIDENTLY_PYTHON)'}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = []
    try:
        for name in args.sizes.split(","):
            rows.append(measure_size(name, folder, args, nannyml, nannyml_sizes, python,
                                     evidently_sizes))  # fmt: skip
            print(json.dumps(rows[-1]))
    finally:
        if not args.out:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print_table(rows)
    print_comparison(rows)
    from common import environment, write_results  # bench/common.py, beside this file

    print(f"\nresults: {write_results('drift', {'environment': environment(), 'rows': rows})}")


def measure_size(
    name: str,
    folder: Path,
    args: argparse.Namespace,
    nannyml: str | None,
    nannyml_sizes: set[str],
    python: str | None,
    evidently_sizes: set[str],
) -> dict:
    paths = write_size(name, Path(args.cache) if name in CACHED_SIZES else folder, args.seed)
    history = paths.get("history")
    repeats = args.huge_repeats if name in CACHED_SIZES else args.repeats
    load = os.getloadavg()[0]
    stored, stored_result, build_seconds, in_memory = time_stored(
        paths["reference"], paths["current"], repeats, history
    )
    timings, report = time_in_process(paths["reference"], paths["current"], repeats, history)
    stored_memory = peak_memory(paths["reference"], paths["current"], history, stored=True)
    memory = peak_memory(paths["reference"], paths["current"], history)
    row = {
        "size": name,
        "rows": SIZES[name],
        "history_rows": HISTORY_ROWS.get(name, 0),
        "load_average": load,
        "stored_first_s": stored[0],
        "stored_best_s": min(stored[1:]),
        "stored_median_s": statistics.median(stored[1:]),
        "stored_in_memory_median_s": statistics.median(in_memory[1:]),
        "reference_build_s": build_seconds,
        "stored_peak_rss_mb": stored_memory["peak_rss_mb"],
        "stored_reference_rss_mb": stored_memory["reference_rss_mb"],
        "first_s": timings[0],
        "best_s": min(timings[1:]),
        "median_s": statistics.median(timings[1:]),
        "peak_rss_mb": memory["peak_rss_mb"],
        "imports_rss_mb": memory["imports_rss_mb"],
        "severity": report.result.drift_severity,
        "drifted": report.result.significant_drift_count,
        "drifted_shifted": sum(
            f"feature_{j:03d}" in report.result.drifted_features for j in SHIFTED
        ),
        "same_verdicts": verdicts(stored_result) == verdicts(report.result),
        "exact_pvalues": report.result.message or "all exact",
    }
    if name == "small":
        csv_timings, _ = time_in_process(
            paths["reference_csv"], paths["current_csv"], repeats, paths.get("history_csv")
        )
        row["csv_median_s"] = statistics.median(csv_timings[1:])
    if name in nannyml_sizes:
        outcome = run_nannyml(
            nannyml, paths["reference"], paths["current"], args.nannyml_processes,
            args.nannyml_repeats,
        )  # fmt: skip
        row["nannyml"] = outcome
        timed = [m["seconds"] for m in outcome.values() if "seconds" in m]
        if timed:
            row["nannyml_ratio"] = min(timed) / row["median_s"]
            row["nannyml_stored_ratio"] = min(timed) / row["stored_median_s"]
            calculate = [m["calculate_seconds"] for m in outcome.values() if "seconds" in m]
            row["nannyml_calculate_ratio"] = min(calculate) / row["stored_median_s"]
            row["nannyml_calculate_in_memory_ratio"] = (
                min(calculate) / row["stored_in_memory_median_s"]
            )
    if name in evidently_sizes:
        outcome = run_evidently(
            python, paths["reference"], paths["current"], args.evidently_repeats
        )
        row["evidently"] = outcome
        if "seconds" in outcome:
            row["ratio"] = statistics.median(outcome["seconds"]) / row["median_s"]
    return row


def print_table(rows: list[dict]) -> None:
    print()
    print("| size | rows (ref x cur) | stored check: median (best, first) | target | peak RSS "
          "stored (after building the reference) | two files: median (best) | peak RSS two "
          "files (imports) | drifted (of 11 shifted), severity | same verdicts | Evidently "
          "| ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        target = (
            f"<= {TARGET_SECONDS[row['size']] * 1000:.0f} ms"
            if row["size"] in TARGET_SECONDS
            else "–"
        )
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
            f"| {format_seconds(row['stored_median_s'])} ({format_seconds(row['stored_best_s'])}"
            f", {format_seconds(row['stored_first_s'])}) | {target} "
            f"| {row['stored_peak_rss_mb']:.0f} MB ({row['stored_reference_rss_mb']:.0f} MB) "
            f"| {format_seconds(row['median_s'])} ({format_seconds(row['best_s'])}) "
            f"| {row['peak_rss_mb']:.0f} MB ({row['imports_rss_mb']:.0f} MB) "
            f"| {row['drifted']} ({row['drifted_shifted']}), {row['severity']} "
            f"| {row['same_verdicts']} | {evidently_text} | {ratio} |"
        )
    for row in rows:
        print(f"\n{row['size']}: load average {row['load_average']:.2f}; reference built in "
              f"{format_seconds(row['reference_build_s'])}; {row['exact_pvalues']}")  # fmt: skip
    if any("csv_median_s" in row for row in rows):
        small = next(row for row in rows if "csv_median_s" in row)
        print(f"\nsmall from CSV (two files): median {small['csv_median_s'] * 1000:.1f} ms")


def print_comparison(rows: list[dict]) -> None:
    """btcmlops beside NannyML's two modes and Evidently, one line per size."""
    if not any("nannyml" in row or "evidently" in row for row in rows):
        return
    print()
    print("btcmlops: median of in-process cold runs; stored = check of the current file against")
    print("a reference prepared once (in memory: the current data already read, as NannyML's")
    print("calculate is timed); files = reading both Parquet files (and small's history).")
    print("NannyML: fit + calculate, and calculate alone, files already read; median over")
    print("processes of each process's best run. ratios: NannyML's faster mode / btcmlops.")
    print()
    print("| size | btcmlops stored (in memory) | btcmlops files | NannyML JS (default): "
          "fit+calc, calc | NannyML KS: fit+calc, calc | ratio fit+calc / files "
          "| ratio fit+calc / stored | ratio calc / stored | ratio calc / stored in memory "
          "| Evidently DataDriftPreset |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        nannyml = row.get("nannyml", {})
        cells = []
        for method in NANNYML_METHODS:
            outcome = nannyml.get(method, {})
            if "seconds" in outcome:
                cells.append(
                    f"{format_seconds(outcome['seconds'])}, "
                    f"{format_seconds(outcome['calculate_seconds'])}, "
                    f"{outcome['peak_rss_mb']:.0f} MB (flags {outcome['drifted_columns']})"
                )
            else:
                cells.append(outcome.get("error", "not run"))
        ratios = [
            f"{row[key]:.1f}x" if key in row else "–"
            for key in (
                "nannyml_ratio",
                "nannyml_stored_ratio",
                "nannyml_calculate_ratio",
                "nannyml_calculate_in_memory_ratio",
            )
        ]
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
            f"| {format_seconds(row['stored_median_s'])} "
            f"({format_seconds(row['stored_in_memory_median_s'])}), "
            f"{row['stored_peak_rss_mb']:.0f} MB "
            f"| {format_seconds(row['median_s'])}, {row['peak_rss_mb']:.0f} MB "
            f"(flags {row['drifted']}) | {cells[0]} | {cells[1]} | {' | '.join(ratios)} "
            f"| {evidently_text} |"
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
