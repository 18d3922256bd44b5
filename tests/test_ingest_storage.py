"""Idempotent storage of bars and articles, on every backend."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from btcmlops.db.models import Article, PriceBar
from btcmlops.ingest.sources import Bar, NewsItem
from btcmlops.ingest.storage import article_dedup_key, store_articles, store_bars


def bars_from(start, count, price=40_000.0):
    return [
        Bar(
            start + timedelta(hours=i),
            price + i,
            price + i + 10,
            price + i - 10,
            price + i + 1,
            5.0,
        )
        for i in range(count)
    ]


def count(store, model):
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_storing_the_same_bars_twice_inserts_nothing_the_second_time(store, clock, start_time):
    bars = bars_from(start_time, 48)
    first = store_bars(store, bars, symbol="BTCUSD", source="test", clock=clock)
    second = store_bars(store, bars, symbol="BTCUSD", source="test", clock=clock)
    assert (first.read, first.inserted, first.skipped) == (48, 48, 0)
    assert (second.read, second.inserted, second.skipped) == (48, 0, 48)
    assert count(store, PriceBar) == 48


def test_overlapping_imports_merge_without_changing_stored_bars(store, clock, start_time):
    store_bars(store, bars_from(start_time, 30), symbol="BTCUSD", source="a", clock=clock)
    overlap = bars_from(start_time + timedelta(hours=20), 30, price=50_000.0)
    summary = store_bars(store, overlap, symbol="BTCUSD", source="b", clock=clock)
    assert (summary.inserted, summary.skipped) == (20, 10)
    assert count(store, PriceBar) == 50
    with store.session() as session:
        kept = session.scalar(
            select(PriceBar).where(PriceBar.ts == start_time + timedelta(hours=25))
        )
    assert kept.source == "a" and kept.open == 40_025.0


def test_unsound_bars_are_rejected_with_their_position_and_reason(store, clock, start_time):
    good = bars_from(start_time, 3)
    bad = [
        Bar(start_time + timedelta(hours=3), 0.0, 245.0, 0.0, 245.0, 1.0),
        Bar(start_time + timedelta(hours=4), 100.0, 90.0, 110.0, 100.0, 1.0),
        Bar(start_time + timedelta(hours=5), float("nan"), 1.0, 1.0, 1.0, 1.0),
        Bar(start_time + timedelta(hours=6, minutes=30), 100.0, 110.0, 90.0, 100.0, 1.0),
    ]
    summary = store_bars(store, good + bad, symbol="BTCUSD", source="t", clock=clock)
    assert summary.inserted == 3
    assert [r.line for r in summary.rejections] == [4, 5, 6, 7]
    reasons = " | ".join(r.reason for r in summary.rejections)
    assert "zero or negative" in reasons and "below Low" in reasons
    assert "finite" in reasons and "not on the hour" in reasons


def test_articles_dedupe_by_url_or_else_by_text(store, clock, start_time):
    items = [
        NewsItem("Bitcoin rallies", "Body one", "https://Example.com/a#top", "x", start_time),
        NewsItem("Same story again", "Other body", "https://example.com/a", "y", start_time),
        NewsItem("No url", "Some   text", None, "z", start_time),
        NewsItem("no URL", "some text", None, "z", start_time + timedelta(hours=1)),
    ]
    first = store_articles(store, items, clock=clock)
    assert (first.inserted, first.skipped) == (2, 2)
    second = store_articles(store, items, clock=clock)
    assert (second.inserted, second.skipped) == (0, 4)
    assert count(store, Article) == 2
    assert article_dedup_key(items[0]) == "url:https://example.com/a"
