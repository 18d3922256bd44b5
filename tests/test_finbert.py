"""FinBERT's real loading and scoring code, run on a tiny three-label BERT built by the test.

The tiny model has FinBERT's shape (a BERT sequence classifier with positive, negative and
neutral labels, 512 positions) but random or hand-set weights, so these tests check the
plumbing (loading offline, label mapping, truncation, batching, versions), not accuracy.
"""

from __future__ import annotations

import math
import shutil
from datetime import timedelta

import pytest

torch = pytest.importorskip(
    "torch", reason="FinBERT tests need torch: pip install 'btcmlops[finbert]'"
)
transformers = pytest.importorskip(
    "transformers", reason="FinBERT tests need transformers: pip install 'btcmlops[finbert]'"
)

from sqlalchemy import select  # noqa: E402

from btcmlops.config import Settings  # noqa: E402
from btcmlops.db.models import Article, ArticleSentiment  # noqa: E402
from btcmlops.ingest.sources import NewsItem, article_text  # noqa: E402
from btcmlops.ingest.storage import store_articles  # noqa: E402
from btcmlops.mlops.article_scoring import score_pending_articles  # noqa: E402
from btcmlops.sentiment.base import ScorerUnavailableError  # noqa: E402
from btcmlops.sentiment.finbert import FinbertScorer  # noqa: E402
from btcmlops.sentiment.scorers import available_scorers, make_scorer  # noqa: E402

pytestmark = pytest.mark.finbert

WORDS = ["bitcoin", "price", "rally", "crash", "fear", "gains", "market", "the", "a", "of"]
VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    ".",
    ",",
    *WORDS,
    *"abcdefghijklmnopqrstuvwxyz",
    *(f"##{letter}" for letter in "abcdefghijklmnopqrstuvwxyz"),
]
# No position matches ProsusAI/finbert's order (positive, negative, neutral), and the case
# varies: a scorer that assumed an order or exact spelling would misreport every class.
SHUFFLED_LABELS = {0: "NEGATIVE", 1: "Neutral", 2: "positive"}

TEXTS = [
    "bitcoin rally",
    "the price of bitcoin . fear , crash",
    "market gains",
    "a",
    "crash crash crash fear",
    "price rally of the market gains bitcoin",
]


