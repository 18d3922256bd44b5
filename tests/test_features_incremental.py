"""Incremental features: a row computed alone (``first_output``) is the full build's row, bit
for bit, on simulated and real markets, and hour-by-hour builds store what one full build
stores."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from btcmlops.clock import parse_utc
from btcmlops.db.models import Article, ArticleSentiment, FeatureRow, PriceBar
from btcmlops.features import builder
from btcmlops.features.builder import build_features, compute_feature_frame
from btcmlops.features.schema import FEATURE_SETS, FEATURE_VERSION
from btcmlops.features.sentiment_features import trailing_max_int
from btcmlops.features.windows import (
    sum_in_lag_order,
    trailing_max,
    trailing_mean,
    trailing_min,
    trailing_std,
    trailing_sum,
    trailing_total,
    trailing_weighted_mean,
    trailing_weighted_total,
)
from btcmlops.ingest.simulator import MarketSimulator
from btcmlops.ingest.simulator_config import SimulationConfig

from support import same_bits

HOUR = pd.Timedelta(hours=1)
SIM_START = parse_utc("2024-03-01T00:00:00Z")
# The real file, read in place (never copied): ../shared/data/peer relative to the repository.
GEMINI_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "peer" / "gemini_BTCUSD_1hr.csv"
)
SYMBOL = "BTCUSD"


# ------------------------------------------------------------------------------ test data


def simulated_market(days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The simulator's bars with two gaps, and its articles scored from their latent tone,
    none published during seven and a half days (so even the 168-hour windows run empty)."""
    simulator = MarketSimulator(SimulationConfig(seed=seed, start=SIM_START, days=days))
    bars = simulator.hourly_frame()[["open", "high", "low", "close", "volume"]]
    gaps = (bars.index >= SIM_START + 60 * HOUR) & (bars.index < SIM_START + 66 * HOUR)
    bars = bars[~gaps & (bars.index != SIM_START + 130 * HOUR)]
    articles = simulator.article_frame()
    quiet = (articles["published_at"] >= SIM_START + 9 * 24 * HOUR) & (
        articles["published_at"] < SIM_START + 16.5 * 24 * HOUR
    )
    articles = articles[~quiet]
    return bars, scored(articles["published_at"], articles["sentiment"].to_numpy())


def scored(published: pd.Series, tone: np.ndarray) -> pd.DataFrame:
    """A sentiment frame with every score column, derived from a tone in [-1, 1]."""
    return pd.DataFrame(
        {
            "published_at": pd.DatetimeIndex(published).tz_convert("UTC"),
            "compound": tone,
            "positive": np.clip(tone, 0.0, None),
            "negative": np.clip(-tone, 0.0, None),
            "neutral": 1.0 - np.abs(tone),
            "confidence": 0.5 + 0.5 * np.abs(tone),
        }
    )


def gemini_slice(first: str, end: str) -> pd.DataFrame:
    """Real hourly Gemini bars of ``[first, end)``, read in place, with two hours removed."""
    raw = pd.read_csv(GEMINI_CSV)
    ts = pd.to_datetime(raw["Date"], format="%d-%m-%y %H:%M", utc=True)
    bars = pd.DataFrame(
        {name.lower(): raw[name] for name in ("Open", "High", "Low", "Close", "Volume")}
    ).set_index(pd.DatetimeIndex(ts, name="ts"))
    bars = bars[~bars.index.duplicated()].sort_index()
    bars = bars[(bars.index >= first) & (bars.index < end)]
    return bars.drop(bars.index[[100, 101, 250]])


def sparse_articles(rng: np.random.Generator, first: pd.Timestamp, hours: int) -> pd.DataFrame:
    """About one article every four hours, so most hours have none."""
    count = int(rng.poisson(0.25 * hours))
    seconds = np.sort(rng.uniform(0.0, hours * 3600.0, count))
    published = pd.Series(first + pd.to_timedelta(seconds, unit="s")).dt.floor("us")
    return scored(published, np.clip(rng.normal(0.0, 0.4, count), -1.0, 1.0))


def row_mismatches(bars: pd.DataFrame, sentiment: pd.DataFrame, feature_set: str) -> list:
    """Each hour whose row, computed alone as the newest hour, is not the full build's row."""
    full = compute_feature_frame(bars, sentiment, feature_set)
    mismatches = []
    for i, hour in enumerate(full.index):
        alone = compute_feature_frame(bars.iloc[: i + 1], sentiment, feature_set, first_output=hour)
        expected = full.iloc[i : i + 1]
        if not (alone.index.equals(expected.index) and same_bits(alone, expected)):
            bits = alone.to_numpy().view(np.int64) != expected.to_numpy().view(np.int64)
            differ = alone.columns[bits.any(axis=0)] if bits.shape == (1, len(full.columns)) else []
            mismatches.append((hour, list(differ)))
    return mismatches


