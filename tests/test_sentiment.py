"""Sentiment scorers (VADER; FinBERT's unavailability) and the job that scores stored articles."""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from btcmlops.config import Settings
from btcmlops.db.models import Article, ArticleSentiment
from btcmlops.errors import DependencyUnavailableError, InvalidInputError
from btcmlops.ingest.sources import NewsItem, article_text
from btcmlops.ingest.storage import store_articles
from btcmlops.mlops.article_scoring import count_pending_articles, score_pending_articles
from btcmlops.sentiment.base import ScorerUnavailableError, SentimentScore, SentimentScorer
from btcmlops.sentiment.finbert import FinbertScorer
from btcmlops.sentiment.scorers import (
    available_scorers,
    make_scorer,
    make_scorers,
    scorer_names,
)
from btcmlops.sentiment.vader import MAX_SEGMENT_WORDS, VaderScorer, split_sentences

POSITIVE = "Bitcoin surges to a record high as delighted investors celebrate excellent gains."
NEGATIVE = "The exchange was hacked and terrified traders suffered horrible, painful losses."
NEUTRAL = "The quarterly report was published on Tuesday at the company's office."


@pytest.fixture(scope="module")
def vader() -> VaderScorer:
    return VaderScorer()


def plain_settings(tmp_path, **values) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None, **values)


# ------------------------------------------------------------------------------------ VADER


def test_vader_orders_positive_above_neutral_above_negative(vader):
    positive, neutral, negative = vader.score([POSITIVE, NEUTRAL, NEGATIVE])
    assert positive.compound > 0.5
    assert negative.compound < -0.5
    assert abs(neutral.compound) < 0.05
    assert positive.compound > neutral.compound > negative.compound
    assert positive.positive > positive.negative
    assert negative.negative > negative.positive
    assert neutral.neutral > max(neutral.positive, neutral.negative)


def test_vader_confidence_is_the_strength_of_the_lean(vader):
    strong, mild, flat = vader.score([POSITIVE, "The results were okay.", NEUTRAL])
    for score in (strong, mild, flat):
        assert score.confidence == pytest.approx(abs(score.compound))
    assert strong.confidence > mild.confidence > flat.confidence


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_vader_shares_sum_to_one_and_compound_stays_in_range(text):
    (score,) = VaderScorer().score([text])
    assert math.fsum((score.positive, score.negative, score.neutral)) == pytest.approx(1.0)
    assert all(0.0 <= share <= 1.0 for share in (score.positive, score.negative, score.neutral))
    assert -1.0 <= score.compound <= 1.0
    assert 0.0 <= score.confidence <= 1.0


def test_vader_text_without_words_is_neutral_with_no_confidence(vader):
    for text in ("", "   \n\t "):
        (score,) = vader.score([text])
        assert (score.neutral, score.compound, score.confidence) == (1.0, 0.0, 0.0)


def test_vader_score_of_an_article_does_not_grow_with_its_length(vader):
    (one,) = vader.score([POSITIVE])
    (forty,) = vader.score([" ".join([POSITIVE] * 40)])
    assert forty.compound == pytest.approx(one.compound)
    # whole-text VADER saturates on the same article; that is what sentences avoid
    whole = SentimentIntensityAnalyzer().polarity_scores(" ".join([POSITIVE] * 40))
    assert whole["compound"] > 0.99 > one.compound


def test_vader_article_is_the_word_weighted_mean_of_its_sentences(vader):
    (article,) = vader.score([f"{POSITIVE} {NEGATIVE}\n{NEUTRAL}"])
    parts = [vader.score([sentence])[0] for sentence in (POSITIVE, NEGATIVE, NEUTRAL)]
    words = [len(sentence.split()) for sentence in (POSITIVE, NEGATIVE, NEUTRAL)]
    expected = sum(w * p.compound for w, p in zip(words, parts, strict=True)) / sum(words)
    assert article.compound == pytest.approx(expected)


def test_a_mixed_article_leans_less_than_its_parts(vader):
    (mixed,) = vader.score([f"{POSITIVE} {NEGATIVE}"])
    (positive,) = vader.score([POSITIVE])
    (negative,) = vader.score([NEGATIVE])
    assert negative.compound < mixed.compound < positive.compound
    assert mixed.confidence < min(positive.confidence, negative.confidence)


def test_sentences_split_at_end_marks_and_line_breaks_but_not_inside_numbers():
    text = 'Prices rose 2.5% today. Did fees fall?\nYes! "It is over." Analysts  disagree'
    assert split_sentences(text) == [
        "Prices rose 2.5% today.",
        "Did fees fall?",
        "Yes!",
        '"It is over."',
        "Analysts disagree",
    ]


