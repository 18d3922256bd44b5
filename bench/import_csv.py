"""Benchmark: CSV import of the 50,913-row hourly Gemini file into a fresh SQLite store.

Target: at most 5 s on 2 cores end to end (parse, validate, store). A second import
of the same file must insert nothing. The news file is imported too when present.

Usage: ``python bench/import_csv.py [DATA_DIR]`` (default ``/work/shared/data/peer``).
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

from btcmlops.clock import FixedClock, parse_utc
from btcmlops.db.store import Store
from btcmlops.ingest.csv_news import import_news_csv
from btcmlops.ingest.csv_prices import import_price_csv, parse_price_csv

DEFAULT_DATA = Path("/work/shared/data/peer")
HOURLY = "gemini_BTCUSD_1hr.csv"
NEWS = "news_df.csv"


def timed(action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def main() -> int:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    hourly = data / HOURLY
    if not hourly.exists():
        print(f"skipped: {hourly} is absent (the benchmark needs the real hourly export)")
        return 0
    print(f"python {platform.python_version()} on {platform.machine()}, file {hourly}")
    clock = FixedClock(parse_utc("2021-08-01T00:00:00Z"))

    parsed, seconds = timed(lambda: parse_price_csv(hourly))
    print(f"parse only:        {seconds:6.2f} s  ({len(parsed.bars)} bars, {parsed.describe()})")

    with tempfile.TemporaryDirectory() as folder:
        store, seconds = timed(lambda: Store.open(f"sqlite:///{Path(folder) / 'bench.db'}"))
        print(f"open + migrate:    {seconds:6.2f} s  (not part of the import)")
        try:
            for attempt in ("first import", "second import"):
                summary, seconds = timed(
                    lambda: import_price_csv(store, hourly, clock=clock, symbol="BTCUSD")
                )
                print(f"{attempt + ':':18} {seconds:6.2f} s  {summary.line()}")
                for rejection in summary.rejections:
                    print(f"    line {rejection.line}: {rejection.reason}")
            news = data / NEWS
            if news.exists():
                summary, seconds = timed(lambda: import_news_csv(store, news, clock=clock))
                print(f"{'news import:':18} {seconds:6.2f} s  {summary.line()}")
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
