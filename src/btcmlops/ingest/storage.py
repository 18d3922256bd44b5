"""Idempotent writes of bars and articles: the same input twice changes nothing.

Bars are unique per (symbol, hour) and articles per ``dedup_key`` (their URL, or a hash of
their text when they have none). Existing rows are never overwritten: a re-import or an
overlapping import only adds what is new, and says how much it skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from btcmlops.clock import Clock, ensure_utc
from btcmlops.db.models import Article, PriceBar
from btcmlops.db.store import Store
from btcmlops.ingest.sources import Bar, NewsItem, RejectedRow

_CHUNK = 2_000  # rows per INSERT statement and per IN (...) lookup


@dataclass
class ImportSummary:
    """What an import did. ``read = inserted + skipped + rejected``."""

    read: int = 0
    inserted: int = 0
    skipped: int = 0
    rejected: int = 0
    rejections: list[RejectedRow] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.rejections.append(RejectedRow(line, reason))

    def merge(self, other: ImportSummary) -> ImportSummary:
        self.read += other.read
        self.inserted += other.inserted
        self.skipped += other.skipped
        self.rejected += other.rejected
        self.rejections.extend(other.rejections)
        return self

    def line(self) -> str:
        return (
            f"rows read {self.read}, inserted {self.inserted}, skipped {self.skipped} "
            f"(already stored), rejected {self.rejected}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "inserted": self.inserted,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "rejections": [{"line": r.line, "reason": r.reason} for r in self.rejections],
        }


def _insert_ignoring_duplicates(store: Store, table: type, index: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the store's dialect (guards concurrent writers)."""
    dialect = postgresql if store.dialect == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index))


def store_bars(
    store: Store,
    bars: Iterable[Bar],
    *,
    symbol: str,
    source: str,
    clock: Clock,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Insert the sound bars that are not stored yet; reject unsound ones with a reason.

    Bars are validated here too (not only by parsers) so no source can store a broken bar.
    Within one call a repeated hour counts as skipped after its first occurrence.
    """
    summary = summary or ImportSummary()
    fresh: dict[datetime, Bar] = {}
    for position, bar in enumerate(bars, start=1):
        summary.read += 1
        problem = bar.problem()
        if problem:
            summary.reject(position, problem)
            continue
        ts = ensure_utc(bar.ts)
        if ts in fresh:
            summary.skipped += 1
            continue
        fresh[ts] = bar
    if not fresh:
        return summary

    now = clock.now()
    with store.session() as session:
        existing = _existing_hours(session, symbol, min(fresh), max(fresh))
        new = [bar for ts, bar in sorted(fresh.items()) if ts not in existing]
        summary.skipped += len(fresh) - len(new)
        statement = _insert_ignoring_duplicates(store, PriceBar, ["symbol", "ts"])
        for start in range(0, len(new), _CHUNK):
            rows = [
                {
                    "symbol": symbol,
                    "ts": ensure_utc(bar.ts),
                    "open": bar.open,
                    "high": bar.high,
                    "low": bar.low,
                    "close": bar.close,
                    "volume": bar.volume,
                    "source": source,
                    "ingested_at": now,
                }
                for bar in new[start : start + _CHUNK]
            ]
            session.execute(statement, rows)
        summary.inserted += len(new)
    return summary


def _existing_hours(session, symbol: str, first: datetime, last: datetime) -> set[datetime]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(PriceBar.ts).where(
            PriceBar.symbol == symbol, PriceBar.ts >= first, PriceBar.ts <= last
        )
    )
    return {ts for (ts,) in rows}


_WHITESPACE = re.compile(r"\s+")


def article_dedup_key(item: NewsItem) -> str:
    """``url:<normalised url>`` or, without a URL, ``sha256:<hash of normalised text>``."""
    if item.url and item.url.strip():
        parts = urlsplit(item.url.strip())
        normalised = urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
        )
        return f"url:{normalised}"[:600]
    text = _WHITESPACE.sub(" ", f"{item.title}\n{item.body}").strip().lower()
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def article_problem(item: NewsItem) -> str | None:
    if not (item.title.strip() or item.body.strip()):
        return "the article has no text"
    return None


def store_articles(
    store: Store,
    items: Iterable[NewsItem],
    *,
    clock: Clock,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Insert articles not stored yet (deduplicated by URL, else by text hash)."""
    summary = summary or ImportSummary()
    fresh: dict[str, NewsItem] = {}
    for position, item in enumerate(items, start=1):
        summary.read += 1
        problem = article_problem(item)
        if problem:
            summary.reject(position, problem)
            continue
        key = article_dedup_key(item)
        if key in fresh:
            summary.skipped += 1
            continue
        fresh[key] = item
    if not fresh:
        return summary

    now = clock.now()
    keys = list(fresh)
    with store.session() as session:
        existing: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            existing.update(
                session.scalars(select(Article.dedup_key).where(Article.dedup_key.in_(chunk)))
            )
        new = [(key, item) for key, item in fresh.items() if key not in existing]
        summary.skipped += len(fresh) - len(new)
        statement = _insert_ignoring_duplicates(store, Article, ["dedup_key"])
        for start in range(0, len(new), _CHUNK):
            rows = [
                {
                    "dedup_key": key,
                    "url": item.url.strip() if item.url else None,
                    "title": item.title.strip(),
                    "body": item.body.strip(),
                    "source": item.source[:64],
                    "published_at": ensure_utc(item.published_at),
                    "ingested_at": now,
                }
                for key, item in new[start : start + _CHUNK]
            ]
            session.execute(statement, rows)
        summary.inserted += len(new)
    return summary