# ----------------------------------------------------------------------------- primitives


def awkward_series(rng: np.random.Generator, length: int) -> np.ndarray:
    """Values with NaN gaps, exact zeros of both signs and repeated values."""
    values = rng.normal(0.0, 1.0, length)
    values[rng.random(length) < 0.2] = np.nan
    values[rng.random(length) < 0.1] = 0.0
    values[rng.random(length) < 0.1] = -0.0
    values[rng.random(length) < 0.1] = 1.5
    return values


@pytest.mark.parametrize("hours", [1, 2, 14, 24, 48, 168])
def test_every_window_primitive_at_chosen_slots_has_the_bits_of_the_whole_grid(hours):
    rng = np.random.default_rng(hours)
    values = awkward_series(rng, 400)
    gap_free = np.nan_to_num(values, nan=-0.0)
    weights = 0.9 ** np.arange(hours)
    # Slots near the grid's start (windows reaching before it) and deep inside it.
    at = np.unique(np.concatenate([np.arange(5), rng.choice(400, 40, replace=False), [399]]))
    pairs = {
        "sum": (trailing_sum(values, hours)[0], trailing_sum(values, hours, at)[0]),
        "count": (trailing_sum(values, hours)[1], trailing_sum(values, hours, at)[1]),
        "total": (trailing_total(gap_free, hours), trailing_total(gap_free, hours, at)),
        "weighted total": (
            trailing_weighted_total(gap_free, weights),
            trailing_weighted_total(gap_free, weights, at),
        ),
        "mean": (
            trailing_mean(values, hours, min_count=1),
            trailing_mean(values, hours, min_count=1, at=at),
        ),
        "std": (
            trailing_std(values, hours, min_count=2, ddof=0),
            trailing_std(values, hours, min_count=2, ddof=0, at=at),
        ),
        "weighted mean": (
            trailing_weighted_mean(values, weights, min_count=1),
            trailing_weighted_mean(values, weights, min_count=1, at=at),
        ),
        "max": (trailing_max(values, hours), trailing_max(values, hours, at)),
        "min": (trailing_min(values, hours), trailing_min(values, hours, at)),
    }
    for name, (whole, chosen) in pairs.items():
        assert whole[at].tobytes() == chosen.tobytes(), name
    instants = rng.integers(0, 10**15, 400)
    assert trailing_max_int(instants, hours)[at].tobytes() == (
        trailing_max_int(instants, hours, at).tobytes()
    )


def test_a_sum_of_negative_zeros_is_the_positive_zero_a_sum_from_zero_gives():
    total = sum_in_lag_order(np.array([[-0.0, -0.0], [-0.0, 1.0]]))
    assert total.tobytes() == np.array([0.0, 1.0]).tobytes()


def test_a_window_extreme_of_signed_zeros_is_an_unsigned_zero():
    values = np.array([0.0, -0.0, -0.0, 0.0])
    assert np.signbit(trailing_max(values, 2)).sum() == 0
    assert np.signbit(trailing_min(values, 2, np.arange(4))).sum() == 0


# ------------------------------------------------------------------------- the row alone


@pytest.mark.slow  # recomputes each of 20 days' hours alone
@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_each_hour_of_a_simulated_market_computed_alone_equals_the_full_build(feature_set):
    bars, sentiment = simulated_market(days=20, seed=11)
    assert row_mismatches(bars, sentiment, feature_set) == []


@pytest.mark.slow  # recomputes each of two weeks' hours alone
@pytest.mark.skipif(
    not GEMINI_CSV.exists(), reason=f"the real Gemini file is absent ({GEMINI_CSV})"
)
@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_each_hour_of_real_gemini_bars_computed_alone_equals_the_full_build(feature_set):
    # Two weeks around the crash of 12 March 2020, the largest hourly moves of the file.
    bars = gemini_slice("2020-03-06", "2020-03-20")
    sentiment = sparse_articles(
        np.random.default_rng(5), bars.index[0] - 200 * HOUR, len(bars) + 200
    )
    assert row_mismatches(bars, sentiment, feature_set) == []


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
@pytest.mark.parametrize("rows", [0, 1, 2, 30, 169, 400])
def test_several_rows_computed_alone_equal_the_tail_of_the_full_build(feature_set, rows):
    bars, sentiment = simulated_market(days=20, seed=12)
    full = compute_feature_frame(bars, sentiment, feature_set)
    first_output = full.index[-rows] if rows else full.index[-1] + HOUR
    alone = compute_feature_frame(bars, sentiment, feature_set, first_output=first_output)
    expected = full.iloc[len(full) - rows :]
    assert alone.index.equals(expected.index)
    assert list(alone.columns) == list(full.columns)
    assert same_bits(alone, expected)


