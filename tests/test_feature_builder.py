"""The feature builder: no look-ahead, time-based windows, and incremental builds in the store."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from btcmlops.db.models import Article, ArticleSentiment, FeatureRow, PriceBar
from btcmlops.errors import InvalidInputError
from btcmlops.features.builder import build_features, compute_feature_frame
from btcmlops.features.schema import (
    FEATURE_SETS,
    FEATURE_VERSION,
    feature_names,
    feature_specs,
)
from btcmlops.features.stored_inputs import latest_feature_row

from support import same_bits

HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-01-01T00:00:00Z")
SCORE_COLUMNS = ["compound", "positive", "negative", "neutral", "confidence"]


# ------------------------------------------------------------------------------ test data


def random_bars(rng, hours, *, start=T0, first_close=40_000.0):
    """A random walk of valid OHLCV bars for ``hours`` consecutive hours from ``start``."""
    close = first_close * np.exp(np.cumsum(rng.normal(0.0, 0.01, hours)))
    open_ = np.concatenate([[first_close], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, hours))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, hours))
    index = pd.DatetimeIndex([start + i * HOUR for i in range(hours)], name="ts")
    volume = rng.lognormal(3.0, 0.5, hours)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def random_articles(rng, start, end, per_hour=2.0):
    """Scored articles published in ``[start, end)``; a fifth of them exactly on an hour."""
    hours = (end - start) / HOUR
    count = int(rng.poisson(per_hour * hours))
    offsets = rng.uniform(0.0, hours, count)
    on_the_hour = rng.random(count) < 0.2
    offsets[on_the_hour] = np.floor(offsets[on_the_hour])
    # Microsecond precision, as the store keeps it.
    published = pd.DatetimeIndex(
        [start + pd.Timedelta(hours=float(offset)) for offset in offsets]
    ).floor("us")
    shares = rng.dirichlet([2.0, 2.0, 3.0], count)
    return pd.DataFrame(
        {
            "published_at": published,
            "compound": np.clip(shares[:, 0] - shares[:, 1] + rng.normal(0, 0.3, count), -1, 1),
            "positive": shares[:, 0],
            "negative": shares[:, 1],
            "neutral": shares[:, 2],
            "confidence": shares.max(axis=1),
        }
    )


def market(seed, hours=360, gaps=((150, 160),)):
    rng = np.random.default_rng(seed)
    bars = random_bars(rng, hours)
    for first, end in gaps:
        bars = bars.drop(
            bars.index[(bars.index >= T0 + first * HOUR) & (bars.index < T0 + end * HOUR)]
        )
    articles = random_articles(rng, T0 - 48 * HOUR, T0 + (hours + 24) * HOUR)
    return bars, articles


def perturb_after(bars, articles, as_of, rng):
    """Change every input after the as-of instant; keep everything before it as it was.

    Later bars get new prices and volumes, some disappear and new ones are appended; articles
    published at or after ``as_of`` get new scores, some disappear, and new ones are added,
    one of them exactly at ``as_of``.
    """
    later = bars.index >= as_of
    new_bars = bars.copy()
    if later.any():
        replacement = random_bars(rng, int(later.sum()), start=as_of, first_close=55_000.0)
        new_bars.loc[later, :] = replacement.to_numpy()
        dropped = new_bars.index[later][rng.random(int(later.sum())) < 0.2]
        new_bars = new_bars.drop(dropped)
    tail_start = bars.index[-1] + HOUR
    new_bars = pd.concat([new_bars, random_bars(rng, 12, start=tail_start, first_close=9_000.0)])

    is_later = articles["published_at"] >= as_of
    earlier = articles[~is_later]
    rescored = articles[is_later].copy()
    rescored[SCORE_COLUMNS] = rng.uniform(0.0, 1.0, (len(rescored), len(SCORE_COLUMNS)))
    rescored = rescored[rng.random(len(rescored)) > 0.2]
    added = random_articles(rng, as_of, as_of + 30 * HOUR, per_hour=4.0)
    exactly_at = added.iloc[:1].copy()
    exactly_at["published_at"] = as_of
    new_articles = pd.concat([rescored, added, exactly_at, earlier]).reset_index(drop=True)
    return new_bars, new_articles


# ------------------------------------------------------------------------- no look-ahead


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    hour=st.integers(0, 359),
    feature_set=st.sampled_from(FEATURE_SETS),
)
def test_no_input_after_the_as_of_instant_changes_a_row(seed, hour, feature_set):
    bars, articles = market(seed)
    t = T0 + hour * HOUR
    before = compute_feature_frame(bars, articles, feature_set)
    rng = np.random.default_rng(seed + 1)
    new_bars, new_articles = perturb_after(bars, articles, t + HOUR, rng)
    after = compute_feature_frame(new_bars, new_articles, feature_set)

    assert same_bits(before.loc[:t], after.loc[:t])
    # The perturbation did change what comes after the as-of instant.
    later = before.index[before.index > t]
    if len(later):
        assert not same_bits(before.loc[later], after.reindex(later))


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
@pytest.mark.parametrize("seed", [3, 11, 29])
def test_rows_deep_in_history_ignore_every_later_input(seed, feature_set):
    bars, articles = market(seed)
    rng = np.random.default_rng(seed)
    for hour in rng.choice(np.arange(170, 340), size=4, replace=False):
        t = T0 + int(hour) * HOUR
        if t not in bars.index:
            continue
        before = compute_feature_frame(bars, articles, feature_set).loc[t]
        new_bars, new_articles = perturb_after(bars, articles, t + HOUR, rng)
        after = compute_feature_frame(new_bars, new_articles, feature_set).loc[t]
        assert same_bits(before, after)
        assert before.notna().sum() > 0.9 * len(before)  # the row is really computed


def test_an_article_published_just_before_the_as_of_instant_counts_and_one_at_it_does_not():
    bars, articles = market(5)
    t = T0 + 200 * HOUR
    base = compute_feature_frame(bars, articles, "vader").loc[t]
    extra = articles.iloc[:1].copy()
    extra["published_at"] = t + HOUR - pd.Timedelta(microseconds=1)
    inside = compute_feature_frame(bars, pd.concat([articles, extra]), "vader").loc[t]
    extra["published_at"] = t + HOUR
    outside = compute_feature_frame(bars, pd.concat([articles, extra]), "vader").loc[t]
    assert inside["sent_count_1h"] == base["sent_count_1h"] + 1
    assert same_bits(outside, base)


def test_each_feature_reads_no_further_back_than_its_lookback():
    bars, articles = market(17, gaps=())
    t = T0 + 330 * HOUR
    full = compute_feature_frame(bars, articles, "finbert").loc[t]
    specs = feature_specs("finbert")
    for lookback in sorted({spec.lookback_hours for spec in specs}):
        oldest = t - lookback * HOUR
        truncated = compute_feature_frame(
            bars[bars.index >= oldest],
            articles[articles["published_at"] >= oldest],
            "finbert",
        ).loc[t]
        names = [spec.name for spec in specs if spec.lookback_hours <= lookback]
        assert same_bits(full[names], truncated[names]), lookback


# --------------------------------------------------------------------- time-based windows


def test_windows_across_a_gap_use_hours_not_rows():
    rng = np.random.default_rng(8)
    bars = random_bars(rng, 320)
    gap = (bars.index >= T0 + 100 * HOUR) & (bars.index < T0 + 130 * HOUR)
    bars = bars[~gap]
    articles = random_articles(rng, T0, T0 + 320 * HOUR)
    frame = compute_feature_frame(bars, articles, "vader")
    close = bars["close"]

    def at(hour):
        return T0 + hour * HOUR

    # No row for an hour without a bar.
    assert not any(at(hour) in frame.index for hour in range(100, 130))
    assert len(frame) == len(bars)
    # Right after the gap the 1h and 24h returns have no bar to compare with: NaN, not the
    # return against the previous *row* (a bar 31 hours earlier).
    assert math.isnan(frame.loc[at(130), "ret_1h"])
    assert math.isnan(frame.loc[at(150), "ret_24h"])
    assert frame.loc[at(154), "ret_24h"] == close[at(154)] / close[at(130)] - 1
    assert math.isnan(frame.loc[at(268), "ret_168h"])
    assert frame.loc[at(299), "ret_168h"] == close[at(299)] / close[at(131)] - 1
    # Volatility counts only returns inside (t-24h, t]: at 150 those of bars 131..150.
    inside = np.diff(np.log(close[at(130) : at(150)].to_numpy()))
    assert len(inside) == 20
    assert frame.loc[at(150), "volatility_24h"] == pytest.approx(np.std(inside, ddof=1), rel=1e-12)
    # At 140 only 10 returns lie in the window: fewer than half of 24 hours, so missing.
    assert math.isnan(frame.loc[at(140), "volatility_24h"])
    mean_close = close[at(130) : at(150)].mean()
    assert frame.loc[at(150), "close_to_sma_24h"] == pytest.approx(
        close[at(150)] / mean_close - 1, rel=1e-12
    )


def test_articles_published_in_hours_without_bars_still_count():
    rng = np.random.default_rng(9)
    bars = random_bars(rng, 200)
    bars = bars[(bars.index < T0 + 100 * HOUR) | (bars.index >= T0 + 110 * HOUR)]
    articles = random_articles(rng, T0 + 104 * HOUR, T0 + 105 * HOUR, per_hour=5)
    frame = compute_feature_frame(bars, articles, "vader")
    assert frame.loc[T0 + 110 * HOUR, "sent_count_24h"] == len(articles)
    assert frame.loc[T0 + 110 * HOUR, "sent_count_1h"] == 0


def test_an_empty_sentiment_window_has_zero_counts_and_missing_statistics():
    rng = np.random.default_rng(10)
    bars = random_bars(rng, 60)
    articles = random_articles(rng, T0, T0 + 10 * HOUR)
    row = compute_feature_frame(bars, articles, "finbert").loc[T0 + 50 * HOUR]
    assert row["sent_count_24h"] == 0 and row["sent_count_1h"] == 0
    for name in ("sent_mean_24h", "sent_std_6h", "sent_max_1h", "sent_cw_mean_24h"):
        assert math.isnan(row[name]), name
    assert row["sent_count_168h"] == len(articles)
    assert row["sent_hours_since_last"] > 40


# ---------------------------------------------------------------- values match definitions


def reference_row(bars, articles, t):
    """A slow, direct implementation of some features for the row of hour ``t``."""
    close = bars["close"]
    as_of = t + HOUR

    def bar(hours_back, column="close"):
        ts = t - hours_back * HOUR
        return bars[column].get(ts, np.nan)

    def hourly_log_returns(window):
        values = []
        for back in range(window):
            now, before = bar(back), bar(back + 1)
            if not (math.isnan(now) or math.isnan(before)):
                values.append(math.log(now / before))
        return np.array(values)

    row = {"ret_24h": close[t] / bar(24) - 1, "log_ret_6h": math.log(close[t] / bar(6))}
    returns = hourly_log_returns(24)
    row["volatility_24h"] = np.std(returns, ddof=1) if len(returns) >= 12 else np.nan
    window = close[(close.index > t - 48 * HOUR) & (close.index <= t)]
    row["close_to_sma_48h"] = close[t] / window.mean() - 1 if len(window) >= 24 else np.nan
    changes = [bar(back) - bar(back + 1) for back in range(14)]
    changes = [c for c in changes if not math.isnan(c)]
    gains = sum(c for c in changes if c > 0)
    losses = sum(-c for c in changes if c < 0)
    row["rsi_14h"] = 100 * gains / (gains + losses) if len(changes) >= 7 else np.nan
    alpha = 2 / 13
    present = [(back, bar(back)) for back in range(72) if not math.isnan(bar(back))]
    weights = [(1 - alpha) ** back for back, _ in present]
    row["ema_12h"] = (
        sum(w * value for w, (_, value) in zip(weights, present, strict=True)) / sum(weights)
        if len(present) >= 36
        else np.nan
    )

    def published(window_hours):
        mask = (articles["published_at"] >= as_of - window_hours * HOUR) & (
            articles["published_at"] < as_of
        )
        return articles[mask]

    last_6h, last_24h = published(6), published(24)
    row["sent_count_6h"] = len(last_6h)
    row["sent_mean_6h"] = last_6h["compound"].mean() if len(last_6h) else np.nan
    row["sent_std_24h"] = last_24h["compound"].std(ddof=1) if len(last_24h) > 1 else np.nan
    row["sent_min_24h"] = last_24h["compound"].min() if len(last_24h) else np.nan
    row["sent_strong_neg_share_24h"] = (
        (last_24h["compound"] <= -0.5).mean() if len(last_24h) else np.nan
    )
    last_48h = published(48)
    ages = (as_of - last_48h["published_at"]) / HOUR
    decay = np.exp2(-ages.to_numpy() / 6)
    row["sent_ewm_6h"] = (
        float((decay * last_48h["compound"]).sum() / decay.sum()) if len(last_48h) else np.nan
    )
    weights = last_24h["confidence"]
    row["sent_cw_mean_24h"] = (
        float((weights * last_24h["compound"]).sum() / weights.sum()) if len(last_24h) else np.nan
    )
    last_week = published(168)
    row["sent_hours_since_last"] = (
        (as_of - last_week["published_at"].max()) / HOUR if len(last_week) else np.nan
    )
    row["hour_of_day"] = as_of.hour
    row["day_of_week"] = as_of.day_of_week
    row["is_weekend"] = float(as_of.day_of_week >= 5)
    return row


@pytest.mark.parametrize("seed", [1, 2])
def test_feature_values_match_their_documented_definitions(seed):
    bars, articles = market(seed, gaps=((120, 131), (250, 252)))
    frame = compute_feature_frame(bars, articles, "finbert")
    for t in bars.index[::7]:
        expected = reference_row(bars, articles, t)
        for name, value in expected.items():
            got = frame.loc[t, name]
            if math.isnan(value):
                assert math.isnan(got), (t, name, got)
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (t, name)


def test_bad_frames_are_refused_with_what_was_expected():
    bars, articles = market(4, hours=30, gaps=())
    with pytest.raises(InvalidInputError, match="volume"):
        compute_feature_frame(bars.drop(columns="volume"), articles, "vader")
    with pytest.raises(InvalidInputError, match="same hour"):
        compute_feature_frame(pd.concat([bars, bars.iloc[:1]]), articles, "vader")
    shifted = bars.copy()
    shifted.index = shifted.index + pd.Timedelta(minutes=30)
    with pytest.raises(InvalidInputError, match="on the hour"):
        compute_feature_frame(shifted, articles, "vader")
    with pytest.raises(InvalidInputError, match="confidence"):
        compute_feature_frame(bars, articles.drop(columns="confidence"), "finbert")
    assert len(compute_feature_frame(bars, articles.drop(columns="confidence"), "vader")) == 30


# ------------------------------------------------------------------------------ the store


def store_bars(store, bars):
    """Insert bars into the ``prices`` table, as ingestion would."""
    with store.session() as session:
        session.execute(
            insert(PriceBar),
            [
                {
                    "symbol": "BTCUSD",
                    "ts": ts.to_pydatetime(),
                    **{
                        name: float(bar[name])
                        for name in ("open", "high", "low", "close", "volume")
                    },
                    "source": "test",
                    "ingested_at": ts.to_pydatetime(),
                }
                for ts, bar in bars.iterrows()
            ],
        )


def store_scored_articles(store, articles, scorers=("vader", "finbert")):
    """Insert articles and one ``article_sentiment`` row per article and scorer."""
    rows = list(articles.itertuples(index=False))
    with store.session() as session:
        first_id = (session.scalar(select(func.max(Article.id))) or 0) + 1
        session.execute(
            insert(Article),
            [
                {
                    "id": first_id + i,
                    "dedup_key": f"test:{first_id + i}",
                    "url": None,
                    "title": f"headline {first_id + i}",
                    "body": "body",
                    "source": "test",
                    "published_at": row.published_at.to_pydatetime(),
                    "ingested_at": row.published_at.to_pydatetime(),
                }
                for i, row in enumerate(rows)
            ],
        )
        session.execute(
            insert(ArticleSentiment),
            [
                {
                    "article_id": first_id + i,
                    "scorer": scorer,
                    "scorer_version": "test",
                    "published_at": row.published_at.to_pydatetime(),
                    **{name: float(getattr(row, name)) for name in SCORE_COLUMNS},
                    "scored_at": row.published_at.to_pydatetime(),
                }
                for i, row in enumerate(rows)
                for scorer in scorers
            ],
        )


def stored_rows(store, feature_set, version=FEATURE_VERSION):
    with store.session() as session:
        rows = session.execute(
            select(
                FeatureRow.ts, FeatureRow.close, FeatureRow.feature_values, FeatureRow.missing_count
            )
            .where(FeatureRow.feature_set == feature_set, FeatureRow.feature_version == version)
            .order_by(FeatureRow.ts)
        ).all()
    return {ts: (close, values, missing) for ts, close, values, missing in rows}


@pytest.fixture
def stored_market(store):
    bars, articles = market(21, hours=260, gaps=((90, 97),))
    store_bars(store, bars)
    store_scored_articles(store, articles)
    return bars, articles


def test_only_bars_closed_by_now_get_rows(store, clock, stored_market):
    clock.set(T0.to_pydatetime() + timedelta(hours=40, minutes=30))
    summary = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert summary.rows_built == 40
    assert summary.last_ts == T0 + 39 * HOUR  # closed at 40:00; bar 40 closes at 41:00
    clock.set(T0.to_pydatetime() + timedelta(hours=41))
    assert build_features(store, "vader", clock=clock, symbol="BTCUSD").rows_inserted == 1


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_incremental_builds_equal_a_full_rebuild_exactly(store, clock, stored_market, feature_set):
    for hours in (30, 31, 100, 101, 102, 175.5, 300):
        clock.set(T0.to_pydatetime() + timedelta(hours=hours))
        build_features(store, feature_set, clock=clock, symbol="BTCUSD")
    incremental = stored_rows(store, feature_set)

    summary = build_features(store, feature_set, clock=clock, symbol="BTCUSD", rebuild=True)
    rebuilt = stored_rows(store, feature_set)
    assert summary.rows_deleted == len(incremental) == summary.rows_inserted
    assert rebuilt == incremental
    bars, articles = stored_market
    frame = compute_feature_frame(bars, articles, feature_set)
    assert sorted(rebuilt) == list(frame.index)
    some_hour = frame.index[200]
    close, values, missing = rebuilt[some_hour]
    expected = frame.loc[some_hour]
    assert close == bars.loc[some_hour, "close"]
    assert missing == int(expected.isna().sum())
    assert values == {name: (None if math.isnan(v) else v) for name, v in expected.items()}


def test_a_second_build_inserts_nothing(store, clock, stored_market):
    clock.set(T0.to_pydatetime() + timedelta(hours=300))
    first = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    second = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert first.rows_inserted == len(stored_market[0]) > 0
    assert (second.rows_built, second.rows_inserted, second.rows_skipped) == (0, 0, 0)
    assert "no new closed hours" in second.line()


def test_the_hourly_build_hands_back_its_new_row_exactly_as_stored(store, clock, stored_market):
    clock.set(T0.to_pydatetime() + timedelta(hours=30))
    first = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert first.newest_row is None  # a backfill of many rows: nothing handed back
    clock.advance(hours=1)
    summary = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert summary.rows_inserted == 1
    assert summary.newest_row == latest_feature_row(store, "vader")  # values, close and hour
    clock.advance(minutes=10)  # no new closed hour
    assert build_features(store, "vader", clock=clock, symbol="BTCUSD").newest_row is None


def test_an_hour_stored_by_a_concurrent_build_is_counted_skipped_not_inserted(
    store, clock, stored_market
):
    """The hourly one-row insert learns from its row count that another build was first."""
    from btcmlops.features.builder import BuildSummary, _write_rows

    clock.set(T0.to_pydatetime() + timedelta(hours=31))
    build_features(store, "vader", clock=clock, symbol="BTCUSD")
    bars, articles = stored_market
    frame = compute_feature_frame(bars, articles, "vader")
    one_hour = frame.iloc[[10]]  # already stored by the build above
    summary = BuildSummary("vader", FEATURE_VERSION, rebuilt=False)
    _write_rows(store, "vader", one_hour, clock.now(), False, summary, None)
    assert (summary.rows_built, summary.rows_inserted, summary.rows_skipped) == (1, 0, 1)
    assert len(stored_rows(store, "vader")) == 31  # hours 0 to 30 have closed

    next_hour = frame.iloc[[31]]  # not stored yet: inserted
    summary = BuildSummary("vader", FEATURE_VERSION, rebuilt=False)
    _write_rows(store, "vader", next_hour, clock.now(), False, summary, None)
    assert (summary.rows_inserted, summary.rows_skipped) == (1, 0)
    assert len(stored_rows(store, "vader")) == 32


def test_rebuild_replaces_rows_and_picks_up_a_late_article(store, clock, stored_market):
    clock.set(T0.to_pydatetime() + timedelta(hours=300))
    build_features(store, "vader", clock=clock, symbol="BTCUSD")
    hour = T0 + 50 * HOUR
    before = stored_rows(store, "vader")[hour][1]["sent_count_24h"]

    late = random_articles(np.random.default_rng(0), hour, hour + HOUR, per_hour=1)
    late = late.iloc[:1]
    store_scored_articles(store, late)
    clock.advance(hours=1)
    build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert stored_rows(store, "vader")[hour][1]["sent_count_24h"] == before  # not revised

    summary = build_features(store, "vader", clock=clock, symbol="BTCUSD", rebuild=True)
    assert summary.rebuilt and summary.rows_deleted == summary.rows_inserted
    assert stored_rows(store, "vader")[hour][1]["sent_count_24h"] == before + 1
    with store.session() as session:
        built_at = set(session.scalars(select(FeatureRow.built_at)))
    assert built_at == {clock.now()}


def test_rows_of_another_feature_version_are_neither_read_nor_touched(store, clock, stored_market):
    far_future = T0.to_pydatetime() + timedelta(hours=5_000)
    with store.session() as session:
        session.add(
            FeatureRow(
                feature_set="vader",
                feature_version="v0-old",
                ts=far_future,
                close=1.0,
                feature_values={"old_feature": 1.0},
                missing_count=0,
                built_at=far_future,
            )
        )
    clock.set(T0.to_pydatetime() + timedelta(hours=300))
    summary = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert summary.rows_built == len(stored_market[0])  # not stopped by the newer old row
    latest = latest_feature_row(store, "vader")
    assert latest.ts == stored_market[0].index[-1]
    assert set(latest.values) == set(feature_names("vader"))
    build_features(store, "vader", clock=clock, symbol="BTCUSD", rebuild=True)
    assert len(stored_rows(store, "vader", version="v0-old")) == 1


def test_a_set_whose_scorer_has_no_scores_builds_without_sentiment_and_says_so(store, clock):
    bars, articles = market(22, hours=80, gaps=())
    store_bars(store, bars)
    store_scored_articles(store, articles, scorers=("vader",))
    clock.set(T0.to_pydatetime() + timedelta(hours=100))

    finbert = build_features(store, "finbert", clock=clock, symbol="BTCUSD")
    assert finbert.rows_built == 80
    assert any("no finbert scores found" in warning for warning in finbert.warnings)
    assert "btcmlops sentiment score --scorer finbert" in finbert.line()
    assert "finbert extra" in finbert.line()
    rows = stored_rows(store, "finbert")
    sentiment = [s.name for s in feature_specs("finbert") if s.family == "sentiment"]
    for _, values, _ in rows.values():
        assert values["sent_count_24h"] == 0
        assert values["sent_mean_24h"] is None and values["sent_cw_mean_6h"] is None
    assert all(rows[ts][2] >= len(sentiment) - 4 for ts in rows)

    vader = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    # It reads the articles published before the last row's as-of instant, no later ones.
    readable = articles["published_at"] < T0 + 80 * HOUR
    assert vader.warnings == [] and vader.scored_articles == readable.sum() < len(articles)


def test_a_build_with_no_bars_says_so(store, clock):
    summary = build_features(store, "vader", clock=clock, symbol="BTCUSD")
    assert summary.rows_built == 0
    assert any("no closed price bars for BTCUSD" in warning for warning in summary.warnings)
    assert latest_feature_row(store, "vader") is None


def test_progress_is_reported_and_the_summary_prints_on_one_line(store, clock, stored_market):
    clock.set(T0.to_pydatetime() + timedelta(hours=300))
    calls = []
    summary = build_features(
        store,
        "finbert",
        clock=clock,
        symbol="BTCUSD",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (summary.rows_inserted, summary.rows_inserted)
    text = str(summary)
    assert "\n" not in text and f"built {summary.rows_built} rows" in text
    assert summary.rows_with_missing > 0 and f"{summary.rows_with_missing} with missing" in text
    assert summary.as_dict()["last_ts"] == summary.last_ts.isoformat()


def test_latest_feature_row_is_the_newest_row_with_nulls_for_missing_values(
    store, clock, stored_market
):
    clock.set(T0.to_pydatetime() + timedelta(hours=120))
    build_features(store, "finbert", clock=clock, symbol="BTCUSD")
    latest = latest_feature_row(store, "finbert")
    ts, close, values = latest
    assert ts == T0 + 119 * HOUR
    assert close == stored_market[0].loc[ts, "close"]
    assert list(values) == feature_names("finbert")
    # Bars 90..96 are missing, so the 24h return of hour 119 has no bar at 95.
    assert values["ret_24h"] is None
    assert values["ret_1h"] == pytest.approx(close / stored_market[0].loc[ts - HOUR, "close"] - 1)