def build_tiny_finbert(folder, *, id2label=SHUFFLED_LABELS, dominant=None, seed=0, head=True):
    """Save a tiny BERT classifier and its WordPiece tokenizer into ``folder``.

    With ``dominant`` set, the classifier ignores the text and puts ~99.9 % of the
    probability on that label (weights zero, bias 8 on its logit).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        num_labels=3,
        id2label=id2label,
        label2id={label: index for index, label in id2label.items()},
    )
    torch.manual_seed(seed)
    if not head:
        transformers.BertModel(config).save_pretrained(str(folder))
        return folder
    model = transformers.BertForSequenceClassification(config)
    if dominant is not None:
        index = next(i for i, label in id2label.items() if label.lower() == dominant)
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            model.classifier.bias[index] = 8.0
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_finbert(tmp_path_factory.mktemp("models") / "tiny-finbert")


@pytest.fixture(scope="module")
def scorer(tiny_model):
    return FinbertScorer(model=tiny_model, batch_size=4, threads=1)


def test_every_text_gets_three_probabilities_that_sum_to_one(scorer):
    scores = scorer.score(TEXTS)
    assert len(scores) == len(TEXTS)
    for score in scores:
        shares = (score.positive, score.negative, score.neutral)
        assert all(0.0 < share < 1.0 for share in shares)
        assert math.fsum(shares) == pytest.approx(1.0, abs=1e-9)
        assert score.compound == pytest.approx(score.positive - score.negative)
        assert score.confidence == max(shares)
    # random weights still read the text: different texts, different probabilities
    assert len({round(score.compound, 9) for score in scores}) > 1


def test_an_empty_batch_scores_nothing(scorer):
    assert scorer.score([]) == []


@pytest.mark.parametrize("dominant", ["positive", "negative", "neutral"])
def test_labels_are_found_by_name_not_by_position(tmp_path, dominant):
    folder = build_tiny_finbert(tmp_path / dominant, dominant=dominant)
    (score,) = FinbertScorer(model=folder).score(["bitcoin price"])
    assert getattr(score, dominant) > 0.99
    assert score.confidence == getattr(score, dominant)
    expected_compound = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}[dominant]
    assert score.compound == pytest.approx(expected_compound, abs=0.01)


def test_a_text_longer_than_512_tokens_is_scored_on_its_first_512(scorer):
    words = [WORDS[i % len(WORDS)] for i in range(3_000)]
    (long_score,) = scorer.score([" ".join(words)])
    # one token per word, plus [CLS] and [SEP]: the model sees the first 510 words
    (start_score,) = scorer.score([" ".join(words[:510])])
    (longer_start,) = scorer.score([" ".join(words[:520])])
    assert long_score.compound == pytest.approx(start_score.compound, abs=1e-6)
    assert longer_start.compound == pytest.approx(start_score.compound, abs=1e-6)


def test_batches_give_the_same_scores_as_one_text_at_a_time(tiny_model):
    texts = [" ".join(WORDS[: 1 + i % len(WORDS)] * (1 + i)) for i in range(9)]
    batched = FinbertScorer(model=tiny_model, batch_size=4).score(texts)
    alone = FinbertScorer(model=tiny_model, batch_size=1).score(texts)
    for together, single in zip(batched, alone, strict=True):
        assert together.positive == pytest.approx(single.positive, abs=1e-5)
        assert together.negative == pytest.approx(single.negative, abs=1e-5)
        assert together.neutral == pytest.approx(single.neutral, abs=1e-5)


def test_results_come_back_in_input_order(scorer):
    scores = scorer.score(TEXTS)
    reversed_scores = scorer.score(TEXTS[::-1])
    assert [s.compound for s in reversed_scores[::-1]] == pytest.approx(
        [s.compound for s in scores], abs=1e-5
    )


def test_the_version_names_the_folder_and_changes_with_the_weights(tmp_path, tiny_model):
    other = build_tiny_finbert(tmp_path / "tiny-finbert", seed=1)
    same = FinbertScorer(model=tiny_model).version
    assert same == FinbertScorer(model=tiny_model).version
    assert same.startswith("tiny-finbert@sha256:")
    assert FinbertScorer(model=other).version != same
    assert len(same) <= 128  # the scorer_version column


def test_a_model_in_the_hugging_face_cache_is_loaded_offline_and_versioned_by_commit(
    tmp_path, tiny_model, scorer, monkeypatch
):
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repository = tmp_path / "hub" / "models--acme--tiny-finbert"
    shutil.copytree(tiny_model, repository / "snapshots" / commit)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    cached = FinbertScorer(model="acme/tiny-finbert")
    assert cached.version == f"acme/tiny-finbert@{commit}"
    for from_cache, from_folder in zip(cached.score(TEXTS), scorer.score(TEXTS), strict=True):
        assert from_cache.compound == pytest.approx(from_folder.compound, abs=1e-6)
    # the snapshot folder itself is recognised as the same model at the same commit
    snapshot = FinbertScorer(model=repository / "snapshots" / commit)
    assert snapshot.version == cached.version


def test_a_model_without_positive_negative_and_neutral_labels_is_refused(tmp_path):
    folder = build_tiny_finbert(tmp_path / "m", id2label={0: "LABEL_0", 1: "LABEL_1", 2: "X"})
    with pytest.raises(ScorerUnavailableError) as caught:
        FinbertScorer(model=folder)
    message = str(caught.value)
    assert "'LABEL_0', 'LABEL_1', 'X'" in message
    assert "positive, negative and neutral" in message


def test_a_checkpoint_without_a_classifier_head_is_refused(tmp_path):
    folder = build_tiny_finbert(tmp_path / "bare-bert", head=False)
    with pytest.raises(ScorerUnavailableError, match="classifier"):
        FinbertScorer(model=folder)


def test_unreadable_weights_are_reported_as_unavailable(tmp_path, tiny_model):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ScorerUnavailableError, match="loading failed") as caught:
        FinbertScorer(model=broken)
    assert "BTCMLOPS_FINBERT_MODEL" in str(caught.value)


def test_torch_threads_are_set_to_what_was_asked(tiny_model):
    FinbertScorer(model=tiny_model, threads=1)
    assert torch.get_num_threads() == 1


def test_settings_choose_the_model_and_batch_size(tmp_path, tiny_model):
    settings = Settings(
        home=tmp_path,
        finbert_model=str(tiny_model),
        finbert_batch_size=3,
        n_jobs=1,
        _env_file=None,
    )
    built = make_scorer("finbert", settings)
    assert isinstance(built, FinbertScorer) and built.batch_size == 3
    statuses = {status.name: status.available for status in available_scorers(settings)}
    assert statuses == {"vader": True, "finbert": True}


def test_the_scoring_job_stores_finbert_scores_with_their_version(store, clock, start_time, scorer):
    items = [
        NewsItem("bitcoin rally", text, f"https://n.example/{i}", "t", start_time)
        for i, text in enumerate(TEXTS)
    ]
    items[0] = NewsItem("", "market gains", None, "t", start_time + timedelta(hours=1))
    store_articles(store, items, clock=clock)

    first = score_pending_articles(store, scorer, clock=clock, batch_size=4)
    second = score_pending_articles(store, scorer, clock=clock)
    assert (first.scored, first.failed, second.scored) == (len(TEXTS), 0, 0)

    with store.session() as session:
        rows = session.scalars(
            select(ArticleSentiment).where(ArticleSentiment.scorer == "finbert")
        ).all()
        by_article = {row.article_id: row for row in rows}
        articles = session.scalars(select(Article)).all()
    assert len(by_article) == len(articles)
    for article in articles:
        row = by_article[article.id]
        (expected,) = scorer.score([article_text(article.title, article.body)])
        assert row.scorer_version == scorer.version
        assert row.published_at == article.published_at
        assert row.compound == pytest.approx(expected.compound, abs=1e-6)
