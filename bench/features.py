"""Benchmark: build both feature sets for a year of hourly data from a store, then hour by hour.

Creates a synthetic store (8,760 hourly bars, about 3 articles an hour, each scored by both
VADER and FinBERT; generated here with numpy, no simulator), then times a full build of each
feature set and the total. Then, as the hourly job does, it builds ``--hours`` more hours one
at a time, first row by row (``compute_feature_frame(..., first_output=hour)``, what
``build_features`` does for a few new hours) and then, for as many further hours, over the
whole trailing window (the path before rows were built incrementally); and it times the
computation alone on the trailing window both ways (median of ``--repeats``).

    .venv/bin/python bench/features.py [--days 365] [--hours 48] [--repeats 50]
        [--articles-per-hour 3] [--database-url URL] [--seed 7]

The issue's targets: both sets for 365 days in at most 20 s on 2 cores; a new hour's row in
at most 5 ms per feature set.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.db.models import Article, ArticleSentiment, PriceBar
from btcmlops.db.store import Store
from btcmlops.features import builder
from btcmlops.features.builder import build_features, compute_feature_frame
from btcmlops.features.schema import (
    FEATURE_SETS,
    MAX_LOOKBACK_HOURS,
    SCORER_FOR_SET,
    feature_names,
)
from btcmlops.features.stored_inputs import load_bars_frame, load_sentiment_frame

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


def fill_store(store: Store, hours: int, per_hour: float, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
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
    parser.add_argument("--hours", type=int, default=48, help="hours built one at a time, per path")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--articles-per-hour", type=float, default=3.0)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        store = Store.open(url)
        try:
            started = time.perf_counter()
            # Bars and articles of the hours built one at a time are stored up front: the
            # hourly job builds hours whose data has already arrived.
            hours = args.days * 24
            bars, articles = fill_store(
                store, hours + 2 * args.hours, args.articles_per_hour, args.seed
            )
            print(
                f"store: {store.dialect}, {bars} bars, {articles} articles x 2 scorers "
                f"(filled in {time.perf_counter() - started:.1f} s)"
            )
            clock = ManualClock(START + timedelta(hours=hours))
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

            hourly = {
                "row by row": _hourly_builds(store, clock, args.hours, row_by_row=True),
                "whole window": _hourly_builds(store, clock, args.hours, row_by_row=False),
            }
            for feature_set in FEATURE_SETS:
                line = ", ".join(
                    f"{path} {_median_ms(times[feature_set])}" for path, times in hourly.items()
                )
                print(
                    f"hourly build {feature_set:>7}: {line} ms/hour "
                    f"(build_features, median of {args.hours} hours)"
                )
            for feature_set in FEATURE_SETS:
                row, window = _compute_times(store, feature_set, clock, args.repeats)
                print(
                    f"compute only {feature_set:>7}: row by row {_median_ms(row)}, "
                    f"whole window {_median_ms(window)} ms/hour "
                    f"(median of {args.repeats}; target <= 5 ms)"
                )
            print("(wall / CPU of this process: on a shared machine CPU time varies less)")
        finally:
            store.close()


Timing = tuple[float, float]  # seconds of wall clock, seconds of this process's CPU


def _timed(work: Callable[[], object]) -> tuple[object, Timing]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def _median_ms(timings: list[Timing]) -> str:
    wall, cpu = np.median(np.asarray(timings), axis=0) * 1000
    return f"{wall:5.2f} / {cpu:5.2f}"


def _hourly_builds(
    store: Store, clock: ManualClock, hours: int, *, row_by_row: bool
) -> dict[str, list[Timing]]:
    """Times of each ``build_features`` call, building the next ``hours`` hours one at a time."""
    cutoff = builder.ROW_BY_ROW_MAX_HOURS
    builder.ROW_BY_ROW_MAX_HOURS = cutoff if row_by_row else 0
    times: dict[str, list[Timing]] = {feature_set: [] for feature_set in FEATURE_SETS}
    try:
        for _ in range(hours):
            clock.advance(hours=1)
            for feature_set in FEATURE_SETS:
                summary, timing = _timed(
                    lambda feature_set=feature_set: build_features(
                        store, feature_set, clock=clock, symbol=SYMBOL
                    )
                )
                times[feature_set].append(timing)
                assert summary.rows_inserted == 1, summary
    finally:
        builder.ROW_BY_ROW_MAX_HOURS = cutoff
    return times


def _compute_times(
    store: Store, feature_set: str, clock: ManualClock, repeats: int
) -> tuple[list[Timing], list[Timing]]:
    """Times to compute the newest hour's row, alone and with its whole window (interleaved)."""
    newest = clock.now() - timedelta(hours=1)
    first_bar = newest - timedelta(hours=MAX_LOOKBACK_HOURS)
    bars = load_bars_frame(store, SYMBOL, start=first_bar, end=clock.now())
    sentiment = load_sentiment_frame(
        store,
        SCORER_FOR_SET[feature_set],
        start=first_bar - timedelta(hours=MAX_LOOKBACK_HOURS),
        end=clock.now(),
    )
    row_times, window_times = [], []
    for _ in range(repeats):
        row, timing = _timed(
            lambda: compute_feature_frame(bars, sentiment, feature_set, first_output=newest)
        )
        row_times.append(timing)
        window, timing = _timed(lambda: compute_feature_frame(bars, sentiment, feature_set))
        window_times.append(timing)
    assert row.to_numpy().tobytes() == window.iloc[-1:].to_numpy().tobytes()  # type: ignore[union-attr]
    return row_times, window_times


if __name__ == "__main__":
    main()
