"""Benchmark: simulate a year of hourly prices and news and store it in a fresh store.

Target: 365 days in at most 30 s on 2 cores. Prints the wall time of each stage and
the counts. By default the store is a new SQLite file in a temporary folder; pass
``--database-url`` to time another store (for PostgreSQL, an empty database or schema).

    .venv/bin/python bench/simulate.py [--days 365] [--seed 42] [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from btcmlops.clock import FixedClock, parse_utc
from btcmlops.db.store import Store
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store

END = parse_utc("2025-01-01T00:00:00Z")  # fixed, so every run simulates the same world


def run(days: int, seed: int, database_url: str) -> None:
    began = time.perf_counter()
    simulator = MarketSimulator.ending_at(END, days=days, seed=seed, regime_change_day=days // 2)
    simulated = time.perf_counter()

    store = Store.open(database_url)
    opened = time.perf_counter()
    clock = FixedClock(END)
    config = simulator.config
    bars, articles = simulate_into_store(
        store, clock, simulator, config.start, config.end, "BTCUSD"
    )
    stored = time.perf_counter()
    again_bars, again_articles = simulate_into_store(
        store, clock, simulator, config.start, config.end, "BTCUSD"
    )
    repeated = time.perf_counter()
    store.close()

    print(f"simulated market: {days} days, seed {seed}, regime change at day {days // 2}")
    print(f"  bars     {bars.line()}")
    print(f"  articles {articles.line()}")
    print(f"generate path          {simulated - began:7.2f} s")
    print(f"open + migrate store   {opened - simulated:7.2f} s")
    print(f"fetch + store          {stored - opened:7.2f} s")
    print(f"total (target <= 30 s) {stored - began:7.2f} s")
    print(
        f"second run (idempotent, inserted {again_bars.inserted + again_articles.inserted}) "
        f"{repeated - stored:7.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", default=None, help="default: fresh SQLite file")
    arguments = parser.parse_args()
    if arguments.database_url:
        run(arguments.days, arguments.seed, arguments.database_url)
        return
    with tempfile.TemporaryDirectory(prefix="btcmlops-bench-") as folder:
        run(arguments.days, arguments.seed, f"sqlite:///{Path(folder) / 'btcmlops.db'}")


if __name__ == "__main__":
    main()