def test_an_unpunctuated_run_on_text_is_cut_into_bounded_windows():
    run_on = " ".join(f"word{i}" for i in range(2 * MAX_SEGMENT_WORDS + 5))
    segments = split_sentences(run_on)
    assert [len(s.split()) for s in segments] == [MAX_SEGMENT_WORDS, MAX_SEGMENT_WORDS, 5]
    assert " ".join(segments) == run_on


def test_vader_version_names_the_package_version(vader):
    from importlib.metadata import version

    assert vader.name == "vader"
    assert f"vaderSentiment-{version('vaderSentiment')}" in vader.version
    assert isinstance(vader, SentimentScorer)


# -------------------------------------------------------------------------- scorer factory


def test_scorer_names_accept_all_and_reject_unknown_names(tmp_path):
    assert scorer_names("all") == ["vader", "finbert"]
    assert scorer_names(" FinBERT ") == ["finbert"]
    with pytest.raises(InvalidInputError, match="expected one of vader, finbert"):
        scorer_names("textblob")
    with pytest.raises(InvalidInputError, match="unknown sentiment scorer 'textblob'"):
        make_scorer("textblob", plain_settings(tmp_path))


def test_make_scorer_builds_vader(tmp_path):
    scorer = make_scorer("vader", plain_settings(tmp_path))
    assert isinstance(scorer, VaderScorer)


# ------------------------------------------------------------------- FinBERT unavailable


def assert_explains_how_to_provide(message: str, model: str) -> None:
    assert repr(model) in message
    assert "pip install 'btcmlops[finbert]'" in message
    assert "make install-finbert" in message
    assert "BTCMLOPS_FINBERT_MODEL" in message
    assert "Hugging Face cache" in message


def test_finbert_pointed_at_an_empty_folder_says_what_is_missing_and_how_to_fix_it(tmp_path):
    with pytest.raises(ScorerUnavailableError) as caught:
        FinbertScorer(model=tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, DependencyUnavailableError)
    assert_explains_how_to_provide(message, str(tmp_path))
    if "not installed" not in message:  # with the extra installed, the folder is the problem
        assert "holds no config.json" in message


def test_finbert_pointed_at_a_missing_folder_names_it(tmp_path):
    missing = tmp_path / "no" / "such" / "finbert"
    with pytest.raises(ScorerUnavailableError) as caught:
        FinbertScorer(model=missing)
    assert_explains_how_to_provide(str(caught.value), str(missing))


def test_finbert_id_absent_from_the_cache_fails_without_downloading(tmp_path, monkeypatch):
    try:  # with the extra installed, point the cache at an empty folder
        hub_constants = importlib.import_module("huggingface_hub.constants")
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    except ImportError:
        pass  # base install: the missing libraries are reported instead
    with pytest.raises(ScorerUnavailableError) as caught:
        FinbertScorer(model="ProsusAI/finbert")
    message = str(caught.value)
    assert_explains_how_to_provide(message, "ProsusAI/finbert")
    assert "hf download ProsusAI/finbert" in message
    if "not installed" not in message:
        assert "not in the local Hugging Face cache" in message


def test_finbert_without_torch_or_transformers_says_to_install_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ScorerUnavailableError) as caught:
        FinbertScorer(model=tmp_path)
    message = str(caught.value)
    assert "torch is not installed" in message
    assert_explains_how_to_provide(message, str(tmp_path))


def test_vader_keeps_working_when_finbert_is_unavailable(store, clock, start_time, tmp_path):
    settings_ = plain_settings(tmp_path, finbert_model=str(tmp_path / "no-weights"))
    with pytest.raises(ScorerUnavailableError):
        make_scorer("finbert", settings_)

    selection = make_scorers("all", settings_)
    assert [scorer.name for scorer in selection.scorers] == ["vader"]
    assert "no-weights" in selection.unavailable["finbert"]

    statuses = {status.name: status for status in available_scorers(settings_)}
    assert statuses["vader"].available and statuses["vader"].reason is None
    assert not statuses["finbert"].available
    assert "BTCMLOPS_FINBERT_MODEL" in statuses["finbert"].reason

    store_articles(store, news(start_time, 3), clock=clock)
    summary = score_pending_articles(store, selection.scorers[0], clock=clock)
    assert (summary.scored, summary.failed) == (3, 0)


def test_asking_for_finbert_alone_raises_instead_of_skipping(tmp_path):
    settings_ = plain_settings(tmp_path, finbert_model=str(tmp_path))
    with pytest.raises(ScorerUnavailableError, match="FinBERT model"):
        make_scorers("finbert", settings_)


