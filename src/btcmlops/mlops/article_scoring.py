"""The job that scores stored articles: every article without a row for a scorer gets one.

The scorers themselves (:mod:`btcmlops.sentiment`) are pure, text in and scores out; this
job is what reads the pending articles from the store and writes their scores, so it lives
with the other jobs the scheduler runs.

Idempotent (a second run finds nothing to do) and safe with two runs at once: rows are
unique per (article, scorer) and written with ``INSERT ... ON CONFLICT DO NOTHING``, so an
article another run stored first is counted as skipped, never duplicated or overwritten.
Scoring happens outside any transaction, so a slow scorer (FinBERT) never holds a lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Insert, Row, bindparam, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite

from btcmlops.clock import Clock, ensure_utc
from btcmlops.db.models import Article, ArticleSentiment
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.sources import article_text
from btcmlops.sentiment.base import SentimentScore, SentimentScorer

DEFAULT_BATCH_SIZE = 64  # articles per read-score-write round (and per progress update)
MAX_FAILURES_KEPT = 20  # failures listed in a summary; the count is always complete

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ScoringFailure:
    """An article the scorer could not score (it stays pending for the next run)."""

    article_id: int
    reason: str


@dataclass
class ScoringSummary:
    """What a scoring run did. ``pending = scored + skipped + failed``."""

    scorer: str
    scorer_version: str
    pending: int = 0
    scored: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[ScoringFailure] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.scored + self.skipped + self.failed

    def fail(self, article_id: int, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(ScoringFailure(article_id, reason))

    def line(self) -> str:
        text = (
            f"{self.scorer}: articles scored {self.scored}, skipped {self.skipped} "
            f"(already scored by another run), failed {self.failed}"
        )
        if self.failures:
            first = self.failures[0]
            text += f" (first: article {first.article_id}: {first.reason})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "scorer": self.scorer,
            "scorer_version": self.scorer_version,
            "pending": self.pending,
            "scored": self.scored,
            "skipped": self.skipped,
            "failed": self.failed,
            "failures": [{"article_id": f.article_id, "reason": f.reason} for f in self.failures],
        }


def count_pending_articles(store: Store, scorer_name: str) -> int:
    """How many stored articles have no score from ``scorer_name`` yet."""
    with store.session() as session:
        return int(session.connection().scalar(_PENDING_COUNT, {"scorer": scorer_name}) or 0)


def _first_candidate_id(store: Store, scorer_name: str, pending: int) -> int:
    """An id below every unscored article, to start the keyset scan from.

    The newest scored article is found by walking the articles down from the newest (it
    stops at once when, as usual, only the latest few are unscored). When the ``pending``
    unscored articles are exactly the ones above it, the scan starts there; otherwise (an
    earlier article that failed to score stays pending) it starts from the first article.
    """
    with store.session() as session:
        connection = session.connection()
        newest_scored = connection.scalar(_NEWEST_SCORED, {"scorer": scorer_name})
        if newest_scored is None:
            return 0
        above = connection.scalar(_COUNT_ABOVE, {"after_id": newest_scored})
    return newest_scored if above == pending else 0


def score_pending_articles(
    store: Store,
    scorer: SentimentScorer,
    *,
    clock: Clock,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    limit: int | None = None,
) -> ScoringSummary:
    """Score every stored article that ``scorer`` has not scored yet, in the order stored.

    Each stored row carries the scorer's name and version, the article's ``published_at``
    (so feature windows read one table) and ``scored_at`` from ``clock``. An article whose
    text the scorer rejects is counted as failed with the reason and left pending; the
    others are stored.

    Parameters
    ----------
    batch_size
        Articles read, scored and written per round; ``progress`` is called after each.
    progress
        ``progress(done, total)``, called once before the first round and after each.
    limit
        Score at most this many articles (``None``: all pending).
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    if limit is not None and limit < 0:
        raise InvalidInputError(f"limit must be zero or more, got {limit}")

    summary = ScoringSummary(scorer=scorer.name, scorer_version=scorer.version)
    pending = count_pending_articles(store, scorer.name)
    summary.pending = pending if limit is None else min(pending, limit)
    _report(progress, summary)
    insert = _insert_ignoring_scored(store)
    # keyset pagination: an article that failed is not fetched again this run
    last_id = _first_candidate_id(store, scorer.name, pending) if summary.pending else 0
    while summary.done < summary.pending:
        wanted = min(batch_size, summary.pending - summary.done)
        articles = _next_unscored(store, scorer.name, after_id=last_id, count=wanted)
        if not articles:  # a concurrent run scored the rest after they were counted
            summary.skipped += summary.pending - summary.done
            break
        last_id = articles[-1].id
        scored = _score_articles(scorer, articles, summary)
        scored_at = clock.now()
        rows = [_row(scorer, article, score, scored_at) for article, score in scored]
        inserted = _store_rows(store, insert, rows)
        summary.scored += inserted
        summary.skipped += len(rows) - inserted
        _report(progress, summary)
    return summary


def _report(progress: Progress | None, summary: ScoringSummary) -> None:
    if progress is not None:
        progress(summary.done, summary.pending)


def _next_unscored(store: Store, scorer_name: str, *, after_id: int, count: int) -> list[Row]:
    with store.session() as session:
        parameters = {"scorer": scorer_name, "after_id": after_id, "count": count}
        return list(session.connection().execute(_NEXT_UNSCORED, parameters).all())


