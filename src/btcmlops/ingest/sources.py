"""The two small interfaces every data source implements, and the records they yield.

A price source yields closed hourly OHLCV bars; a news source yields articles. Whatever the
source (simulator, CSV file, exchange, RSS), ``ingest.storage`` writes them the same way, so
every later layer is source-agnostic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from btcmlops.clock import ensure_utc, floor_hour


@dataclass(frozen=True, slots=True)
class Bar:
    """One hourly OHLCV bar. ``ts`` is the UTC start of the hour; the bar closes at ts + 1h."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def problem(self) -> str | None:
        """Why this bar cannot be stored, or ``None`` when it is sound."""
        values = (self.open, self.high, self.low, self.close, self.volume)
        if any(not math.isfinite(v) for v in values):
            return "a price or the volume is not a finite number"
        if min(self.open, self.high, self.low, self.close) <= 0:
            return "a price is zero or negative"
        if self.volume < 0:
            return "the volume is negative"
        if self.high < self.low:
            return f"High {self.high} is below Low {self.low}"
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            return "Open or Close lies outside the High-Low range"
        if ensure_utc(self.ts) != floor_hour(self.ts):
            return f"timestamp {self.ts.isoformat()} is not on the hour"
        return None


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One news article as a source delivers it. ``published_at`` is UTC."""

    title: str
    body: str
    url: str | None
    source: str
    published_at: datetime

    @property
    def text(self) -> str:
        """What a sentiment scorer reads (see :func:`article_text`)."""
        return article_text(self.title, self.body)


def article_text(title: str, body: str) -> str:
    """What a sentiment scorer reads: the title, then the body.

    A title derived from the body (CSV news without titles) is not read twice.

    >>> article_text("Bitcoin rallies", "Buyers return.")
    'Bitcoin rallies. Buyers return.'
    >>> article_text("Bitcoin rallies as buyers…", "Bitcoin rallies as buyers return in force.")
    'Bitcoin rallies as buyers return in force.'
    >>> article_text("", "Only a body")
    'Only a body'
    """
    title, body = title.strip(), body.strip()
    if title and body:
        if body.startswith(title.rstrip("…").rstrip(". ")):
            return body
        return f"{title}. {body}"
    return title or body


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """An input row that was not stored, with its line number (1-based) and the reason."""

    line: int
    reason: str


@runtime_checkable
class PriceSource(Protocol):
    """Yields closed hourly bars whose hour starts in ``[start, end)``."""

    name: str

    def fetch_bars(self, start: datetime, end: datetime) -> Iterable[Bar]: ...


@runtime_checkable
class NewsSource(Protocol):
    """Yields articles published in ``[start, end)``."""

    name: str

    def fetch_articles(self, start: datetime, end: datetime) -> Iterable[NewsItem]: ...