def test_vader_and_the_scoring_job_never_import_torch(tmp_path):
    program = textwrap.dedent(
        f"""
        import sys
        from btcmlops.config import Settings
        from btcmlops.sentiment.scorers import available_scorers, make_scorer
        from btcmlops.mlops import article_scoring  # noqa: F401
        settings = Settings(home={str(tmp_path)!r}, _env_file=None)
        make_scorer("vader", settings).score(["Bitcoin rallies."])
        available_scorers(settings)
        loaded = sorted(name for name in ("torch", "transformers") if name in sys.modules)
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


# ---------------------------------------------------------------------- the scoring job


def news(start, count, *, prefix="story"):
    bodies = [POSITIVE, NEGATIVE, NEUTRAL]
    return [
        NewsItem(
            title=f"{prefix} {i}",
            body=bodies[i % 3],
            url=f"https://news.example/{prefix}/{i}",
            source="test",
            published_at=start + timedelta(hours=i, minutes=17),
        )
        for i in range(count)
    ]


def stored_scores(store, scorer="vader"):
    with store.session() as session:
        return list(
            session.scalars(
                select(ArticleSentiment)
                .where(ArticleSentiment.scorer == scorer)
                .order_by(ArticleSentiment.article_id)
            )
        )


def stored_articles(store):
    with store.session() as session:
        return list(session.scalars(select(Article).order_by(Article.id)))


class RecordingScorer:
    """A scorer whose verdicts are fixed numbers, optionally failing on some texts."""

    def __init__(self, name="fake", *, fail_on=None, verdict=None):
        self.name = name
        self.version = f"{name}-test-1"
        self.fail_on = fail_on
        self.verdict = verdict or SentimentScore(0.5, 0.2, 0.3, 0.3, 0.5)
        self.calls: list[list[str]] = []

    def score(self, texts):
        self.calls.append(list(texts))
        if self.fail_on and any(self.fail_on in text for text in texts):
            raise ValueError(f"cannot read a text containing {self.fail_on!r}")
        return [self.verdict for _ in texts]


def test_scoring_stores_one_row_per_article_with_version_and_publication_time(
    store, clock, start_time, vader
):
    store_articles(store, news(start_time, 4), clock=clock)
    clock.advance(hours=5)
    summary = score_pending_articles(store, vader, clock=clock)

    assert (summary.pending, summary.scored, summary.skipped, summary.failed) == (4, 4, 0, 0)
    articles = stored_articles(store)
    rows = stored_scores(store)
    assert [row.article_id for row in rows] == [article.id for article in articles]
    for article, row in zip(articles, rows, strict=True):
        (expected,) = vader.score([article_text(article.title, article.body)])
        assert row.scorer == "vader" and row.scorer_version == vader.version
        assert row.published_at == article.published_at
        assert row.scored_at == clock.now()
        assert (row.positive, row.negative, row.neutral) == pytest.approx(
            (expected.positive, expected.negative, expected.neutral)
        )
        assert (row.compound, row.confidence) == pytest.approx(
            (expected.compound, expected.confidence)
        )


def test_a_second_run_scores_nothing(store, clock, start_time, vader):
    store_articles(store, news(start_time, 5), clock=clock)
    score_pending_articles(store, vader, clock=clock)
    second = score_pending_articles(store, vader, clock=clock)
    assert (second.pending, second.scored, second.skipped, second.failed) == (0, 0, 0, 0)
    assert len(stored_scores(store)) == 5


def test_only_articles_without_a_score_are_scored(store, clock, start_time, vader):
    store_articles(store, news(start_time, 3), clock=clock)
    score_pending_articles(store, vader, clock=clock)
    first_scored_at = clock.now()
    store_articles(store, news(start_time, 2, prefix="later"), clock=clock)
    clock.advance(hours=1)

    assert count_pending_articles(store, "vader") == 2
    summary = score_pending_articles(store, vader, clock=clock)
    assert summary.scored == 2
    scored_at = [row.scored_at for row in stored_scores(store)]
    assert scored_at == [first_scored_at] * 3 + [clock.now()] * 2


def test_each_scorer_keeps_its_own_rows(store, clock, start_time, vader):
    store_articles(store, news(start_time, 3), clock=clock)
    score_pending_articles(store, vader, clock=clock)
    other = RecordingScorer("finbert")
    assert count_pending_articles(store, "finbert") == 3
    summary = score_pending_articles(store, other, clock=clock)
    assert summary.scored == 3
    assert {row.scorer_version for row in stored_scores(store, "finbert")} == {other.version}
    assert len(stored_scores(store, "vader")) == 3


def test_an_article_stored_meanwhile_by_another_run_is_skipped_not_duplicated(
    store, clock, start_time
):
    store_articles(store, news(start_time, 4), clock=clock)
    first_id = stored_articles(store)[0].id

    class RacingScorer(RecordingScorer):
        def score(self, texts):
            # Another process stores its score for the first article while we compute ours.
            with store.session() as session:
                session.add(
                    ArticleSentiment(
                        article_id=first_id,
                        scorer=self.name,
                        scorer_version="other-run",
                        published_at=start_time,
                        positive=0.0,
                        negative=0.0,
                        neutral=1.0,
                        compound=0.0,
                        confidence=0.0,
                        scored_at=start_time,
                    )
                )
            return super().score(texts)

    summary = score_pending_articles(store, RacingScorer("vader"), clock=clock)
    assert (summary.scored, summary.skipped, summary.failed) == (3, 1, 0)
    rows = stored_scores(store)
    assert len(rows) == 4
    assert rows[0].scorer_version == "other-run"


def test_two_runs_at_once_store_each_score_exactly_once(store, clock, start_time):
    store_articles(store, news(start_time, 6), clock=clock)
    both_have_read = threading.Barrier(2, timeout=60)

    class MeetingScorer(RecordingScorer):
        def score(self, texts):
            both_have_read.wait()  # neither run writes before both found the same articles
            return super().score(texts)

    summaries = []

    def run() -> None:
        scorer = MeetingScorer("vader")
        summaries.append(score_pending_articles(store, scorer, clock=clock, batch_size=6))

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=120)
    assert len(summaries) == 2
    assert sorted((s.scored, s.skipped) for s in summaries) == [(0, 6), (6, 0)]
    assert len(stored_scores(store)) == 6


def test_an_article_the_scorer_cannot_read_is_reported_and_stays_pending(store, clock, start_time):
    items = news(start_time, 5)
    items[2] = NewsItem("boom", "unreadable", "https://news.example/boom", "t", start_time)
    store_articles(store, items, clock=clock)
    scorer = RecordingScorer("vader", fail_on="boom")

    summary = score_pending_articles(store, scorer, clock=clock)
    assert (summary.scored, summary.skipped, summary.failed) == (4, 0, 1)
    boom_id = stored_articles(store)[2].id
    assert summary.failures[0].article_id == boom_id
    assert "cannot read a text containing 'boom'" in summary.line()
    assert count_pending_articles(store, "vader") == 1

    retry = score_pending_articles(store, scorer, clock=clock)
    assert (retry.pending, retry.scored, retry.failed) == (1, 0, 1)


def test_a_score_outside_its_range_is_not_stored(store, clock, start_time):
    store_articles(store, news(start_time, 2), clock=clock)
    broken = RecordingScorer(verdict=SentimentScore(0.5, 0.2, 0.3, float("nan"), 0.5))
    summary = score_pending_articles(store, broken, clock=clock)
    assert (summary.scored, summary.failed) == (0, 2)
    assert "compound is nan" in summary.failures[0].reason
    assert stored_scores(store, "fake") == []


def test_progress_reports_articles_done_out_of_the_total(store, clock, start_time, vader):
    store_articles(store, news(start_time, 5), clock=clock)
    calls = []
    score_pending_articles(
        store, vader, clock=clock, batch_size=2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_scoring_scores_in_batches_of_the_given_size(store, clock, start_time):
    store_articles(store, news(start_time, 7), clock=clock)
    scorer = RecordingScorer()
    score_pending_articles(store, scorer, clock=clock, batch_size=3)
    assert [len(call) for call in scorer.calls] == [3, 3, 1]


def test_limit_caps_how_many_articles_one_run_scores(store, clock, start_time, vader):
    store_articles(store, news(start_time, 5), clock=clock)
    summary = score_pending_articles(store, vader, clock=clock, limit=2)
    assert (summary.pending, summary.scored) == (2, 2)
    assert count_pending_articles(store, "vader") == 3


def test_the_summary_is_one_line_with_every_count(store, clock, start_time, vader):
    store_articles(store, news(start_time, 2), clock=clock)
    summary = score_pending_articles(store, vader, clock=clock)
    assert summary.line() == (
        "vader: articles scored 2, skipped 0 (already scored by another run), failed 0"
    )
    assert summary.as_dict()["scorer_version"] == vader.version


def test_invalid_batch_size_or_limit_is_refused(store, clock, vader):
    with pytest.raises(InvalidInputError, match="batch_size must be at least 1"):
        score_pending_articles(store, vader, clock=clock, batch_size=0)
    with pytest.raises(InvalidInputError, match="limit must be zero or more"):
        score_pending_articles(store, vader, clock=clock, limit=-1)


@pytest.mark.parametrize(
    ("title", "body"), [("Bitcoin rallies", "Buyers return."), ("", "Body only"), ("Title", "")]
)
def test_article_text_follows_the_news_item_convention(title, body, start_time):
    item = NewsItem(title, body, None, "t", start_time)
    assert article_text(title, body) == item.text
