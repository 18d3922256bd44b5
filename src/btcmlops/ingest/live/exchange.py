"""Closed hourly candles from Coinbase Exchange's public REST API (no key needed).

Endpoint: ``GET {base_url}/products/{product_id}/candles?granularity=3600&start=...&end=...``.
It answers a JSON array of ``[time, low, high, open, close, volume]`` rows, newest first,
``time`` being the bucket start in Unix seconds, at most 300 rows per request; hours without
trades have no row (they are not invented here either). It may include rows outside the
asked range, and the current hour's still-moving candle: both are dropped here, so only
closed bars inside ``[start, end)`` come out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from btcmlops.clock import HOUR, Clock, ensure_utc, floor_hour
from btcmlops.ingest.live.http import PoliteHttpClient, SourcePayloadError
from btcmlops.ingest.sources import Bar, RejectedRow

COINBASE_EXCHANGE_URL = "https://api.exchange.coinbase.com"
COINBASE_MAX_CANDLES_PER_REQUEST = 300
DEFAULT_PRODUCT_ID = "BTC-USD"
_GRANULARITY_SECONDS = 3600
_ROW_SHAPE = "[time, low, high, open, close, volume]"


class ExchangePriceSource:
    """A :class:`~btcmlops.ingest.sources.PriceSource` over Coinbase Exchange hourly candles.

    ``fetch_bars`` is a generator that requests one page at a time, oldest page first, and
    yields each page's bars in time order, so a caller keeps what arrived before a failure.
    Rows that cannot become a sound bar are skipped and recorded in :attr:`rejections`
    (reset on every call) with their position among the rows received and the reason.

    Parameters
    ----------
    http:
        The polite client every request goes through (retries, rate limit).
    clock:
        Decides which hours are closed: a bar is yielded only once its hour has ended.
    candles_per_request:
        Page size; the API refuses more than 300.
    """

    name = "coinbase"

    def __init__(
        self,
        http: PoliteHttpClient,
        clock: Clock,
        *,
        product_id: str = DEFAULT_PRODUCT_ID,
        base_url: str = COINBASE_EXCHANGE_URL,
        candles_per_request: int = COINBASE_MAX_CANDLES_PER_REQUEST,
    ) -> None:
        if not 1 <= candles_per_request <= COINBASE_MAX_CANDLES_PER_REQUEST:
            raise ValueError(
                f"candles_per_request must be 1..{COINBASE_MAX_CANDLES_PER_REQUEST}, "
                f"got {candles_per_request}"
            )
        self.http = http
        self.clock = clock
        self.product_id = product_id
        self.url = f"{base_url.rstrip('/')}/products/{product_id}/candles"
        self.host = httpx.URL(self.url).host
        self.candles_per_request = candles_per_request
        self.rejections: list[RejectedRow] = []

    @property
    def label(self) -> str:
        """How error lines name this source."""
        return f"{self.name} candles"

    def fetch_bars(self, start: datetime, end: datetime) -> Iterator[Bar]:
        """Closed bars whose hour starts in ``[start, end)``, oldest first."""
        self.rejections = []
        first = _ceil_hour(start)
        # An hour is closed once it has ended: every hour before the current one.
        stop = min(_ceil_hour(end), floor_hour(self.clock.now()))
        rows_seen = 0
        page_start = first
        while page_start < stop:
            page_end = min(page_start + self.candles_per_request * HOUR, stop)
            rows = self._request_page(page_start, page_end)
            bars = self._bars_in_page(rows, page_start, page_end, rows_seen)
            rows_seen += len(rows)
            yield from bars
            page_start = page_end

    def _request_page(self, page_start: datetime, page_end: datetime) -> list[Any]:
        # ``end`` is sent one full page after ``start`` (the API counts (end-start)/granularity
        # against its 300 limit); whether it treats ``end`` as inclusive or not, rows outside
        # [page_start, page_end) are filtered out below.
        response = self.http.get(
            self.url,
            source=self.label,
            params={
                "granularity": _GRANULARITY_SECONDS,
                "start": _iso(page_start),
                "end": _iso(page_end),
            },
        )
        return self._candle_rows(response)

    def _candle_rows(self, response: httpx.Response) -> list[Any]:
        host = self.host
        try:
            payload = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise SourcePayloadError(
                self.label,
                f"expected a JSON array of candles from {host}, got {kind} "
                f"starting {_snippet(response.text)!r}",
            ) from None
        if isinstance(payload, dict):
            message = payload.get("message")
            if isinstance(message, str) and message:
                problem = f"{host} answered an error instead of candles: {message[:200]}"
            else:
                keys = ", ".join(sorted(map(str, payload))[:6])
                problem = f"expected a JSON array of candles from {host}, got an object ({keys})"
            raise SourcePayloadError(self.label, problem)
        if not isinstance(payload, list):
            raise SourcePayloadError(
                self.label,
                f"expected a JSON array of candles from {host}, got {type(payload).__name__}",
            )
        if payload and not any(_has_row_shape(row) for row in payload):
            raise SourcePayloadError(
                self.label,
                f"none of the {len(payload)} rows from {host} has the shape {_ROW_SHAPE}; "
                f"the first is {_snippet(repr(payload[0]))}",
            )
        return payload

    def _bars_in_page(
        self, rows: list[Any], page_start: datetime, page_end: datetime, rows_before: int
    ) -> list[Bar]:
        bars: list[Bar] = []
        for index, row in enumerate(rows, start=1):
            position = rows_before + index
            try:
                bar = _bar_from_row(row)
            except ValueError as error:
                self._reject(position, page_start, index, str(error))
                continue
            if not page_start <= bar.ts < page_end:
                continue  # outside the asked window, or the hour still in progress
            problem = bar.problem()
            if problem:
                self._reject(position, page_start, index, problem)
                continue
            bars.append(bar)
        bars.sort(key=lambda bar: bar.ts)
        return bars

    def _reject(self, position: int, page_start: datetime, index: int, reason: str) -> None:
        where = f"candle {index} of the page from {_iso(page_start)}"
        self.rejections.append(RejectedRow(position, f"{where}: {reason}"))


def _bar_from_row(row: Any) -> Bar:
    """One ``[time, low, high, open, close, volume]`` row as a Bar (``ValueError`` if malformed)."""
    if not _has_row_shape(row):
        raise ValueError(f"expected {_ROW_SHAPE}, got {_snippet(repr(row))}")
    seconds = _number(row[0], "time")
    if seconds != int(seconds):
        raise ValueError(f"time {row[0]!r} is not a whole number of Unix seconds")
    try:
        ts = datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"time {row[0]!r} is not a valid Unix timestamp") from None
    low, high, open_, close, volume = (
        _number(row[i], name)
        for i, name in ((1, "low"), (2, "high"), (3, "open"), (4, "close"), (5, "volume"))
    )
    return Bar(ts=ts, open=open_, high=high, low=low, close=close, volume=volume)


def _has_row_shape(row: Any) -> bool:
    return isinstance(row, list) and len(row) == 6


def _number(value: Any, field: str) -> float:
    # The API sends JSON numbers; numeric strings are accepted too in case it ever quotes them.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{field} is {_snippet(repr(value))}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{field} is {_snippet(repr(value))}, not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{field} is {value!r}, not a finite number")
    return number


def _ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == ensure_utc(moment) else floored + timedelta(hours=1)


def _iso(moment: datetime) -> str:
    return ensure_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
