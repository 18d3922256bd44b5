"""Benchmark: train each model type on a year of hourly rows (8,760 x 100 features).

The data are synthetic and deterministic (numpy, fixed seed): autocorrelated features, 5 %
missing values and a weak signal, the rough shape of real feature rows. Each model type is
trained in a fresh child process, so its peak memory (``ru_maxrss``) is its own; "before"
is that peak once the data are generated, before training starts. The time covers the whole
of ``train_model``: split, fit, predictions, baselines and permutation importance on the
test window.

    .venv/bin/python bench/train.py [--hours 8760] [--features 100] [--n-jobs N]
        [--model-type TYPE]

The issue's target: random forest in at most 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info

from btcmlops.config import Settings
from btcmlops.modeling.model_types import MODEL_TYPES, training_threads
from btcmlops.modeling.training import train_model

SEED = 17


def synthetic_rows(hours: int, columns: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Features (AR(1) columns, 5 % NaN), next-hour directions and last-hour directions."""
    rng = np.random.default_rng(SEED)
    index = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC")
    shocks = rng.normal(size=(hours, columns))
    values = np.empty_like(shocks)
    values[0] = shocks[0]
    persistence = rng.uniform(0.0, 0.95, columns)
    for t in range(1, hours):
        values[t] = persistence * values[t - 1] + shocks[t]
    latent = 0.15 * values[:, 0] - 0.1 * values[:, 1] + rng.normal(size=hours)
    values[rng.random(values.shape) < 0.05] = np.nan
    features = pd.DataFrame(
        values, index=index, columns=[f"feature_{i:03d}" for i in range(columns)]
    )
    targets = pd.Series((latent > 0).astype(float), index=index)
    last_hour = pd.Series(rng.integers(0, 2, hours).astype(float), index=index)
    return features, targets, last_hour


def run_one(model_type: str, hours: int, columns: int, n_jobs: int) -> dict[str, object]:
    """Train one model type in this process and measure it."""
    features, targets, last_hour = synthetic_rows(hours, columns)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    model = train_model(
        features,
        targets,
        feature_set="vader",
        model_type=model_type,
        last_hour_direction=last_hour,
        n_jobs=n_jobs,
    )
    wall = time.perf_counter() - started
    with training_threads(n_jobs):
        pools = sorted(
            {(p["user_api"], p["internal_api"], p["num_threads"]) for p in threadpool_info()}
        )
    return {
        "model_type": model_type,
        "wall_seconds": wall,
        "fit_seconds": model.fit_seconds,
        "evaluation_seconds": model.evaluation_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_training_mib": rss_before / 1024,
        "train_rows": len(model.split.train_index),
        "test_rows": len(model.split.test_index),
        "test_accuracy": model.test.accuracy,
        "thread_pools_while_training": pools,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=8_760)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--n-jobs", type=int, default=Settings().n_jobs)
    parser.add_argument("--model-type", choices=MODEL_TYPES, action="append")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        (model_type,) = args.model_type
        print(json.dumps(run_one(model_type, args.hours, args.features, args.n_jobs)))
        return

    print(
        f"{args.hours} hourly rows x {args.features} features, "
        f"n_jobs={args.n_jobs}, {os.cpu_count()} CPUs"
    )
    print(
        "threads: the estimator is the only parallel level. Training runs under "
        "joblib parallel_config(backend='threading', n_jobs) for the forest's trees and "
        "threadpoolctl limits OpenMP to n_jobs (histogram boosting) and BLAS to 1; "
        "prediction and permutation importance run the forest in one thread."
    )
    print(f"environment: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    print(
        f"{'model type':<20} {'wall s':>7} {'fit s':>7} {'eval s':>7} "
        f"{'peak MiB':>9} {'(before)':>9} {'test acc':>8}"
    )
    for model_type in args.model_type or MODEL_TYPES:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--model-type",
                model_type,
                "--hours",
                str(args.hours),
                "--features",
                str(args.features),
                "--n-jobs",
                str(args.n_jobs),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{model_type:<20} {result['wall_seconds']:>7.2f} {result['fit_seconds']:>7.2f} "
            f"{result['evaluation_seconds']:>7.2f} {result['peak_rss_mib']:>9.0f} "
            f"{result['rss_before_training_mib']:>9.0f} {result['test_accuracy']:>8.3f}"
        )
        print(f"{'':<20} thread pools while training: {result['thread_pools_while_training']}")
    print("target: random_forest wall time <= 30 s on 2 cores")


if __name__ == "__main__":
    main()
