"""Live connectors against recorded payloads (tests/fixtures/live), never the network.

Requests go through ``httpx.MockTransport`` to a fake internet that serves the recorded
answers; waiting goes to a fake sleep that records the waits instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.db.models import Article, PriceBar
from btcmlops.errors import DependencyUnavailableError, InvalidInputError
from btcmlops.ingest.live import (
    ExchangePriceSource,
    PoliteHttpClient,
    RssNewsSource,
    SourcePayloadError,
    SourceUnavailableError,
    ingest_live,
    live_sources,
)
from btcmlops.ingest.sources import NewsSource, PriceSource

FIXTURES = Path(__file__).parent / "fixtures" / "live"
NOW = parse_utc("2024-03-05T12:20:00Z")
COINBASE = "api.exchange.coinbase.com"
COINDESK = "www.coindesk.com"
COINTELEGRAPH = "cointelegraph.com"
DECRYPT = "decrypt.co"
RSS = "application/rss+xml; charset=utf-8"

Handler = Callable[[httpx.Request], httpx.Response]


def hour(text: str) -> datetime:
    return parse_utc(f"2024-03-05T{text}:00Z")


# ------------------------------------------------------------------ the fake internet


class FakeInternet:
    """Routes each request by host to a handler and records every request."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.routes[request.url.host](request)

    def hits(self, host: str) -> list[httpx.Request]:
        return [request for request in self.requests if request.url.host == host]


