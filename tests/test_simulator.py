"""The embedded market simulator: sound data, determinism, a weak signal, a regime change."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from btcmlops.clock import floor_hour, parse_utc
from btcmlops.db.models import Article, PriceBar
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
from btcmlops.ingest.simulator_config import SimulationConfig
from btcmlops.ingest.sources import NewsSource, PriceSource

START = parse_utc("2024-01-01T00:00:00Z")
SENTIMENT_WINDOW_HOURS = 6


def simulator(**changes) -> MarketSimulator:
    settings = {"seed": 11, "start": START, "days": 10} | changes
    return MarketSimulator(SimulationConfig(**settings))


def whole(source: MarketSimulator) -> tuple[list, list]:
    config = source.config
    return (
        list(source.fetch_bars(config.start, config.end)),
        list(source.fetch_articles(config.start, config.end)),
    )


def vader_compounds(items) -> np.ndarray:
    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(item.text)["compound"] for item in items])


def recent_sentiment(source: MarketSimulator, compounds: np.ndarray) -> pd.Series:
    """What a feature row for bar t sees: the mean compound of the articles published in the
    last SENTIMENT_WINDOW_HOURS before the bar closes at t + 1h."""
    articles = source.article_frame().assign(compound=compounds)
    hours = source.hourly_frame().index
    per_hour = articles.groupby("hour")["compound"].agg(["sum", "count"]).reindex(hours)
    window = per_hour.fillna(0).rolling(SENTIMENT_WINDOW_HOURS, min_periods=1).sum()
    return (window["sum"] / window["count"]).where(window["count"] > 0)


def next_hour_up(source: MarketSimulator) -> pd.Series:
    close = source.hourly_frame()["close"]
    following = close.shift(-1)
    return (following > close).astype(float).where(following.notna())


def direction_accuracy(signal: pd.Series, target: pd.Series, sign: float = 1.0) -> float:
    usable = signal.notna() & target.notna() & (signal != 0)
    predicted_up = (sign * signal[usable]) > 0
    return float((predicted_up == (target[usable] == 1)).mean())


# --- the two interfaces and sound data ---------------------------------------------------


def test_simulator_is_both_a_price_source_and_a_news_source():
    source = simulator(days=1)
    assert isinstance(source, PriceSource) and isinstance(source, NewsSource)
    assert source.name == "simulator"


def test_bars_are_sound_consecutive_hours_and_open_where_the_last_closed():
    bars, _ = whole(simulator(days=30))
    assert len(bars) == 30 * 24
    assert all(bar.problem() is None for bar in bars)
    assert [bar.ts for bar in bars] == [START + timedelta(hours=i) for i in range(len(bars))]
    assert all(later.open == earlier.close for earlier, later in pairwise(bars))
    assert 10_000 <= bars[0].open <= 99_999
    assert all(bar.ts.utcoffset() == timedelta(0) for bar in bars)


def test_returns_have_heavy_tails_and_volatility_clustering():
    returns = simulator(days=120).hourly_frame()["log_return"]
    assert returns.kurt() > 1.0  # a normal distribution has excess kurtosis 0
    magnitude = returns.abs()
    assert magnitude.autocorr(lag=1) > 0.05
    assert magnitude.autocorr(lag=24) > 0.0


def test_articles_have_text_unique_urls_outlets_and_utc_times_in_the_window():
    source = simulator(days=5)
    window_start, window_end = START + timedelta(hours=7), START + timedelta(days=3, minutes=30)
    items = list(source.fetch_articles(window_start, window_end))
    assert len(items) > 50
    assert all(window_start <= item.published_at < window_end for item in items)
    assert [item.published_at for item in items] == sorted(item.published_at for item in items)
    assert all(item.title and item.body and item.text.count(".") >= 1 for item in items)
    urls = [item.url for item in items]
    assert len(set(urls)) == len(urls)
    assert all(url.startswith("https://sim.btcmlops.local/news/11/") for url in urls)
    assert 2 <= len({item.source for item in items}) <= 10


def test_vader_compound_of_an_article_tracks_its_latent_sentiment():
    source = simulator(days=7)
    items = list(source.fetch_articles(START, source.config.end))
    assert len(items) >= 300
    latent = source.article_frame()["sentiment"].to_numpy()
    assert np.corrcoef(latent, vader_compounds(items))[0, 1] > 0.5


# --- determinism ---------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data_and_another_seed_different_data():
    first_bars, first_articles = whole(simulator(seed=5))
    again_bars, again_articles = whole(simulator(seed=5))
    other_bars, other_articles = whole(simulator(seed=6))
    assert first_bars == again_bars and first_articles == again_articles
    assert [b.close for b in first_bars] != [b.close for b in other_bars]
    assert [a.title for a in first_articles] != [a.title for a in other_articles]
    assert not {a.url for a in first_articles} & {a.url for a in other_articles}


def test_fetching_window_by_window_gives_exactly_what_one_fetch_gives():
    source = simulator(days=4)
    bars, articles = whole(source)
    cuts = [START + timedelta(hours=h, minutes=m) for h, m in [(0, 0), (1, 0), (5, 17), (30, 0)]]
    cuts += [START + timedelta(hours=h) for h in range(31, 97)]
    chunked_bars, chunked_articles = [], []
    for lower, upper in pairwise(cuts):
        chunked_bars += source.fetch_bars(lower, upper)
        chunked_articles += source.fetch_articles(lower, upper)
    assert chunked_bars == bars
    assert chunked_articles == articles


def test_a_longer_history_starts_with_the_shorter_one():
    short_bars, short_articles = whole(simulator(days=3))
    long_bars, long_articles = whole(simulator(days=9))
    assert long_bars[: len(short_bars)] == short_bars
    assert long_articles[: len(short_articles)] == short_articles


def test_windows_outside_the_simulated_span_yield_nothing_and_overlaps_are_clipped():
    source = simulator(days=2)
    before = START - timedelta(days=3)
    assert list(source.fetch_bars(before, START)) == []
    assert (
        list(source.fetch_articles(source.config.end, source.config.end + timedelta(days=1))) == []
    )
    assert len(list(source.fetch_bars(before, START + timedelta(hours=5)))) == 5
    assert len(list(source.fetch_bars(START + timedelta(hours=3), START))) == 0


# --- the signal and the regime change ------------------------------------------------------


@pytest.fixture(scope="module")
def changing_market():
    """120 days with the default regime change (relation flips) at day 60, VADER-scored."""
    source = MarketSimulator(SimulationConfig(seed=42, start=START, days=120, regime_change_day=60))
    items = list(source.fetch_articles(START, source.config.end))
    return source, recent_sentiment(source, vader_compounds(items))


def test_recent_sentiment_predicts_the_next_hour_only_weakly_before_the_change(changing_market):
    source, sentiment = changing_market
    before = source.hourly_frame().index < source.config.regime_change_at
    accuracy = direction_accuracy(sentiment[before], next_hour_up(source)[before])
    assert 0.53 <= accuracy <= 0.58


def test_after_the_change_an_old_model_fails_and_a_retrained_one_recovers(changing_market):
    source, sentiment = changing_market
    target = next_hour_up(source)
    after = sentiment.index >= source.config.regime_change_at
    post_sentiment, post_target = sentiment[after], target[after]
    half = len(post_sentiment) // 2
    fit, check = post_sentiment.index[:half], post_sentiment.index[half:]
    # The old model keeps the pre-change rule; the retrained one re-learns the sign of the
    # relation on the first half of post-change data and is judged on the second half.
    learned_sign = np.sign(post_sentiment[fit].corr(post_target[fit]))
    old = direction_accuracy(post_sentiment[check], post_target[check])
    retrained = direction_accuracy(post_sentiment[check], post_target[check], learned_sign)
    assert old < 0.5 < retrained


def test_the_regime_change_shows_in_volatility_news_volume_and_the_signal_sign():
    source = MarketSimulator(SimulationConfig(seed=3, start=START, days=80, regime_change_day=40))
    frame = source.hourly_frame()
    after = frame.index >= source.config.regime_change_at
    returns = frame["log_return"]
    assert 1.5 < returns[after].std() / returns[~after].std() < 2.7
    per_day = frame["articles"].groupby(after).sum() / 40
    assert 1.3 < per_day[True] / per_day[False] < 1.7
    mood_then_return = pd.DataFrame({"mood": frame["mood"], "next": returns.shift(-1)})
    assert mood_then_return[~after].corr().loc["mood", "next"] > 0.03
    assert mood_then_return[after].corr().loc["mood", "next"] < -0.03
    # Prices stay continuous across the change.
    assert (frame["open"].iloc[1:].to_numpy() == frame["close"].iloc[:-1].to_numpy()).all()


def test_without_a_scheduled_change_the_relation_keeps_its_sign():
    frame = MarketSimulator(SimulationConfig(seed=3, start=START, days=80)).hourly_frame()
    second_half = frame.iloc[40 * 24 :]
    assert second_half["mood"].corr(second_half["log_return"].shift(-1)) > 0.03
    assert (frame["signal"] > 0).all()


def test_a_weakening_change_scales_the_signal_instead_of_flipping_it():
    frame = simulator(days=20, regime_change_day=10, post_change_signal=0.25).hourly_frame()
    before, after = frame["signal"].iloc[0], frame["signal"].iloc[-1]
    assert after == pytest.approx(0.25 * before) and after > 0


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"seed": -1}, "seed"),
        ({"days": 0}, "days"),
        ({"start": parse_utc("2024-01-01T00:30:00Z")}, "on the hour"),
        ({"regime_change_day": 10}, "regime_change_day"),
        ({"garch_alpha": 0.2, "garch_beta": 0.85}, "garch_alpha + garch_beta"),
        ({"tail_dof": 2.0}, "tail_dof"),
        ({"mood_persistence": 1.0}, "mood_persistence"),
        ({"news_rate_per_hour": -1.0}, "news_rate_per_hour"),
        ({"initial_price": 0.0}, "initial_price"),
        ({"post_change_signal": float("nan")}, "post_change_signal must be finite"),
    ],
)
def test_impossible_settings_are_refused_naming_the_setting(change, named):
    with pytest.raises(InvalidInputError, match=named.replace("+", r"\+")):
        SimulationConfig(**({"start": START, "days": 10} | change))


def test_ending_at_places_the_history_before_the_hour_of_the_end():
    end = parse_utc("2024-05-10T13:45:12Z")
    source = MarketSimulator.ending_at(end, days=3, seed=9, regime_change_day=2)
    bars = list(source.fetch_bars(end - timedelta(days=10), end + timedelta(days=1)))
    assert len(bars) == 72
    assert bars[-1].ts + timedelta(hours=1) == floor_hour(end)
    assert source.config.regime_change_at == bars[0].ts + timedelta(days=2)


def test_ending_at_passes_overrides_and_refuses_unknown_ones():
    end = parse_utc("2024-05-10T00:00:00Z")
    quiet = MarketSimulator.ending_at(end, days=2, seed=1, news_rate_per_hour=0.0)
    assert quiet.fetch_articles(end - timedelta(days=2), end) == []
    with pytest.raises(InvalidInputError, match="volatilty"):
        MarketSimulator.ending_at(end, days=2, seed=1, volatilty=0.1)


# --- storing -------------------------------------------------------------------------------


def count(store, model):
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_simulating_into_the_store_writes_every_bar_and_article_once(store, clock):
    source = simulator(days=3)
    config = source.config
    reported = []
    bars, articles = simulate_into_store(
        store,
        clock,
        source,
        config.start,
        config.end,
        "BTCUSD",
        progress=lambda done, total: reported.append((done, total)),
    )
    expected_bars, expected_articles = whole(source)
    assert (bars.inserted, bars.rejected) == (72, 0)
    assert (articles.inserted, articles.rejected) == (len(expected_articles), 0)
    assert count(store, PriceBar) == 72 and count(store, Article) == len(expected_articles)
    assert reported == [(24, 72), (48, 72), (72, 72)]
    with store.session() as session:
        stored = session.execute(
            select(PriceBar.close, PriceBar.source).order_by(PriceBar.ts)
        ).all()
    assert [close for close, _ in stored] == [bar.close for bar in expected_bars]
    assert {source_name for _, source_name in stored} == {"simulator"}

    again_bars, again_articles = simulate_into_store(
        store, clock, source, config.start, config.end, "BTCUSD"
    )
    assert (again_bars.inserted, again_bars.skipped) == (0, 72)
    assert (again_articles.inserted, again_articles.skipped) == (0, len(expected_articles))


def test_simulating_a_partial_window_stores_only_that_window(store, clock):
    source = simulator(days=3)
    lower, upper = START + timedelta(hours=10), START + timedelta(hours=40)
    bars, articles = simulate_into_store(store, clock, source, lower, upper, "BTCUSD")
    assert bars.inserted == 30
    assert articles.inserted == len(source.fetch_articles(lower, upper))


def test_an_empty_simulation_window_is_refused(store, clock):
    source = simulator(days=1)
    with pytest.raises(InvalidInputError, match="not after"):
        simulate_into_store(store, clock, source, START, START, "BTCUSD")
