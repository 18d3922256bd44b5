"""How predictable is the simulated market? Direction accuracy before and after the change.

For several seeds, simulates ``--days`` days with the default regime change half-way, scores
every article with VADER and builds, for each bar t, the signal a feature row sees: the mean
VADER compound of the articles published in the last W hours before the bar closes (t + 1h).
The target is ``close(t + 1h) > close(t)``. Rules compared:

* ``fixed``: predict up when the signal is positive (what a model trained before the change
  learns), on the hours before and after the change;
* ``retrained``: after the change, the sign of the relation re-learnt on the first half of the
  post-change hours, judged on the second half;
* ``mood``: the fixed rule on the true latent mood (the best any model can do);
* ``momentum``: the sign of the last 6 hours' return (a price-only rule).

    .venv/bin/python bench/simulator_signal.py [--seeds 8] [--days 240]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from btcmlops.clock import parse_utc
from btcmlops.ingest.simulator import MarketSimulator
from btcmlops.ingest.simulator_config import SimulationConfig

START = parse_utc("2024-01-01T00:00:00Z")
WINDOWS = (1, 6, 24)


def accuracy(signal: pd.Series, up: pd.Series, sign: float = 1.0) -> float:
    usable = signal.notna() & up.notna() & (signal != 0)
    return float(((sign * signal[usable] > 0) == (up[usable] == 1)).mean())


def measure(seed: int, days: int, analyzer: SentimentIntensityAnalyzer) -> dict[str, float]:
    simulator = MarketSimulator(
        SimulationConfig(seed=seed, start=START, days=days, regime_change_day=days // 2)
    )
    hourly = simulator.hourly_frame()
    items = simulator.fetch_articles(START, simulator.config.end)
    articles = simulator.article_frame().assign(
        compound=[analyzer.polarity_scores(item.text)["compound"] for item in items]
    )
    per_hour = articles.groupby("hour")["compound"].agg(["sum", "count"]).reindex(hourly.index)
    following = hourly["close"].shift(-1)
    up = (following > hourly["close"]).astype(float).where(following.notna())
    after = hourly.index >= simulator.config.regime_change_at
    post = np.flatnonzero(after)
    fit, check = hourly.index[post[: len(post) // 2]], hourly.index[post[len(post) // 2 :]]

    result: dict[str, float] = {}
    for window in WINDOWS:
        summed = per_hour.fillna(0).rolling(window, min_periods=1).sum()
        signal = (summed["sum"] / summed["count"]).where(summed["count"] > 0)
        learned = np.sign(signal[fit].corr(up[fit]))
        result[f"vader {window:>2}h before, fixed"] = accuracy(signal[~after], up[~after])
        result[f"vader {window:>2}h after,  fixed"] = accuracy(signal[after], up[after])
        result[f"vader {window:>2}h after,  retrained"] = accuracy(
            signal[check], up[check], learned
        )
    result["mood before, fixed"] = accuracy(hourly["mood"][~after], up[~after])
    momentum = hourly["log_return"].rolling(6).sum()
    result["momentum 6h before"] = accuracy(momentum[~after], up[~after])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--days", type=int, default=240)
    arguments = parser.parse_args()
    began = time.perf_counter()
    analyzer = SentimentIntensityAnalyzer()
    rows = pd.DataFrame(
        [measure(seed, arguments.days, analyzer) for seed in range(1, arguments.seeds + 1)]
    )
    print(
        f"direction accuracy, {arguments.seeds} seeds x {arguments.days} days "
        f"(change at day {arguments.days // 2}); mean, min, max over seeds"
    )
    for name in rows.columns:
        column = rows[name]
        print(f"  {name:<30} {column.mean():.3f}  [{column.min():.3f}, {column.max():.3f}]")
    print(f"wall time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
