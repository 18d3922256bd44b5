"""VADER, the lexicon-and-rules scorer (Hutto & Gilbert, ICWSM 2014). Works offline.

VADER was built and validated on sentences. On a whole news article it goes wrong twice:

* **It saturates.** ``compound`` is ``x / sqrt(x² + 15)`` of the *summed* word valences, so a
  long text with many sentiment words lands near ±1 whatever its balance: on the 417 real
  articles of the peer data set (median 3,400 characters), 73 % of whole-text compounds have
  ``|compound| > 0.9``, which leaves a feature with almost no spread.
* **It is quadratic.** Its negation and idiom checks lower-case the *whole* token list once
  per sentiment word, so its cost grows with the square of the length.

So each text is split into sentences, each sentence is scored by VADER as designed, and the
article's shares and compound are the word-weighted means of its sentences' (the paragraph
recipe of VADER's README, weighted so a long sentence counts more than a one-word one).
``bench/vader.py`` measures the trade: on 3,000-character articles this is 3-7× faster than
whole-text VADER, no compound saturates, and the label (VADER's ±0.05 cut-offs) agrees with
whole-text VADER on about 90 % of articles. Capping texts at 1,000 characters instead is
faster still but agrees on only about 80 % and ignores most of each article.

>>> scorer = VaderScorer()
>>> good, bad, flat = scorer.score([
...     "Bitcoin surges to a record high as investors celebrate strong gains.",
...     "The exchange was hacked and traders fear terrible losses.",
...     "The report was published on Tuesday.",
... ])
>>> good.compound > 0.5, bad.compound < -0.5, flat.compound == 0.0
(True, True, True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import metadata

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from btcmlops.sentiment.base import SentimentScore

# How texts are cut and combined; part of the version, so changing it re-labels the scores.
AGGREGATION = "sentences-v1"

# A "sentence" with no punctuation for hundreds of words (a scraped table, a run-on feed
# item) would bring the quadratic cost back; windows of this many words bound it. Real
# sentences are far shorter, so ordinary prose is never cut.
MAX_SEGMENT_WORDS = 100

# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) before
# whitespace, and at every line break (headlines, list items, paragraphs).
_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+|\s*\n\s*")

NO_SENTIMENT = SentimentScore(positive=0.0, negative=0.0, neutral=1.0, compound=0.0, confidence=0.0)


def vader_package_version() -> str:
    try:
        return metadata.version("vaderSentiment")
    except metadata.PackageNotFoundError:  # vendored copy without package metadata
        return "unknown"


def split_sentences(text: str) -> list[str]:
    """The text's sentences, whitespace-normalised, none longer than ``MAX_SEGMENT_WORDS``.

    >>> split_sentences("Prices rose. Did they?\\nYes!  Fees fell 2.5% today.")
    ['Prices rose.', 'Did they?', 'Yes!', 'Fees fell 2.5% today.']
    """
    segments: list[str] = []
    for sentence in _SENTENCE_BOUNDARY.split(text):
        words = sentence.split()
        for start in range(0, len(words), MAX_SEGMENT_WORDS):
            segments.append(" ".join(words[start : start + MAX_SEGMENT_WORDS]))
    return segments


class VaderScorer:
    """VADER scores, computed sentence by sentence and combined per text.

    Mapping to :class:`SentimentScore`:

    * ``positive``, ``negative``, ``neutral``: VADER's ``pos``, ``neg``, ``neu`` shares,
      word-weighted over sentences and rescaled to sum to exactly 1 (VADER rounds each
      share to 3 decimals, so its own sum can be off by 0.001).
    * ``compound``: the word-weighted mean of the sentences' ``compound``, in [-1, 1].
    * ``confidence``: ``|compound|``. VADER has no probability model; what it does measure
      is how strongly the text leans to one side, and that is what a confidence-weighted
      feature should weight by. 0 means no polar evidence (or evidence that cancels out),
      1 a text that is uniformly, strongly positive or negative. It is an intensity, not a
      calibrated probability, and not comparable with FinBERT's (features are per scorer).

    A text with no words scores as neutral with zero confidence. One
    ``SentimentIntensityAnalyzer`` (which loads the lexicon when built) serves every call;
    scoring does not change it, so one scorer can be shared between threads.
    """

    name = "vader"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self.version = f"vaderSentiment-{vader_package_version()}/{AGGREGATION}"

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        return [self.score_text(text) for text in texts]

    def score_text(self, text: str) -> SentimentScore:
        segments = split_sentences(text)
        total_words = 0
        positive = negative = neutral = compound = 0.0
        for segment in segments:
            words = len(segment.split())
            polarity = self._analyzer.polarity_scores(segment)
            positive += words * polarity["pos"]
            negative += words * polarity["neg"]
            neutral += words * polarity["neu"]
            compound += words * polarity["compound"]
            total_words += words
        shares = positive + negative + neutral
        if total_words == 0 or shares <= 0.0:
            return NO_SENTIMENT
        mean_compound = min(1.0, max(-1.0, compound / total_words))
        return SentimentScore(
            positive=positive / shares,
            negative=negative / shares,
            neutral=neutral / shares,
            compound=mean_compound,
            confidence=abs(mean_compound),
        )

    def __repr__(self) -> str:
        return f"VaderScorer(version={self.version!r})"
