"""Benchmark: VADER throughput on 3,000-character articles, and what sentence scoring costs.

The figure wanted is VADER's throughput in articles per second on 3,000-character articles.
Three ways of scoring an article are timed on the same deterministic synthetic articles:

* ``whole text``: one ``polarity_scores`` call per article (VADER's cost grows with length²);
* ``first 1,000 chars``: the same, on a capped text (cheap, but ignores most of the article);
* ``sentences``: what ``VaderScorer`` does (word-weighted mean over sentences).

Agreement with whole-text VADER is printed for each (label agreement with VADER's ±0.05
cut-offs, Spearman's rank correlation of compound, and how many compounds are saturated
beyond ±0.9), on the synthetic articles and, when the peer folder is present, on the real
news articles in ``news_df.csv`` (read in place, never copied). Finally the scoring job is
timed end to end (read, score, write) on a fresh SQLite store.

FinBERT is not benchmarked here: the only weights available offline are the tests' tiny
model, whose speed says nothing about FinBERT's.

Usage: ``python bench/vader.py [--articles N] [--length CHARS] [--seed S] [--data DIR]``
"""

from __future__ import annotations

import argparse
import platform
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from btcmlops.clock import FixedClock, parse_utc
from btcmlops.db.store import Store
from btcmlops.ingest.sources import NewsItem
from btcmlops.ingest.storage import store_articles
from btcmlops.mlops.article_scoring import score_pending_articles
from btcmlops.sentiment.vader import VaderScorer

DEFAULT_DATA = Path("/work/shared/data/peer")
NEWS = "news_df.csv"
NEUTRAL_BAND = 0.05  # VADER's recommended cut-off between neutral and polar compounds


def vocabulary(*lines: str) -> tuple[str, ...]:
    return tuple(" ".join(lines).split())


# Synthetic news prose: mostly neutral market vocabulary, with words from VADER's lexicon
# (5 % positive, 5 % negative) and negations, boosters and "but" (3 %).
NEUTRAL_WORDS = vocabulary(
    "bitcoin price market exchange traders analysts network miners block fees futures",
    "options funds report week hour data volume index dollar investors session chart",
    "level the the the a a of of to to in in on for with as at by from that this which",
)
POSITIVE_WORDS = vocabulary("gain gains rally surge strong growth optimism win boost record")
NEGATIVE_WORDS = vocabulary("loss losses crash fear weak decline risk panic fraud ban")
MODIFIERS = vocabulary("not no never very extremely slightly but")


def synthetic_article(rng: random.Random, length: int) -> str:
    """One article of exactly ``length`` characters: sentences of 8-30 words."""
    sentences: list[str] = []
    size = 0
    while size < length:
        words = []
        for _ in range(rng.randint(8, 30)):
            roll = rng.random()
            if roll < 0.05:
                words.append(rng.choice(POSITIVE_WORDS))
            elif roll < 0.10:
                words.append(rng.choice(NEGATIVE_WORDS))
            elif roll < 0.13:
                words.append(rng.choice(MODIFIERS))
            else:
                words.append(rng.choice(NEUTRAL_WORDS))
        sentence = " ".join(words).capitalize() + rng.choice(".....!?")
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)[:length]


def synthetic_articles(count: int, length: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [synthetic_article(rng, length) for _ in range(count)]


def real_articles(data: Path) -> list[str] | None:
    path = data / NEWS
    if not path.exists():
        return None
    import pandas as pd

    frame = pd.read_csv(path)
    column = "Text" if "Text" in frame.columns else frame.columns[-1]
    return [str(text) for text in frame[column].dropna()]


def timed(score: Callable[[Sequence[str]], list[float]], texts: Sequence[str]):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    compounds = score(texts)
    return np.asarray(compounds), time.perf_counter() - started


def labels(compounds: np.ndarray) -> np.ndarray:
    return np.where(np.abs(compounds) < NEUTRAL_BAND, 0, np.sign(compounds))


def compare(name: str, texts: Sequence[str]) -> None:
    analyzer = SentimentIntensityAnalyzer()
    scorer = VaderScorer()
    methods: dict[str, Callable[[Sequence[str]], list[float]]] = {
        "whole text": lambda ts: [analyzer.polarity_scores(t)["compound"] for t in ts],
        "first 1,000 chars": lambda ts: [
            analyzer.polarity_scores(t[:1000])["compound"] for t in ts
        ],
        "sentences (chosen)": lambda ts: [s.compound for s in scorer.score(ts)],
    }
    lengths = [len(text) for text in texts]
    print(
        f"\n{name}: {len(texts)} articles, median {int(np.median(lengths))} characters "
        f"(10th-90th percentile {int(np.percentile(lengths, 10))}-"
        f"{int(np.percentile(lengths, 90))})"
    )
    print(f"  {'method':20} {'articles/s':>10} {'label agree':>12} {'spearman':>9} {'|c|>0.9':>8}")
    reference: np.ndarray | None = None
    for method, score in methods.items():
        compounds, seconds = timed(score, texts)
        if reference is None:
            reference = compounds
        agree = float(np.mean(labels(compounds) == labels(reference)))
        rho = float(spearmanr(compounds, reference).statistic)
        saturated = float(np.mean(np.abs(compounds) > 0.9))
        print(
            f"  {method:20} {len(texts) / seconds:10.1f} {agree:12.1%} {rho:9.3f} {saturated:8.1%}"
        )


def scoring_job(texts: Sequence[str]) -> None:
    clock = FixedClock(parse_utc("2024-01-01T00:00:00Z"))
    start = clock.now()
    items = [
        NewsItem(f"Article {i}", text, f"https://bench.example/{i}", "bench", start)
        for i, text in enumerate(texts)
    ]
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            store_articles(store, items, clock=clock)
            scorer = VaderScorer()
            started = time.perf_counter()
            summary = score_pending_articles(store, scorer, clock=clock)
            seconds = time.perf_counter() - started
        finally:
            store.close()
    print(
        f"\nscoring job, SQLite, end to end: {len(texts) / seconds:.1f} articles/s "
        f"({seconds:.2f} s; {summary.line()})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--length", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} on {platform.machine()}, vader {VaderScorer().version}"
    )
    synthetic = synthetic_articles(args.articles, args.length, args.seed)
    compare(f"synthetic {args.length}-character articles (seed {args.seed})", synthetic)
    real = real_articles(args.data)
    if real is None:
        print(f"\nreal articles: skipped ({args.data / NEWS} is absent)")
    else:
        compare(f"real articles ({args.data / NEWS})", real)
    scoring_job(synthetic)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
