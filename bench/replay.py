"""Benchmark: the backtest on real history (or the demo's simulated market), per stage and job.

Runs the same engine as ``btcmlops backtest`` in-process on a home it keeps, then prints the
seconds by stage (files in, warm-up, replay, scoring the policies), each job's runs and
milliseconds per replayed hour from its ``job_runs`` records, and the policies' accuracies.

    .venv/bin/python bench/replay.py [--prices FILE] [--start 2020-01-01] [--end 2020-12-31]
        [--warm-days 60] [--model-type random_forest] [--home DIR]

The issue's targets (#16): 2020 on the Gemini file (8,784 hours) in at most 300 s on 2
cores, every policy's accuracy within 0.40-0.60. ``--demo DAYS`` times the demo's replay
instead (``btcmlops demo --no-serve --days DAYS``; target 60 s for 120 days).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import JobRun
from btcmlops.db.store import Store
from btcmlops.mlops.runtime import Runtime
from btcmlops.replay.backtest import Backtest, BacktestPlan
from btcmlops.replay.policies import WeeklyTrainer, evaluate
from btcmlops.replay.report import document

GEMINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "peer" / "gemini_BTCUSD_1hr.csv"


def job_table(url: str, hours: int) -> None:
    store = Store.open(url)
    try:
        with store.session() as session:
            rows = session.execute(
                select(JobRun.job, func.count(), func.sum(JobRun.duration_seconds))
                .group_by(JobRun.job)
                .order_by(func.sum(JobRun.duration_seconds).desc())
            ).all()
    finally:
        store.close()
    print(f"{'job':<22}{'runs':>7}{'seconds':>10}{'ms/hour':>10}")
    for job, runs, seconds in rows:
        print(f"{job:<22}{runs:>7}{seconds:>10.1f}{1000 * seconds / hours:>10.1f}")


def backtest(args: argparse.Namespace) -> None:
    home = Path(args.home or tempfile.mkdtemp(prefix="bench-backtest-"))
    if home.exists() and any(home.iterdir()):
        shutil.rmtree(home)
    start = parse_utc(args.start)
    plan = BacktestPlan(
        prices=Path(args.prices),
        start=start,
        end=parse_utc(args.end) + timedelta(days=1),
        warm_days=args.warm_days,
        model_type=args.model_type,
    )
    settings = Settings(home=home, database_url=None)
    context = AppContext(settings=settings, clock=ManualClock(plan.start))
    runtime = Runtime(context).start()
    began = time.perf_counter()
    try:
        engine = Backtest(runtime, plan)
        engine.load()
        engine.warm_up()
        weekly = WeeklyTrainer(runtime, plan)
        try:
            run = engine.replay(after_hour=weekly.passed)
            scoring = time.perf_counter()
            evaluation = evaluate(runtime, run, weekly)
        finally:
            weekly.close()
        run.seconds["scoring"] = time.perf_counter() - scoring
        report = document(evaluation, time.perf_counter() - began)
    finally:
        runtime.close()
        context.close()
    print(f"backtest {args.start} to {args.end}: {report['hours']} hours in {report['seconds']} s")
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in run.seconds.items()))
    job_table(settings.effective_database_url, report["hours"])
    for name, row in [*report["policies"].items(), *report["baselines"].items()]:
        low, high = row["accuracy_ci"]
        extra = (
            f" retrainings {row['retrainings']} deployments {row['deployments']}"
            if "retrainings" in row
            else ""
        )
        print(f"{name:<10} accuracy {row['accuracy']:.4f} [{low:.3f}, {high:.3f}]{extra}")
    print(f"drift alarms: {report['drift_alarms']['total']}")
    print(f"home kept at {home}")


def demo(args: argparse.Namespace) -> None:
    home = Path(args.home or tempfile.mkdtemp(prefix="bench-demo-"))
    env_home = {"BTCMLOPS_HOME": str(home)}
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "btcmlops", "demo", "--no-serve", "--fresh", "--days",
         str(args.demo)],
        check=True,
        env={**os.environ, **env_home},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    print(f"demo --days {args.demo}: {seconds:.1f} s (process start to exit)")
    job_table(f"sqlite:///{home / 'btcmlops.db'}", args.demo * 24)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", default=str(GEMINI))
    parser.add_argument("--start", default="2020-01-01")
    parser.add_argument("--end", default="2020-12-31")
    parser.add_argument("--warm-days", type=int, default=60)
    parser.add_argument("--model-type", default="random_forest")
    parser.add_argument("--home")
    parser.add_argument("--demo", type=int, help="time the demo of this many days instead")
    args = parser.parse_args()
    if args.demo:
        demo(args)
    else:
        backtest(args)


if __name__ == "__main__":
    main()
