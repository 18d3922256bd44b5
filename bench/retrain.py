"""Benchmark: the full retraining workflow and the decision check on a year of hourly data.

Simulates 365 days (embedded simulator, VADER-scored news), builds the vader features, trains
a first champion, then times on the same store:

* ``should_retrain`` (every check: live accuracy in SQL, the drift summary over a 7+2 day
  window, schedule, data, cooldown) — target <= 1 s;
* ``retrain_model`` end to end (load the whole year, chronological split, train the challenger,
  score challenger and champion on the same hours, McNemar, decide, save the artifact with
  its sha256, record the run) — target <= 60 s for random forest on 2 cores.

    .venv/bin/python bench/retrain.py [--days 365] [--model-type random_forest]
        [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from btcmlops.clock import ManualClock, floor_hour, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.store import Store
from btcmlops.features.builder import build_features
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
from btcmlops.mlops.article_scoring import score_pending_articles
from btcmlops.mlops.runtime import Runtime
from btcmlops.sentiment.vader import VaderScorer
from common import backend_name, temporary_database

END = parse_utc("2025-01-01T00:00:00Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--model-type", default="random_forest")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="btcmlops-bench-retrain-"))
    with temporary_database(folder, args.database_url) as url:
        store = Store.open(url)
        # The challenger trains on the whole simulated year (the default window is 60 days).
        settings = Settings(
            home=folder / "home",
            database_url=url,
            retrain_window_days=float(args.days),
            _env_file=None,
        )
        clock = ManualClock(END)
        started = time.perf_counter()
        simulator = MarketSimulator.ending_at(END, args.days, seed=11)
        config = simulator.config
        simulate_into_store(store, clock, simulator, config.start, config.end, settings.symbol)
        scored = score_pending_articles(store, VaderScorer(), clock=clock)
        build_features(store, "vader", clock=clock, symbol=settings.symbol)
        print(
            f"prepared {args.days} days ({backend_name(url)}; {scored.scored} articles scored) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        runtime = Runtime(AppContext(settings=settings, clock=clock, _store=store))
        retraining = runtime.retraining

        first = retraining.retrain_model("vader", args.model_type, trigger="initial")
        print(
            f"first champion: {first['new_model']['model_version']} "
            f"({first['training_duration_seconds']:.1f} s)"
        )
        decision_times = []
        for _ in range(5):
            tick = time.perf_counter()
            retraining.should_retrain("vader", args.model_type)
            decision_times.append(time.perf_counter() - tick)
        print(
            f"should_retrain: median {statistics.median(decision_times) * 1000:.0f} ms, "
            f"max {max(decision_times) * 1000:.0f} ms over 5 checks (target <= 1000 ms)"
        )
        clock.set(floor_hour(clock.now()))  # same data: a fair champion-vs-challenger meeting
        tick = time.perf_counter()
        result = retraining.retrain_model("vader", args.model_type, trigger="benchmark")
        workflow = time.perf_counter() - tick
        print(
            f"retrain_model ({args.model_type}): {workflow:.1f} s end to end "
            f"(target <= 60 s); train rows {result['samples']['train']}, comparison hours "
            f"{result['samples']['comparison']}, decision: "
            f"{'deployed' if result['deployment']['deployed'] else 'kept'}"
        )
        store.close()


if __name__ == "__main__":
    main()
