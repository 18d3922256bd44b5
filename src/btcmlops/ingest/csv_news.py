"""News articles from CSV files: ``date,text`` at minimum, with optional title, url and source.

Header names are compared case-insensitively (``Date,Text`` works), with a few aliases:
``published``/``published at``/``datetime`` for date, ``body``/``content`` for text,
``headline`` for title, ``link`` for url. A file with a title column may leave text out.
Bodies may be quoted and span several lines; a rejected record is reported at the line where it
starts.

Dates are UTC unless they carry an offset, in the ISO-8601 forms news exports mix
(``2021-05-03``, ``2021-05-03T10:00:00``, ``2021-06-22T14:06:07.000Z``, ``...-04:00``). A date
without a time says only that the article appeared some time that day, so it is placed at the
day's last second (23:59:59 UTC): features for an hour then never see an article that may
have been published after it (no look-ahead). :attr:`ParsedNews.date_only` counts them.

Without a title, the title is the text's first sentence, shortened to 120 characters at a word
boundary, and the full text is kept as the body. ``source`` defaults to the file name stem.
Articles are deduplicated as storage does (by URL, else by text): within a file the first
wins and the repeats are skipped and listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from btcmlops.clock import Clock
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.csv_common import (
    CsvImportSummary,
    Progress,
    RowVerdicts,
    column_texts,
    find_header,
    micros_to_datetimes,
    normalise_column,
    parse_instants,
    plural,
    read_records,
    separator_hint,
    split_by_width,
    start_summary,
    store_numbered,
)
from btcmlops.ingest.sources import NewsItem, RejectedRow
from btcmlops.ingest.storage import article_dedup_key, store_articles

_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "published", "published at", "datetime"),
    "text": ("text", "body", "content"),
    "title": ("title", "headline"),
    "url": ("url", "link"),
    "source": ("source",),
}
_EXPECTED = "expected at least date,text (optional title, url, source)"
_DATE_ONLY = r"\d{4}-\d{1,2}-\d{1,2}"
_LAST_SECOND_US = 86_399_000_000  # from 00:00:00 to 23:59:59
_TITLE_LIMIT = 120
_SHORTEST_SENTENCE = 20  # "Mr. Powell said ..." must not end at "Mr."
# A sentence ends at . ! or ? before a capital (after spaces, or glued on as in "it.The").
_SENTENCE_END = re.compile(r"[.!?](?=\s+[\"'“‘(\[]?[A-Z0-9]|[A-Z][a-z])")
_WRITE_CHUNK = 1_000


@dataclass(frozen=True)
class ParsedNews:
    """A news CSV read and checked, not stored. ``items[i]`` comes from line ``lines[i]``."""

    path: Path
    header_line: int
    columns: dict[str, str]
    rows: int
    items: list[NewsItem]
    lines: list[int]
    rejections: list[RejectedRow]
    repeats: list[RejectedRow]
    date_only: int

    def describe(self) -> str:
        columns = ",".join(self.columns.values())
        return (
            f"news CSV ({columns}; header on line {self.header_line}), "
            f"{plural(self.rows, 'record')}, {self.date_only} dated without a time "
            "(placed at 23:59:59 UTC)"
        )


def headline_from(text: str, limit: int = _TITLE_LIMIT) -> str:
    """A title for an article that has none: its first sentence, cut to ``limit`` characters.

    >>> headline_from("Mr. Smith bought bitcoin on Monday. Analysts were surprised.")
    'Mr. Smith bought bitcoin on Monday.'
    >>> headline_from("word " * 40, limit=20)
    'word word word word…'
    """
    flat = " ".join(text.split())
    sentence = flat
    for end in _SENTENCE_END.finditer(flat):
        if end.end() >= _SHORTEST_SENTENCE:
            sentence = flat[: end.end()]
            break
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1]
    if sentence[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def parse_news_csv(path: Path | str, *, source: str | None = None) -> ParsedNews:
    """Read a news CSV into articles with their lines, and the rejected records.

    ``source`` names the articles that have no source column value (default: the file name
    stem, or ``csv``).

    Raises
    ------
    InvalidInputError
        When the file is not a news CSV (no date column, no text or title column, not CSV).
    """
    table = read_records(path)
    header_index, layout = find_header(table, _recognise)
    records, lines, width_rejections = split_by_width(
        table, header_index + 1, len(table.records[header_index])
    )
    default_source = source or table.path.stem or "csv"
    texts = {role: column_texts(records, index) for role, index in layout.items()}
    blank = pd.Series([""] * len(records), dtype="str")
    date_text = texts["date"]
    body, title = texts.get("text", blank), texts.get("title", blank)
    url, origin = texts.get("url", blank), texts.get("source", blank)
    header = table.records[header_index]
    date_name = header[layout["date"]]

    micros, readable = parse_instants(date_text)
    date_only = date_text.str.fullmatch(_DATE_ONLY).to_numpy(dtype=bool) & readable
    micros = np.where(date_only, micros + _LAST_SECOND_US, micros)

    verdicts = RowVerdicts(len(records))
    verdicts.reject(date_text.to_numpy(dtype=object) == "", lambda row: f"{date_name} is empty")
    verdicts.reject(
        ~readable,
        lambda row: (
            f"{date_name} {date_text.iat[row]!r} is not a date (expected ISO 8601, such as "
            "2021-05-03 or 2021-06-22T14:06:07Z)"
        ),
    )
    verdicts.reject(
        (body.to_numpy(dtype=object) == "") & (title.to_numpy(dtype=object) == ""),
        lambda row: "the article has no text",
    )
    bad_url = np.array([bool(link) and not _is_web_address(link) for link in url], dtype=bool)
    verdicts.reject(bad_url, lambda row: f"url {url.iat[row][:80]!r} is not an http(s) address")

    accepted = np.flatnonzero(~verdicts.rejected)
    published = micros_to_datetimes(micros[accepted])
    items = [
        NewsItem(
            title=title.iat[row] or headline_from(body.iat[row]),
            body=body.iat[row],
            url=url.iat[row] or None,
            source=origin.iat[row] or default_source,
            published_at=moment,
        )
        for row, moment in zip(accepted.tolist(), published, strict=True)
    ]
    kept_items, kept_lines, repeats = _first_of_each_article(
        items, [lines[row] for row in accepted]
    )
    rejections = sorted(width_rejections + verdicts.rejections(lines), key=lambda r: r.line)
    return ParsedNews(
        path=table.path,
        header_line=table.lines[header_index],
        columns={role: header[index] for role, index in layout.items()},
        rows=len(table.records) - header_index - 1,
        items=kept_items,
        lines=kept_lines,
        rejections=rejections,
        repeats=repeats,
        date_only=int(date_only[accepted].sum()),
    )


def import_news_csv(
    store: Store,
    path: Path | str,
    *,
    clock: Clock,
    source: str | None = None,
    progress: Progress | None = None,
) -> CsvImportSummary:
    """Import a news CSV into the store; idempotent (articles deduplicated by URL, else text).

    The whole file is parsed first: a file that is not a news CSV raises
    :class:`InvalidInputError` before anything is written. ``progress(done, total)`` follows
    the articles written.
    """
    parsed = parse_news_csv(path, source=source)
    summary = start_summary(
        parsed.path, parsed.describe(), parsed.rows, parsed.rejections, parsed.repeats
    )
    store_numbered(
        parsed.items,
        parsed.lines,
        lambda chunk: store_articles(store, chunk, clock=clock),
        summary,
        chunk_size=_WRITE_CHUNK,
        progress=progress,
    )
    return summary


def _recognise(header: list[str]) -> dict[str, int]:
    names = [normalise_column(name) for name in header]
    layout: dict[str, int] = {}
    for role, aliases in _ALIASES.items():
        found = [i for i, name in enumerate(names) if name in aliases]
        if len(found) > 1:
            raise InvalidInputError(
                f"the header has {len(found)} {role} columns "
                f"({', '.join(repr(header[i]) for i in found)}); expected one"
            )
        if found:
            layout[role] = found[0]
    missing = [] if "date" in layout else ["date"]
    if "text" not in layout and "title" not in layout:
        missing.append("text")
    if missing:
        shown = ", ".join(repr(name[:40]) for name in header[:12])
        raise InvalidInputError(
            f"not a news CSV: missing {' and '.join(missing)} (found columns: {shown})"
            f"{separator_hint(header)}; {_EXPECTED}"
        )
    return layout


def _is_web_address(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


def _first_of_each_article(
    items: list[NewsItem], lines: list[int]
) -> tuple[list[NewsItem], list[int], list[RejectedRow]]:
    first_line: dict[str, int] = {}
    kept_items: list[NewsItem] = []
    kept_lines: list[int] = []
    repeats: list[RejectedRow] = []
    for item, line in zip(items, lines, strict=True):
        key = article_dedup_key(item)
        if key in first_line:
            repeats.append(RejectedRow(line, f"repeats the article of line {first_line[key]}"))
            continue
        first_line[key] = line
        kept_items.append(item)
        kept_lines.append(line)
    return kept_items, kept_lines, repeats