def test_a_first_output_before_every_bar_gives_every_row():
    bars, sentiment = simulated_market(days=10, seed=13)
    full = compute_feature_frame(bars, sentiment, "vader")
    alone = compute_feature_frame(
        bars, sentiment, "vader", first_output=(bars.index[0] - 500 * HOUR).to_pydatetime()
    )
    assert alone.index.equals(full.index) and same_bits(alone, full)


# ------------------------------------------------------------------------------ the store


def store_market(store, bars: pd.DataFrame, sentiment: pd.DataFrame) -> None:
    """Bars, their articles, and one score per article for each of the two scorers."""
    published = [moment.to_pydatetime() for moment in sentiment["published_at"]]
    scores = ("compound", "positive", "negative", "neutral", "confidence")
    with store.session() as session:
        session.execute(
            insert(PriceBar),
            [
                {
                    "symbol": SYMBOL,
                    "ts": ts.to_pydatetime(),
                    **{name: float(value) for name, value in bar.items()},
                    "source": "test",
                    "ingested_at": ts.to_pydatetime(),
                }
                for ts, bar in bars.iterrows()
            ],
        )
        session.execute(
            insert(Article),
            [
                {
                    "id": i,
                    "dedup_key": f"test:{i}",
                    "url": None,
                    "title": f"headline {i}",
                    "body": "body",
                    "source": "test",
                    "published_at": moment,
                    "ingested_at": moment,
                }
                for i, moment in enumerate(published, start=1)
            ],
        )
        session.execute(
            insert(ArticleSentiment),
            [
                {
                    "article_id": i,
                    "scorer": scorer,
                    "scorer_version": "test",
                    "published_at": moment,
                    **{name: float(sentiment[name].iloc[i - 1]) for name in scores},
                    "scored_at": moment,
                }
                for i, moment in enumerate(published, start=1)
                for scorer in ("vader", "finbert")
            ],
        )


def stored_rows(store, feature_set: str) -> dict:
    with store.session() as session:
        rows = session.execute(
            select(
                FeatureRow.ts, FeatureRow.close, FeatureRow.feature_values, FeatureRow.missing_count
            ).where(
                FeatureRow.feature_set == feature_set, FeatureRow.feature_version == FEATURE_VERSION
            )
        ).all()
    # float.hex keeps every bit (and the sign of a zero) that == would overlook.
    return {
        ts: (
            close.hex(),
            {k: None if v is None else float(v).hex() for k, v in values.items()},
            missing,
        )
        for ts, close, values, missing in rows
    }


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_building_hour_by_hour_stores_the_rows_of_one_full_build(store, clock, feature_set):
    bars, sentiment = simulated_market(days=12, seed=14)
    store_market(store, bars, sentiment)
    # A first build, three days hour by hour (the hourly job), then catch-ups of a few hours,
    # of a day and of more than a week (the whole-window path).
    as_of = [100, *range(101, 173), 176, 200, 200 + builder.ROW_BY_ROW_MAX_HOURS + 10]
    for hours in as_of:
        clock.set(SIM_START + timedelta(hours=hours))
        build_features(store, feature_set, clock=clock, symbol=SYMBOL)
    built_hourly = stored_rows(store, feature_set)

    summary = build_features(store, feature_set, clock=clock, symbol=SYMBOL, rebuild=True)
    assert summary.rows_inserted == len(built_hourly) == len(bars)
    assert stored_rows(store, feature_set) == built_hourly


def test_a_few_new_hours_are_computed_alone_and_a_long_catch_up_over_the_whole_window(
    store, clock, monkeypatch
):
    bars, sentiment = simulated_market(days=12, seed=15)
    store_market(store, bars, sentiment)
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs.get("first_output"))
        return compute_feature_frame(*args, **kwargs)

    monkeypatch.setattr(builder, "compute_feature_frame", spy)
    # The catch-up: more new bars than the cutoff, despite the seven hours without one.
    for hours in (24, 25, 27, 28 + builder.ROW_BY_ROW_MAX_HOURS + 20):
        clock.set(SIM_START + timedelta(hours=hours))
        build_features(store, "vader", clock=clock, symbol=SYMBOL)
    first_build, one_hour, two_hours, catch_up = calls
    assert first_build is None and catch_up is None
    assert (one_hour, two_hours) == (SIM_START + 24 * HOUR, SIM_START + 25 * HOUR)
