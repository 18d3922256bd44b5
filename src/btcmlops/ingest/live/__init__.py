"""Live connectors: hourly candles from Coinbase Exchange and news from RSS feeds.

Everything goes over HTTP through one :class:`PoliteHttpClient` (retries with backoff and
jitter, ``Retry-After``, a minimum interval between requests); :func:`ingest_live` fetches
from every source and stores what arrived, reporting one line per source that failed.
"""

from btcmlops.ingest.live.catch_up import (
    DEFAULT_LOOKBACK,
    LiveIngestReport,
    SourceResult,
    configured_live_sources,
    ingest_live,
    live_sources,
)
from btcmlops.ingest.live.exchange import (
    COINBASE_EXCHANGE_URL,
    COINBASE_MAX_CANDLES_PER_REQUEST,
    DEFAULT_PRODUCT_ID,
    ExchangePriceSource,
)
from btcmlops.ingest.live.http import (
    PoliteHttpClient,
    SourceError,
    SourcePayloadError,
    SourceUnavailableError,
)
from btcmlops.ingest.live.rss import NEWS_FEEDS, RssNewsSource, html_to_text, news_sources

__all__ = [
    "COINBASE_EXCHANGE_URL",
    "COINBASE_MAX_CANDLES_PER_REQUEST",
    "DEFAULT_LOOKBACK",
    "DEFAULT_PRODUCT_ID",
    "NEWS_FEEDS",
    "ExchangePriceSource",
    "LiveIngestReport",
    "PoliteHttpClient",
    "RssNewsSource",
    "SourceError",
    "SourcePayloadError",
    "SourceResult",
    "SourceUnavailableError",
    "configured_live_sources",
    "html_to_text",
    "ingest_live",
    "live_sources",
    "news_sources",
]
