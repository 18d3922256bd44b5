"""The one interface every sentiment scorer implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from btcmlops.errors import DependencyUnavailableError


@dataclass(frozen=True, slots=True)
class SentimentScore:
    """A scorer's verdict on one text.

    ``positive``, ``negative`` and ``neutral`` are shares in [0, 1]; ``compound`` is one
    number in [-1, 1] (negative to positive); ``confidence`` in [0, 1] says how sure the
    scorer is of its label.
    """

    positive: float
    negative: float
    neutral: float
    compound: float
    confidence: float


@runtime_checkable
class SentimentScorer(Protocol):
    """Scores texts. ``name`` is ``vader`` or ``finbert``; ``version`` is stored with scores."""

    name: str
    version: str

    def score(self, texts: Sequence[str]) -> list[SentimentScore]: ...


class ScorerUnavailableError(DependencyUnavailableError):
    """A scorer cannot be built here: its libraries or its weights are missing.

    The message names the scorer and the model, and says how to provide what is missing.
    Other scorers are unaffected: VADER works wherever btcmlops is installed.
    """
