"""News from the RSS feeds of CoinDesk, Cointelegraph and Decrypt (any RSS or Atom feed works).

The feed is downloaded through the shared :class:`PoliteHttpClient` and the bytes are handed
to feedparser; feedparser itself never fetches a URL. Each entry becomes a
:class:`~btcmlops.ingest.sources.NewsItem`: the title, the summary (or description, or
content) as body, both as plain text; the link as url; the outlet as source; and
``published_at`` from the entry's published date, else its updated date, in UTC. An entry
with neither is reported in :attr:`RssNewsSource.rejections`, never given an invented date.
"""

from __future__ import annotations

import calendar
import io
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser
import httpx

from btcmlops.clock import ensure_utc
from btcmlops.ingest.live.http import PoliteHttpClient, SourcePayloadError
from btcmlops.ingest.sources import NewsItem, RejectedRow

# Outlet -> feed URL. CoinDesk's answers /rss/ with a redirect to /rss, which is followed.
NEWS_FEEDS: Mapping[str, str] = {
    "CoinDesk": "https://www.coindesk.com/arc/outboundfeeds/rss/",
    "Cointelegraph": "https://cointelegraph.com/rss",
    "Decrypt": "https://decrypt.co/feed",
}


class RssNewsSource:
    """A :class:`~btcmlops.ingest.sources.NewsSource` over one outlet's RSS or Atom feed.

    A feed only carries its latest entries; ``fetch_articles`` keeps those published in
    ``[start, end)``. :attr:`rejections` (reset on every call) lists the entries that could
    not become an article, with their position in the feed and the reason.
    """

    def __init__(self, http: PoliteHttpClient, outlet: str, feed_url: str) -> None:
        self.http = http
        self.outlet = outlet
        self.feed_url = feed_url
        self.name = f"{outlet} RSS"
        self.rejections: list[RejectedRow] = []

    @property
    def label(self) -> str:
        """How error lines name this source."""
        return self.name

    def fetch_articles(self, start: datetime, end: datetime) -> Iterator[NewsItem]:
        """The feed's articles published in ``[start, end)``, in feed order."""
        self.rejections = []
        start, end = ensure_utc(start), ensure_utc(end)
        response = self.http.get(self.feed_url, source=self.label)
        for position, entry in enumerate(self._parse_feed(response), start=1):
            item = self._article(position, entry)
            if item is not None and start <= item.published_at < end:
                yield item

    def _parse_feed(self, response: httpx.Response) -> list[Any]:
        content_type = response.headers.get("content-type", "")
        parsed = feedparser.parse(
            io.BytesIO(response.content),  # a stream: feedparser must not open URLs or files
            response_headers={
                "content-type": content_type or "application/xml",
                "content-location": str(response.url),
            },
        )
        if not parsed.get("version"):
            cause = parsed.get("bozo_exception")
            detail = f" ({cause})" if cause else ""
            raise SourcePayloadError(
                self.label,
                f"expected an RSS or Atom feed from {httpx.URL(self.feed_url).host}, got "
                f"{content_type or 'no content type'} starting "
                f"{_snippet(response.text)!r}{detail}",
            )
        return list(parsed.entries)

    def _article(self, position: int, entry: Any) -> NewsItem | None:
        title = html_to_text(entry.get("title", ""))
        published_at, date_problem = _entry_time(entry)
        if published_at is None:
            named = f"entry {_snippet(title)!r}" if title else "an entry without a title"
            self.rejections.append(RejectedRow(position, f"{named} {date_problem}"))
            return None
        link = (entry.get("link") or "").strip() or None
        return NewsItem(
            title=title,
            body=html_to_text(_entry_body(entry)),
            url=link,
            source=self.outlet,
            published_at=published_at,
        )


def news_sources(
    http: PoliteHttpClient, feeds: Mapping[str, str] | None = None
) -> list[RssNewsSource]:
    """One source per outlet in ``feeds`` (default :data:`NEWS_FEEDS`)."""
    return [RssNewsSource(http, outlet, url) for outlet, url in (feeds or NEWS_FEEDS).items()]


def _entry_time(entry: Any) -> tuple[datetime | None, str]:
    """The entry's instant in UTC (published, else updated), or ``None`` and why not."""
    for key in ("published", "updated"):
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            # feedparser normalises dates to a UTC struct_time; timegm reads it as UTC.
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC), ""
    raw = entry.get("published") or entry.get("updated")
    if raw:
        return None, f"has a date that cannot be read: {_snippet(raw)!r}"
    return None, "has no published or updated date"


def _entry_body(entry: Any) -> str:
    summary = entry.get("summary") or ""
    if summary.strip():
        return summary
    for content in entry.get("content") or ():
        value = content.get("value") or ""
        if value.strip():
            return value
    return ""


class _PlainTextCollector(HTMLParser):
    """Collects the text of an HTML fragment; block elements become spaces."""

    _BLOCKS = frozenset(
        {"p", "br", "div", "li", "ul", "ol", "blockquote", "tr", "td", "th", "hr"}
        | {"h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption"}
    )
    _HIDDEN = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


_WHITESPACE = re.compile(r"\s+")


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.

    >>> html_to_text('<p>Bitcoin &amp; ether <b>rally</b></p><p>Second&nbsp;para</p>')
    'Bitcoin & ether rally Second para'
    """
    if "<" not in fragment and "&" not in fragment:
        return _WHITESPACE.sub(" ", fragment).strip()
    collector = _PlainTextCollector()
    collector.feed(fragment)
    collector.close()
    return _WHITESPACE.sub(" ", "".join(collector.parts)).strip()


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