# The job's statements, built once (building one costs more than running it on the few rows
# an hourly run touches), with the scorer and positions as parameters.
_SCORES = ArticleSentiment.__table__
_ARTICLES = Article.__table__
# ``NOT EXISTS`` a row of this scorer for the article: an anti-join the database runs on the
# (article_id, scorer) unique index, so no id list is ever loaded into Python.
_UNSCORED = ~exists().where(
    _SCORES.c.article_id == _ARTICLES.c.id, _SCORES.c.scorer == bindparam("scorer")
)
# Articles minus the scorer's rows, in one statement (one snapshot). Exact because a row is
# unique per (article, scorer) and references a stored article; and two counts over indexes
# cost a small fraction of an anti-join that probes the scores once per stored article,
# which grows with the store at every hourly run.
_PENDING_COUNT = select(
    select(func.count()).select_from(_ARTICLES).scalar_subquery()
    - select(func.count())
    .select_from(_SCORES)
    .where(_SCORES.c.scorer == bindparam("scorer"))
    .scalar_subquery()
)
_NEWEST_SCORED = select(_ARTICLES.c.id).where(~_UNSCORED).order_by(_ARTICLES.c.id.desc()).limit(1)
_COUNT_ABOVE = (
    select(func.count()).select_from(_ARTICLES).where(_ARTICLES.c.id > bindparam("after_id"))
)
_NEXT_UNSCORED = (
    select(_ARTICLES.c.id, _ARTICLES.c.title, _ARTICLES.c.body, _ARTICLES.c.published_at)
    .where(_ARTICLES.c.id > bindparam("after_id"), _UNSCORED)
    .order_by(_ARTICLES.c.id)
    .limit(bindparam("count"))
)


def _score_articles(
    scorer: SentimentScorer, articles: Sequence[Row], summary: ScoringSummary
) -> list[tuple[Row, SentimentScore]]:
    """The articles' scores; an article that cannot be scored is recorded in ``summary``."""
    texts = [article_text(article.title, article.body) for article in articles]
    try:
        scores = _scores_for(scorer, texts)
    # Whatever a scorer raises on one odd text must not cost the whole batch (nor stop the
    # run): the batch is retried one article at a time to find the ones that fail.
    except Exception:
        scores = [
            _score_alone(scorer, article, text, summary)
            for article, text in zip(articles, texts, strict=True)
        ]
    accepted: list[tuple[Row, SentimentScore]] = []
    for article, score in zip(articles, scores, strict=True):
        if score is None:
            continue
        problem = score_problem(score)
        if problem:
            summary.fail(article.id, problem)
        else:
            accepted.append((article, score))
    return accepted


def _score_alone(
    scorer: SentimentScorer, article: Row, text: str, summary: ScoringSummary
) -> SentimentScore | None:
    try:
        return _scores_for(scorer, [text])[0]
    except Exception as exc:  # see _score_articles: recorded, and the article stays pending
        summary.fail(article.id, _describe(exc))
        return None


def _scores_for(scorer: SentimentScorer, texts: list[str]) -> list[SentimentScore | None]:
    scores = scorer.score(texts)
    if len(scores) != len(texts):
        raise ValueError(f"the scorer returned {len(scores)} scores for {len(texts)} texts")
    return list(scores)


def score_problem(score: SentimentScore) -> str | None:
    """Why ``score`` cannot be stored (a value outside its range), or ``None``.

    >>> score_problem(SentimentScore(0.2, 0.1, 0.7, 0.1, 0.1)) is None
    True
    >>> score_problem(SentimentScore(0.2, 0.1, 0.7, float("nan"), 0.1))
    'compound is nan, expected a number in [-1, 1]'
    """
    checks = (
        ("positive", score.positive, 0.0, 1.0),
        ("negative", score.negative, 0.0, 1.0),
        ("neutral", score.neutral, 0.0, 1.0),
        ("compound", score.compound, -1.0, 1.0),
        ("confidence", score.confidence, 0.0, 1.0),
    )
    tolerance = 1e-9  # float rounding at the ends of a range is not a broken score
    for name, value, low, high in checks:
        if not (math.isfinite(value) and low - tolerance <= value <= high + tolerance):
            return f"{name} is {value}, expected a number in [{low:g}, {high:g}]"
    return None


def _describe(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300] if first_line else type(exc).__name__


def _insert_ignoring_scored(store: Store) -> Insert:
    """``INSERT ... ON CONFLICT (article_id, scorer) DO NOTHING RETURNING article_id``.

    RETURNING gives back only the rows actually inserted, so the rows another run stored
    first are counted exactly, on both engines.
    """
    return _INSERTS[store.dialect == "postgresql"]


_INSERTS = {
    postgres: (postgresql if postgres else sqlite)
    .insert(_SCORES)
    .on_conflict_do_nothing(index_elements=["article_id", "scorer"])
    .returning(_SCORES.c.article_id)
    for postgres in (False, True)
}


def _store_rows(store: Store, insert: Insert, rows: list[dict[str, object]]) -> int:
    if not rows:
        return 0
    with store.session() as session:
        return len(session.connection().execute(insert, rows).all())


def _row(
    scorer: SentimentScorer, article: Row, score: SentimentScore, scored_at: datetime
) -> dict[str, object]:
    return {
        "article_id": article.id,
        "scorer": scorer.name,
        "scorer_version": scorer.version,
        "published_at": ensure_utc(article.published_at),
        "positive": float(score.positive),
        "negative": float(score.negative),
        "neutral": float(score.neutral),
        "compound": float(score.compound),
        "confidence": float(score.confidence),
        "scored_at": scored_at,
    }
