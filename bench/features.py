"""Benchmark: build both feature sets for a year of hourly data from a store.

Creates a synthetic store (8,760 hourly bars, about 3 articles an hour, each scored by both
VADER and FinBERT; generated here with numpy, no simulator), then times a full build of each
feature set, the total, and an incremental build of one new hour (the serving path).

    .venv/bin/python bench/features.py [--days 365] [--articles-per-hour 3]
        [--database-url URL] [--seed 7]

The issue's target: both sets for 365 days in at most 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.db.models import Article, ArticleSentiment, PriceBar
from btcmlops.db.store import Store
from btcmlops.features.builder import build_features
from btcmlops.features.schema import FEATURE_SETS, feature_names

START = parse_utc("2024-01-01T00:00:00Z")
SYMBOL = "BTCUSD"
CHUNK = 5_000


def synthetic_bars(hours: int, rng: np.random.Generator) -> list[dict]:
    """A geometric random walk with consistent OHLC and log-normal volume."""
    close = 42_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.006, hours)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.004, hours))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.004, hours))
    volume = rng.lognormal(4.0, 0.6, hours)
    return [
        {
            "symbol": SYMBOL,
            "ts": START + timedelta(hours=i),
            "open": float(open_[i]),
            "high": float(high[i]),
            "low": float(low[i]),
            "close": float(close[i]),
            "volume": float(volume[i]),
            "source": "bench",
            "ingested_at": START,
        }
        for i in range(hours)
    ]


def synthetic_articles(
    hours: int, per_hour: float, rng: np.random.Generator
) -> tuple[list[dict], list[dict]]:
    """Articles at Poisson times and one score per article for each scorer."""
    count = int(rng.poisson(per_hour * hours))
    seconds = np.sort(rng.uniform(0.0, hours * 3600.0, count))
    articles, scores = [], []
    for i, offset in enumerate(seconds, start=1):
        published = START + timedelta(seconds=float(offset))
        articles.append(
            {
                "id": i,
                "dedup_key": f"bench:{i}",
                "url": None,
                "title": f"Bitcoin headline {i}",
                "body": "Synthetic body text.",
                "source": "bench",
                "published_at": published,
                "ingested_at": published,
            }
        )
        for scorer in ("vader", "finbert"):
            shares = rng.dirichlet([2.0, 2.0, 3.0])
            scores.append(
                {
                    "article_id": i,
                    "scorer": scorer,
                    "scorer_version": "bench",
                    "published_at": published,
                    "positive": float(shares[0]),
                    "negative": float(shares[1]),
                    "neutral": float(shares[2]),
                    "compound": float(np.clip(shares[0] - shares[1] + rng.normal(0, 0.2), -1, 1)),
                    "confidence": float(shares.max()),
                    "scored_at": published,
                }
            )
    return articles, scores


def fill_store(store: Store, days: int, per_hour: float, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    hours = days * 24
    bars = synthetic_bars(hours, rng)
    articles, scores = synthetic_articles(hours, per_hour, rng)
    with store.session() as session:
        for table, rows in ((PriceBar, bars), (Article, articles), (ArticleSentiment, scores)):
            for start in range(0, len(rows), CHUNK):
                session.execute(insert(table), rows[start : start + CHUNK])
    return len(bars), len(articles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--articles-per-hour", type=float, default=3.0)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        store = Store.open(url)
        try:
            started = time.perf_counter()
            bars, articles = fill_store(store, args.days, args.articles_per_hour, args.seed)
            print(
                f"store: {store.dialect}, {bars} bars, {articles} articles x 2 scorers "
                f"(filled in {time.perf_counter() - started:.1f} s)"
            )
            clock = ManualClock(START + timedelta(hours=bars))
            total = 0.0
            for feature_set in FEATURE_SETS:
                started = time.perf_counter()
                summary = build_features(store, feature_set, clock=clock, symbol=SYMBOL)
                elapsed = time.perf_counter() - started
                total += elapsed
                print(
                    f"full build {feature_set:>7}: {elapsed:6.2f} s  "
                    f"({summary.rows_inserted} rows x {len(feature_names(feature_set))} features)"
                )
            print(f"full build    total: {total:6.2f} s  (target <= 20 s)")

            _add_one_hour(store, bars)
            clock.advance(hours=1)
            for feature_set in FEATURE_SETS:
                started = time.perf_counter()
                summary = build_features(store, feature_set, clock=clock, symbol=SYMBOL)
                elapsed = time.perf_counter() - started
                print(
                    f"incremental {feature_set:>7}: {elapsed * 1000:6.1f} ms  "
                    f"({summary.rows_inserted} new row)"
                )
        finally:
            store.close()


def _add_one_hour(store: Store, hours: int) -> None:
    ts = START + timedelta(hours=hours)
    with store.session() as session:
        session.execute(
            insert(PriceBar),
            [
                {
                    "symbol": SYMBOL,
                    "ts": ts,
                    "open": 42_000.0,
                    "high": 42_100.0,
                    "low": 41_900.0,
                    "close": 42_050.0,
                    "volume": 50.0,
                    "source": "bench",
                    "ingested_at": ts,
                }
            ],
        )


if __name__ == "__main__":
    main()