class FakeTime:
    """A monotonic clock that only moves when something sleeps; records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def recorded(name: str, content_type: str, status: int = 200) -> Handler:
    body = (FIXTURES / name).read_bytes()
    return lambda request: httpx.Response(
        status, content=body, headers={"Content-Type": content_type}
    )


def candles_endpoint(name: str = "coinbase_candles.json") -> Handler:
    """Serves the recorded candles inside the requested [start, end], newest first.

    ``end`` is treated as inclusive, so the client's own filtering is exercised.
    """
    rows = json.loads((FIXTURES / name).read_text())

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/products/BTC-USD/candles"
        assert request.url.params["granularity"] == "3600"
        start = parse_utc(request.url.params["start"]).timestamp()
        end = parse_utc(request.url.params["end"]).timestamp()
        return httpx.Response(200, json=[row for row in rows if start <= row[0] <= end])

    return handle


def coindesk_feed(request: httpx.Request) -> httpx.Response:
    # CoinDesk redirects /rss/ to /rss.
    if request.url.path.endswith("/"):
        return httpx.Response(301, headers={"Location": str(request.url).rstrip("/")})
    return recorded("coindesk.xml", RSS)(request)


def in_turn(*steps: Handler) -> Handler:
    """Answers with each step in turn; the last one keeps answering."""
    remaining = list(steps)

    def handle(request: httpx.Request) -> httpx.Response:
        step = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return step(request)

    return handle


def answer(status: int, *, headers: dict[str, str] | None = None, body: str = "") -> Handler:
    return lambda request: httpx.Response(status, headers=headers, content=body.encode())


def refuse(message: str = "[Errno 111] Connection refused") -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(message, request=request)

    return handle


def working_routes() -> dict[str, Handler]:
    return {
        COINBASE: candles_endpoint(),
        COINDESK: coindesk_feed,
        COINTELEGRAPH: recorded("cointelegraph.xml", RSS),
        DECRYPT: recorded("decrypt.xml", RSS),
    }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def connect(clock: ManualClock, fake_time: FakeTime):
    """Builds a PoliteHttpClient over a FakeInternet with the given routes."""
    opened: list[httpx.Client] = []

    def build(routes: dict[str, Handler], **options) -> tuple[PoliteHttpClient, FakeInternet]:
        internet = FakeInternet(routes)
        client = httpx.Client(transport=httpx.MockTransport(internet))
        opened.append(client)
        options.setdefault("min_interval_seconds", 0.0)
        http = PoliteHttpClient(
            clock,
            client,
            sleep=fake_time.sleep,
            monotonic=fake_time.monotonic,
            jitter_seed=7,
            **options,
        )
        return http, internet

    yield build
    for client in opened:
        client.close()


# ------------------------------------------------------------------ exchange candles


def test_candles_become_closed_hourly_bars_across_two_pages(connect, clock):
    http, internet = connect({COINBASE: candles_endpoint()})
    source = ExchangePriceSource(http, clock, candles_per_request=5)
    assert isinstance(source, PriceSource)

    bars = list(source.fetch_bars(hour("03:00"), NOW))

    # 03:00..11:00 have closed by 12:20; the 12:00 candle the server sent is still moving.
    assert [bar.ts for bar in bars] == [hour(f"{h:02d}:00") for h in range(3, 12)]
    pages = [(r.url.params["start"], r.url.params["end"]) for r in internet.hits(COINBASE)]
    assert pages == [
        ("2024-03-05T03:00:00Z", "2024-03-05T08:00:00Z"),
        ("2024-03-05T08:00:00Z", "2024-03-05T12:00:00Z"),
    ]
    eleven = bars[-1]
    assert (eleven.open, eleven.high, eleven.low, eleven.close, eleven.volume) == (
        67801.05,
        68103.99,
        67702.4,
        67955.3,
        402.55871203,
    )
    assert all(bar.ts.utcoffset() == timedelta(0) for bar in bars)
    assert source.rejections == []


def test_the_current_hour_is_delivered_once_it_has_closed(connect, clock):
    http, _ = connect({COINBASE: candles_endpoint()})
    source = ExchangePriceSource(http, clock)
    clock.set(hour("13:00"))

    bars = list(source.fetch_bars(hour("11:00"), clock.now()))

    assert [bar.ts for bar in bars] == [hour("11:00"), hour("12:00")]


def test_nothing_is_requested_when_no_hour_has_closed_since_start(connect, clock):
    http, internet = connect({COINBASE: candles_endpoint()})
    source = ExchangePriceSource(http, clock)

    assert list(source.fetch_bars(hour("12:00"), NOW)) == []
    assert internet.requests == []


def test_pagination_keeps_the_minimum_interval_between_requests(connect, clock, fake_time):
    http, internet = connect({COINBASE: candles_endpoint()}, min_interval_seconds=0.5)
    source = ExchangePriceSource(http, clock, candles_per_request=3)

    bars = list(source.fetch_bars(hour("03:00"), NOW))

    assert len(bars) == 9 and len(internet.hits(COINBASE)) == 3
    assert fake_time.sleeps == [0.5, 0.5]


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [("7", 7.0), (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0)],
    ids=["seconds", "http-date"],
)
def test_http_429_waits_what_retry_after_asks_then_data_arrives(
    connect, clock, fake_time, retry_after, expected_wait
):
    rate_limited = recorded("coinbase_rate_limited.json", "application/json", status=429)

    def limited_with_header(request: httpx.Request) -> httpx.Response:
        response = rate_limited(request)
        response.headers["Retry-After"] = retry_after
        return response

    http, internet = connect({COINBASE: in_turn(limited_with_header, candles_endpoint())})
    source = ExchangePriceSource(http, clock)

    bars = list(source.fetch_bars(hour("03:00"), NOW))

    assert fake_time.sleeps == [expected_wait]
    assert len(internet.hits(COINBASE)) == 2
    assert len(bars) == 9


def test_http_429_without_retry_after_backs_off_exponentially_with_jitter(
    connect, clock, fake_time
):
    rate_limited = recorded("coinbase_rate_limited.json", "application/json", status=429)
    http, _ = connect(
        {COINBASE: in_turn(rate_limited, rate_limited, rate_limited, candles_endpoint())},
        backoff_initial_seconds=1.0,
        backoff_jitter_seconds=0.5,
    )

    bars = list(ExchangePriceSource(http, clock).fetch_bars(hour("03:00"), NOW))

    assert len(bars) == 9
    first, second, third = fake_time.sleeps
    assert 1.0 <= first <= 1.5 and 2.0 <= second <= 2.5 and 4.0 <= third <= 4.5


def test_server_errors_are_retried_then_data_arrives(connect, clock, fake_time):
    http, internet = connect(
        {
            COINBASE: in_turn(
                recorded("coinbase_error_page.html", "text/html", status=502),
                answer(503),
                candles_endpoint(),
            )
        }
    )

    bars = list(ExchangePriceSource(http, clock).fetch_bars(hour("03:00"), NOW))

    assert len(bars) == 9
    assert len(internet.hits(COINBASE)) == 3 and len(fake_time.sleeps) == 2


def test_server_errors_that_persist_fail_after_the_bounded_attempts(connect, clock):
    http, internet = connect({COINBASE: answer(500)}, attempts=3)

    with pytest.raises(SourceUnavailableError) as raised:
        list(ExchangePriceSource(http, clock).fetch_bars(hour("03:00"), NOW))

    assert str(raised.value) == (
        "coinbase candles: HTTP 500 Internal Server Error from api.exchange.coinbase.com "
        "after 3 attempts"
    )
    assert len(internet.hits(COINBASE)) == 3


def test_rate_limit_pause_longer_than_allowed_fails_at_once(connect, clock, fake_time):
    http, internet = connect(
        {COINBASE: answer(429, headers={"Retry-After": "3600"}, body='{"message":"Slow down"}')},
        max_retry_after_seconds=60,
    )

    with pytest.raises(SourceUnavailableError) as raised:
        list(ExchangePriceSource(http, clock).fetch_bars(hour("03:00"), NOW))

    assert "HTTP 429 Too Many Requests" in str(raised.value)
    assert "asks to wait 3600 s, longer than the 60 s" in str(raised.value)
    assert len(internet.hits(COINBASE)) == 1 and fake_time.sleeps == []


def test_a_refused_request_is_not_retried(connect, clock):
    http, internet = connect(
        {COINBASE: recorded("coinbase_not_found.json", "application/json", status=404)}
    )

    with pytest.raises(SourceUnavailableError, match=r"HTTP 404 Not Found from .*: NotFound"):
        list(ExchangePriceSource(http, clock).fetch_bars(hour("03:00"), NOW))
    assert len(internet.hits(COINBASE)) == 1


@pytest.mark.parametrize(
    ("fixture", "content_type", "expected"),
    [
        ("coinbase_error_page.html", "text/html; charset=UTF-8", "got text/html"),
        ("coinbase_candles_objects.json", "application/json", "none of the 2 rows"),
        ("coinbase_rate_limited.json", "application/json", "answered an error instead"),
    ],
    ids=["html-page", "objects-not-arrays", "error-object"],
)
def test_a_malformed_candles_payload_is_a_precise_payload_error(
    connect, clock, fixture, content_type, expected
):
    http, _ = connect({COINBASE: recorded(fixture, content_type)})

    with pytest.raises(SourcePayloadError) as raised:
        list(ExchangePriceSource(http, clock).fetch_bars(hour("03:00"), NOW))

    assert str(raised.value).startswith("coinbase candles: ")
    assert expected in str(raised.value)
    assert isinstance(raised.value, DependencyUnavailableError)


def test_bad_candle_rows_are_rejected_with_reasons_and_the_rest_kept(connect, clock):
    http, _ = connect({COINBASE: recorded("coinbase_candles_bad_rows.json", "application/json")})
    source = ExchangePriceSource(http, clock)

    bars = list(source.fetch_bars(hour("02:00"), hour("08:00")))

    assert [bar.ts for bar in bars] == [hour("02:00"), hour("07:00")]
    assert [rejected.line for rejected in source.rejections] == [2, 3, 4, 5]
    reasons = [rejected.reason for rejected in source.rejections]
    assert "low is 'n/a', not a number" in reasons[0]
    assert "open is None, not a number" in reasons[1]
    assert "below Low" in reasons[2]
    assert "expected [time, low, high, open, close, volume]" in reasons[3]
    assert all(reason.startswith("candle ") for reason in reasons)


# ------------------------------------------------------------------ RSS feeds


def test_feed_entries_become_articles_with_plain_text_and_utc_dates(connect, clock):
    http, _ = connect({COINTELEGRAPH: recorded("cointelegraph.xml", RSS)})
    source = RssNewsSource(http, "Cointelegraph", "https://cointelegraph.com/rss")
    assert isinstance(source, NewsSource)

    [article] = source.fetch_articles(NOW - timedelta(days=7), NOW)

    assert article.title == "Analysts warn of a sharp pullback after the Bitcoin rally"
    assert article.body == (
        "Leverage is building up in futures markets, according to invented traders quoted here."
    )
    assert (
        article.url
        == "https://cointelegraph.com/news/analysts-warn-of-sharp-pullback-after-bitcoin-rally"
    )
    assert article.source == "Cointelegraph"
    # The feed says 06:15 at UTC-5.
    assert article.published_at == hour("11:15")
    assert article.published_at.utcoffset() == timedelta(0)


def test_an_entry_without_a_date_is_reported_not_invented(connect, clock):
    http, _ = connect({COINTELEGRAPH: recorded("cointelegraph.xml", RSS)})
    source = RssNewsSource(http, "Cointelegraph", "https://cointelegraph.com/rss")

    titles = [item.title for item in source.fetch_articles(NOW - timedelta(days=7), NOW)]

    assert "Weekly recap: altcoins lag behind" not in titles
    [rejected] = source.rejections
    assert rejected.line == 2
    assert rejected.reason == (
        "entry 'Weekly recap: altcoins lag behind' has no published or updated date"
    )


def test_redirected_feed_is_followed_and_entries_outside_the_window_left_out(connect, clock):
    http, internet = connect({COINDESK: coindesk_feed})
    source = RssNewsSource(http, "CoinDesk", "https://www.coindesk.com/arc/outboundfeeds/rss/")

    articles = list(source.fetch_articles(NOW - timedelta(days=7), NOW))

    assert [a.published_at for a in articles] == [
        parse_utc("2024-03-05T11:42:17Z"),
        hour("09:05"),
    ]
    assert articles[0].body == (
        "BTC traded above $67,900 during the European morning & funding rates climbed."
    )
    assert [r.url.path for r in internet.hits(COINDESK)] == [
        "/arc/outboundfeeds/rss/",
        "/arc/outboundfeeds/rss",
    ]


def test_body_falls_back_to_full_content_and_scripts_are_not_text(connect, clock):
    http, _ = connect({DECRYPT: recorded("decrypt.xml", RSS)})
    source = RssNewsSource(http, "Decrypt", "https://decrypt.co/feed")

    first, second = source.fetch_articles(NOW - timedelta(days=7), NOW)

    assert first.title == "Bitcoin’s Rally Lifts Crypto Stocks in Pre-Market Trading"
    assert first.body.startswith("Shares of invented mining firms rose as BTC climbed. The post")
    assert "<" not in first.body
    assert second.body == "Step one Self-custody first."


def test_an_atom_entry_with_only_an_updated_date_uses_it_in_utc(connect, clock):
    http, _ = connect(
        {"news.example.org": recorded("atom_updated_only.xml", "application/atom+xml")}
    )
    source = RssNewsSource(http, "Example", "https://news.example.org/atom.xml")

    [article] = source.fetch_articles(NOW - timedelta(days=1), NOW)

    assert article.title == "Lightning capacity grows again"
    assert article.body == "Only an updated date is given."
    assert article.published_at == hour("09:00")  # 11:00 at UTC+2


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ((FIXTURES / "not_a_feed.html").read_bytes(), "text/html; charset=UTF-8"),
        (b'{"status": "error"}', "application/json"),
        (b"https://cointelegraph.com/rss", "text/plain"),
    ],
    ids=["html-page", "json", "a-url-as-text"],
)
def test_a_payload_that_is_not_a_feed_is_a_precise_payload_error(
    connect, clock, body, content_type
):
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    http, internet = connect({COINTELEGRAPH: serve})
    source = RssNewsSource(http, "Cointelegraph", "https://cointelegraph.com/rss")

    with pytest.raises(SourcePayloadError) as raised:
        list(source.fetch_articles(NOW - timedelta(days=7), NOW))

    message = str(raised.value)
    assert message.startswith(
        "Cointelegraph RSS: expected an RSS or Atom feed from cointelegraph.com"
    )
    assert content_type.split(";")[0] in message
    assert len(internet.requests) == 1  # the bytes were parsed, nothing fetched again


# ------------------------------------------------------------------ ingest_live, on every backend


def stored_bars(store) -> list[PriceBar]:
    with store.session() as session:
        return list(session.scalars(select(PriceBar).order_by(PriceBar.ts)))


def stored_articles(store) -> list[Article]:
    with store.session() as session:
        return list(session.scalars(select(Article).order_by(Article.published_at)))


def test_ingest_live_stores_bars_and_articles_and_a_rerun_adds_only_new_hours(
    store, connect, clock
):
    http, internet = connect(working_routes())
    prices, news = live_sources(http, clock)

    report = ingest_live(store, clock, prices, news, symbol="BTCUSD")

    assert report.ok and report.error_lines() == []
    assert report.prices_from == parse_utc("2024-02-27T12:00:00Z")
    by_source = {result.source: result.summary for result in report.results}
    assert by_source["coinbase"].inserted == 9
    assert (by_source["CoinDesk RSS"].inserted, by_source["Cointelegraph RSS"].inserted) == (2, 1)
    assert by_source["Cointelegraph RSS"].rejected == 1
    assert by_source["Decrypt RSS"].inserted == 2

    bars = stored_bars(store)
    assert [bar.ts for bar in bars] == [hour(f"{h:02d}:00") for h in range(3, 12)]
    first = bars[0]
    assert (first.symbol, first.source, first.open, first.close) == (
        "BTCUSD",
        "coinbase",
        66740.25,
        66902.73,
    )
    articles = stored_articles(store)
    assert [a.source for a in articles] == [
        "Decrypt",
        "CoinDesk",
        "Decrypt",
        "Cointelegraph",
        "CoinDesk",
    ]
    assert all("<" not in a.body for a in articles)
    assert articles[-1].published_at == parse_utc("2024-03-05T11:42:17Z")

    again = ingest_live(store, clock, prices, news, symbol="BTCUSD")
    assert again.ok and again.total().inserted == 0
    assert again.prices_from == hour("12:00")
    assert len(internet.hits(COINBASE)) == 1  # no closed hour to ask for the second time

    clock.set(hour("13:05"))
    later = ingest_live(store, clock, prices, news, symbol="BTCUSD")
    assert later.results[0].summary.inserted == 1 and later.total().inserted == 1
    assert stored_bars(store)[-1].ts == hour("12:00")
    assert len(stored_articles(store)) == 5


def test_total_offline_gives_one_line_per_source_and_stores_nothing(store, connect, clock):
    http, _ = connect(
        {
            COINBASE: refuse(),
            COINDESK: refuse(),
            COINTELEGRAPH: refuse("[Errno -3] Temporary failure in name resolution"),
            DECRYPT: refuse(),
        }
    )
    prices, news = live_sources(http, clock)

    report = ingest_live(store, clock, prices, news, symbol="BTCUSD")

    assert not report.ok
    assert report.error_lines() == [
        "coinbase candles: cannot connect to api.exchange.coinbase.com (connection refused) "
        "after 4 attempts",
        "CoinDesk RSS: cannot connect to www.coindesk.com (connection refused) after 4 attempts",
        "Cointelegraph RSS: cannot connect to cointelegraph.com (temporary failure in name "
        "resolution) after 4 attempts",
        "Decrypt RSS: cannot connect to decrypt.co (connection refused) after 4 attempts",
    ]
    assert stored_bars(store) == [] and stored_articles(store) == []


def test_sources_that_answer_are_stored_when_others_fail(store, connect, clock):
    routes = working_routes()
    routes[COINBASE] = refuse()
    routes[COINDESK] = answer(503)
    http, _ = connect(routes)
    prices, news = live_sources(http, clock)

    report = ingest_live(store, clock, prices, news, symbol="BTCUSD")

    assert [result.source for result in report.failures] == ["coinbase", "CoinDesk RSS"]
    assert report.error_lines()[1] == (
        "CoinDesk RSS: HTTP 503 Service Unavailable from www.coindesk.com after 4 attempts"
    )
    assert {a.source for a in stored_articles(store)} == {"Cointelegraph", "Decrypt"}
    assert len(stored_articles(store)) == 3


def test_bars_that_arrived_before_a_failure_are_kept(store, connect, clock):
    http, _ = connect({COINBASE: in_turn(candles_endpoint(), refuse())})
    prices = ExchangePriceSource(http, clock, candles_per_request=5)

    report = ingest_live(store, clock, prices, [], symbol="BTCUSD", since=hour("03:00"))

    [result] = report.results
    assert not result.ok and "cannot connect" in result.error
    assert result.summary.inserted == 5
    assert [bar.ts for bar in stored_bars(store)] == [hour(f"{h:02d}:00") for h in range(3, 8)]


def test_rejected_candles_are_counted_in_the_report(store, connect, clock):
    http, _ = connect({COINBASE: recorded("coinbase_candles_bad_rows.json", "application/json")})
    prices = ExchangePriceSource(http, clock)

    report = ingest_live(store, clock, prices, [], symbol="BTCUSD", since=hour("02:00"))

    summary = report.results[0].summary
    assert report.ok
    assert (summary.read, summary.inserted, summary.rejected) == (6, 2, 4)
    assert [r.line for r in summary.rejections] == [2, 3, 4, 5]


def test_since_after_now_is_refused(store, connect, clock):
    http, internet = connect(working_routes())
    prices, news = live_sources(http, clock)

    with pytest.raises(InvalidInputError, match="is after now"):
        ingest_live(store, clock, prices, news, symbol="BTCUSD", since=hour("13:00"))
    assert internet.requests == []
