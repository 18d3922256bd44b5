"""Which articles the scoring job finds pending, when most of the store is already scored."""

from __future__ import annotations

from datetime import timedelta

from btcmlops.ingest.sources import NewsItem
from btcmlops.ingest.storage import store_articles
from btcmlops.mlops.article_scoring import count_pending_articles, score_pending_articles
from btcmlops.sentiment.base import SentimentScore


def articles(start, first, count):  # type: ignore[no-untyped-def]
    return [
        NewsItem(
            title=f"story {i}",
            body="plain words" if i != 3 else "unreadable",
            url=f"https://news.example/{i}",
            source="test",
            published_at=start + timedelta(hours=i),
        )
        for i in range(first, first + count)
    ]


class PickyScorer:
    """Refuses any text containing ``unreadable`` until told otherwise."""

    name = "vader"
    version = "vader-test-1"

    def __init__(self) -> None:
        self.picky = True
        self.seen: list[str] = []

    def score(self, texts):  # type: ignore[no-untyped-def]
        self.seen.extend(texts)
        if self.picky and any("unreadable" in text for text in texts):
            raise ValueError("cannot read it")
        return [SentimentScore(0.5, 0.2, 0.3, 0.1, 0.1) for _ in texts]


def test_an_older_article_left_pending_is_scored_with_the_new_ones(store, clock, start_time):
    scorer = PickyScorer()
    store_articles(store, articles(start_time, 0, 6), clock=clock)
    first = score_pending_articles(store, scorer, clock=clock)
    assert (first.scored, first.failed) == (5, 1)

    store_articles(store, articles(start_time, 6, 3), clock=clock)
    assert count_pending_articles(store, "vader") == 4
    scorer.picky = False
    second = score_pending_articles(store, scorer, clock=clock)

    assert (second.pending, second.scored, second.failed) == (4, 4, 0)
    assert count_pending_articles(store, "vader") == 0


def test_only_the_new_articles_are_read_when_everything_before_them_is_scored(
    store, clock, start_time
):
    scorer = PickyScorer()
    scorer.picky = False
    store_articles(store, articles(start_time, 0, 6), clock=clock)
    score_pending_articles(store, scorer, clock=clock)
    store_articles(store, articles(start_time, 6, 2), clock=clock)
    scorer.seen.clear()

    summary = score_pending_articles(store, scorer, clock=clock)

    assert (summary.pending, summary.scored) == (2, 2)
    assert [text.split(".")[0] for text in scorer.seen] == ["story 6", "story 7"]
    assert score_pending_articles(store, scorer, clock=clock).pending == 0
