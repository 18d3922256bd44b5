"""CSV import of prices and news: formats, rejected rows with their lines, idempotence.

Synthetic files are written by each test; the tests at the end read the real exports in
/work/shared/data/peer when that folder is present.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from btcmlops.db.models import Article, PriceBar
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.csv_news import headline_from, import_news_csv, parse_news_csv
from btcmlops.ingest.csv_prices import import_price_csv, parse_price_csv

PEER = Path("/work/shared/data/peer")
CDD_HEADER = "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume"
START = datetime(2021, 7, 29, 20, tzinfo=UTC)


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def hour(i: int) -> datetime:
    return START + timedelta(hours=i)


def ohlcv(i: int) -> str:
    base = 40_000 + 10 * i
    return f"{base},{base + 5},{base - 5},{base + 2},{1.5 + i}"


def cdd_row(i: int, unix: str | None = None, date: str | None = None) -> str:
    moment = hour(i)
    unix = str(int(moment.timestamp())) if unix is None else unix
    date = moment.strftime("%Y-%m-%d %H:%M:%S") if date is None else date
    return f"{unix},{date},BTCUSD,{ohlcv(i)}"


def count(store, model) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# ------------------------------------------------------------------------ price formats


def test_a_newest_first_export_reads_every_bar_with_its_line(tmp_path):
    path = write(tmp_path, "btc.csv", [CDD_HEADER] + [cdd_row(i) for i in reversed(range(4))])
    parsed = parse_price_csv(path)
    assert parsed.format == "cryptodatadownload" and parsed.order == "newest first"
    assert [bar.ts for bar in parsed.bars] == [hour(i) for i in (3, 2, 1, 0)]
    assert parsed.lines == [2, 3, 4, 5]
    assert parsed.bars[-1].open == 40_000 and parsed.bars[-1].close == 40_002
    assert parsed.rejections == [] and parsed.spacing == timedelta(hours=1)


def test_an_oldest_first_export_gives_the_same_bars(tmp_path):
    newest = write(tmp_path, "a.csv", [CDD_HEADER] + [cdd_row(i) for i in reversed(range(4))])
    oldest = write(tmp_path, "b.csv", [CDD_HEADER] + [cdd_row(i) for i in range(4)])
    parsed = parse_price_csv(oldest)
    assert parsed.order == "oldest first"
    assert sorted(parsed.bars, key=lambda b: b.ts) == sorted(
        parse_price_csv(newest).bars, key=lambda b: b.ts
    )


def test_a_banner_line_before_the_header_is_skipped_and_lines_stay_physical(tmp_path):
    banner = "Created on 01-01-2022,https://example.org/exports"
    path = write(tmp_path, "b.csv", [banner, CDD_HEADER, cdd_row(1), cdd_row(0)])
    parsed = parse_price_csv(path)
    assert parsed.has_banner and parsed.header_line == 2
    assert parsed.lines == [3, 4] and [b.ts for b in parsed.bars] == [hour(1), hour(0)]


@pytest.mark.parametrize(
    "written",
    [
        "30-07-21 0:00",  # day-first spreadsheet form
        "2021-07-30 00:00:00",
        "2021-07-30 00:00",
        "2021-07-30T00:00:00Z",
        "2021-07-30T00:00:00.000Z",
        "2021-07-30T02:00:00+02:00",
        "2021-07-29T20:00:00-04:00",
        "2021-07-30 12-AM",  # older CryptoDataDownload hourly form
        "2021-07-30",
        "2021-W30-5",  # an ISO week date: only the per-value fallback reads it
    ],
)
def test_each_date_form_reads_as_the_same_utc_hour(tmp_path, written):
    header = "Date,Symbol,Open,High,Low,Close,Volume"
    path = write(tmp_path, "d.csv", [header, f"{written},BTCUSD,{ohlcv(0)}"])
    parsed = parse_price_csv(path)
    assert parsed.rejections == []
    assert [bar.ts for bar in parsed.bars] == [datetime(2021, 7, 30, tzinfo=UTC)]


def test_a_month_first_date_column_is_not_read_day_first(tmp_path):
    # 07-03-21 alone would be 7 March day-first; the column's other dates prove it month-first.
    header = "Date,Symbol,Open,High,Low,Close,Volume"
    dates = ["07-03-21 10:00", "07-03-21 11:00", "07-13-21 10:00"]
    path = write(tmp_path, "m.csv", [header] + [f"{d},BTCUSD,{ohlcv(0)}" for d in dates])
    parsed = parse_price_csv(path)
    assert [b.ts.date().isoformat() for b in parsed.bars] == ["2021-07-03"] * 2 + ["2021-07-13"]


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
def test_unix_time_in_seconds_or_milliseconds_without_a_date_column(tmp_path, scale):
    rows = [f"{int(hour(i).timestamp()) * scale},{ohlcv(i)}" for i in range(3)]
    path = write(tmp_path, "u.csv", ["unix,open,high,low,close,volume", *rows])
    assert [bar.ts for bar in parse_price_csv(path).bars] == [hour(i) for i in range(3)]


def test_a_timestamp_in_scientific_notation_defers_to_the_date_column(tmp_path):
    mangled = f"{hour(0).timestamp() * 1000:.5E}"  # what a spreadsheet writes: 1.6276E+12
    assert "E+" in mangled
    path = write(tmp_path, "s.csv", [CDD_HEADER, cdd_row(0, unix=mangled), cdd_row(1)])
    parsed = parse_price_csv(path)
    assert parsed.rejections == []
    assert [bar.ts for bar in parsed.bars] == [hour(0), hour(1)]


def test_a_scientific_timestamp_without_a_date_is_rejected_not_guessed(tmp_path):
    rows = [
        f"{hour(0).timestamp() * 1000:.5E},{ohlcv(0)}",
        f"{int(hour(1).timestamp())},{ohlcv(1)}",
    ]
    path = write(tmp_path, "s.csv", ["Unix Timestamp,Open,High,Low,Close,Volume", *rows])
    parsed = parse_price_csv(path)
    assert [r.line for r in parsed.rejections] == [2]
    assert "not an exact integer" in parsed.rejections[0].reason
    assert [bar.ts for bar in parsed.bars] == [hour(1)]


def test_timestamp_and_date_that_disagree_are_rejected(tmp_path):
    exact_but_other_hour = str(int(hour(5).timestamp()))
    far_off_scientific = f"{hour(400).timestamp() * 1000:.5E}"
    rows = [cdd_row(0), cdd_row(1, unix=exact_but_other_hour), cdd_row(2, unix=far_off_scientific)]
    parsed = parse_price_csv(write(tmp_path, "x.csv", [CDD_HEADER, *rows]))
    assert [(r.line, r.reason.split(" (")[0]) for r in parsed.rejections] == [
        (3, f"Unix Timestamp '{exact_but_other_hour}'"),
        (4, f"Unix Timestamp '{far_off_scientific}'"),
    ]
    assert "disagrees with Date" in parsed.rejections[0].reason
    assert "does not match Date" in parsed.rejections[1].reason


def test_header_variants_are_case_insensitive_and_use_the_base_asset_volume(tmp_path):
    header = "unix,date,symbol,open,high,low,close,Volume USD,Volume BTC,tradecount"
    stamp = f"{int(hour(0).timestamp()) * 1000},{hour(0):%Y-%m-%d %H:%M:%S}"
    row = f"{stamp},BTC/USD,1,2,0.5,1.5,9000,7,3"
    parsed = parse_price_csv(write(tmp_path, "v.csv", [header, row]))
    assert parsed.columns["volume"] == "Volume BTC"
    assert parsed.symbols == ("BTCUSD",)
    assert parsed.bars[0].volume == 7


def test_without_a_symbol_the_first_volume_column_is_the_base_volume(tmp_path):
    header = "date,open,high,low,close,Volume BTC,Volume USD"
    parsed = parse_price_csv(
        write(tmp_path, "v.csv", [header, "2021-07-30 00:00:00,1,2,0.5,1.5,7,9"])
    )
    assert parsed.columns["volume"] == "Volume BTC" and parsed.bars[0].volume == 7


@pytest.mark.parametrize(
    "stamp",
    [
        lambda i: hour(i).strftime("%Y-%m-%dT%H:%M:%SZ"),
        lambda i: str(int(hour(i).timestamp())),
        lambda i: str(int(hour(i).timestamp()) * 1000),
    ],
    ids=["iso", "unix-seconds", "unix-milliseconds"],
)
def test_the_plain_format(tmp_path, stamp):
    rows = [f"{stamp(i)},{ohlcv(i)}" for i in range(3)]
    parsed = parse_price_csv(
        write(tmp_path, "p.csv", ["timestamp,open,high,low,close,volume", *rows])
    )
    assert parsed.format == "plain"
    assert [bar.ts for bar in parsed.bars] == [hour(i) for i in range(3)]
    assert parsed.bars[2].volume == 3.5


# ------------------------------------------------------------------------- rejected rows


def test_bad_rows_are_rejected_with_their_line_and_reason_and_the_rest_import(tmp_path):
    lines = [
        CDD_HEADER,  # 1
        cdd_row(0),  # 2 good
        f"{int(hour(1).timestamp())},yesterday,BTCUSD,{ohlcv(1)}",  # 3 exact unix, bad date
        f",someday,BTCUSD,{ohlcv(2)}",  # 4 unreadable date
        cdd_row(3).replace(",40030,", ",-40030,", 1),  # 5 negative open
        ",2021-07-30 00:00:00,BTCUSD,0,10,0,5,1",  # 6 zero prices
        ",2021-07-30 01:00:00,BTCUSD,100,90,110,100,1",  # 7 High < Low
        ",2021-07-30 02:00:00,BTCUSD,100,110,90,NaN,1",  # 8 NaN
        ",2021-07-30 03:00:00,BTCUSD,100,110,90,,1",  # 9 empty
        ",2021-07-30 04:00:00,BTCUSD,100,110,90,100",  # 10 a field short
        "",  # 11 blank: not a row
        ",2021-07-30 05:30:00,BTCUSD,100,110,90,100,1",  # 12 not on the hour
        ",2021-07-30 06:00:00,BTCUSD,100,110,90,abc,1",  # 13 not a number
        ",2021-07-30 07:00:00,BTCUSD,100,110,90,100,-1",  # 14 negative volume
        ",2021-07-30 08:00:00,BTCUSD,120,110,90,100,1",  # 15 Open above High
        ",2021-07-30 09:00:00,BTCUSD,100,110,90,100,1",  # 16 good
    ]
    parsed = parse_price_csv(write(tmp_path, "bad.csv", lines))
    reasons = {r.line: r.reason for r in parsed.rejections}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15]
    assert reasons[3].startswith("Date 'yesterday' is not a date")
    assert "'someday' is not a date" in reasons[4]
    assert reasons[5] == "a price is zero or negative: Open -40030"
    assert reasons[6] == "a price is zero or negative: Open 0, Low 0"
    assert reasons[7] == "High 90 is below Low 110"
    assert reasons[8] == "Close is NaN"
    assert reasons[9] == "Close is empty"
    assert reasons[10] == "expected 8 fields as in the header, found 7"
    assert reasons[12] == "2021-07-30T05:30:00Z is not on the hour"
    assert reasons[13] == "Close 'abc' is not a number"
    assert reasons[14] == "Volume -1 is negative"
    assert reasons[15] == "Open 120 lies outside Low 90 .. High 110"
    assert parsed.lines == [2, 16] and parsed.rows == 14
    assert all(bar.problem() is None for bar in parsed.bars)


def test_a_repeated_hour_keeps_its_first_row_and_reports_the_rest(tmp_path, store, clock):
    repeat = cdd_row(0).replace(",40000,", ",40001,", 1)
    path = write(tmp_path, "r.csv", [CDD_HEADER, cdd_row(0), cdd_row(1), repeat])
    parsed = parse_price_csv(path)
    assert parsed.lines == [2, 3] and parsed.bars[0].open == 40_000
    assert [(r.line, r.reason) for r in parsed.repeats] == [
        (4, "repeats the hour 2021-07-29T20:00:00Z of line 2")
    ]
    summary = import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert (summary.read, summary.inserted, summary.skipped, summary.repeated) == (3, 2, 1, 1)
    assert "1 repeated in the file" in summary.line()


def test_an_import_reports_rejections_by_file_line_and_its_counts_add_up(tmp_path, store, clock):
    lines = [CDD_HEADER, cdd_row(0), ",2021-07-29 21:00:00,BTCUSD,0,10,0,5,1", cdd_row(2)]
    summary = import_price_csv(store, write(tmp_path, "c.csv", lines), clock=clock, symbol="BTCUSD")
    assert [r.line for r in summary.rejections] == [3]
    assert summary.read == summary.inserted + summary.skipped + summary.rejected == 3
    assert summary.line() == (
        "rows read 3, inserted 2, skipped 0 (0 already stored, 0 repeated in the file), rejected 1"
    )
    assert summary.as_dict()["rejections"] == [
        {"line": 3, "reason": "a price is zero or negative: Open 0, Low 0"}
    ]


# --------------------------------------------------------------------- files refused whole


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"Date,Open,High,Close\n2021-07-30 00:00:00,1,2,1\n", "missing low, volume"),
        (b"id,name\n1,x\n", "found columns: 'id', 'name'"),
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b'{"bars": [1, 2, 3]}\n', "not a price CSV"),
        (b"\x00\x01\x02binary\x00", "binary file"),
        (b"PK\x03\x04rest-of-a-workbook", "Excel workbook"),
        (b"Date,Open\n\xff\xfe,1\n", "not UTF-8"),
    ],
    ids=["missing-columns", "other-columns", "empty", "blank", "json", "binary", "xlsx", "latin"],
)
def test_a_file_of_another_format_fails_before_anything_is_written(
    tmp_path, store, clock, content, expected
):
    path = tmp_path / "wrong.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=expected):
        import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert count(store, PriceBar) == 0


def test_a_missing_columns_message_names_what_is_missing_and_what_was_found(tmp_path):
    path = write(tmp_path, "m.csv", ["Date,Open,High,Close", "2021-07-30 00:00:00,1,2,1"])
    with pytest.raises(InvalidInputError) as error:
        parse_price_csv(path)
    message = str(error.value)
    assert "missing low, volume" in message and "'Date', 'Open', 'High', 'Close'" in message


def test_a_file_of_daily_bars_is_refused_as_not_hourly(tmp_path, store, clock):
    days = [START + timedelta(days=i) for i in range(5)]
    rows = [f"{d:%Y-%m-%d %H:%M:%S},BTCUSD,{ohlcv(i)}" for i, d in enumerate(days)]
    path = write(tmp_path, "day.csv", ["Date,Symbol,Open,High,Low,Close,Volume", *rows])
    assert parse_price_csv(path).spacing == timedelta(days=1)
    with pytest.raises(InvalidInputError, match="1 day apart, not hourly"):
        import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert count(store, PriceBar) == 0


def test_a_file_of_another_symbol_is_refused(tmp_path, store, clock):
    rows = [cdd_row(i).replace("BTCUSD", "ETH/USD") for i in range(3)]
    path = write(tmp_path, "eth.csv", [CDD_HEADER, *rows])
    with pytest.raises(InvalidInputError, match="holds bars of ETHUSD, not BTCUSD"):
        import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert count(store, PriceBar) == 0


# ------------------------------------------------------------------------ idempotent store


def test_importing_a_file_twice_inserts_nothing_the_second_time(tmp_path, store, clock):
    path = write(tmp_path, "btc.csv", [CDD_HEADER] + [cdd_row(i) for i in reversed(range(24))])
    first = import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    second = import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert (first.inserted, first.skipped) == (24, 0)
    assert (second.inserted, second.skipped, second.repeated) == (0, 24, 0)
    assert count(store, PriceBar) == 24
    with store.session() as session:
        stored = session.scalar(select(PriceBar).where(PriceBar.ts == hour(5)))
    assert (stored.symbol, stored.source, stored.close) == ("BTCUSD", "csv:btc", 40_052)


def test_an_overlapping_file_merges_without_changing_stored_bars(tmp_path, store, clock):
    early = write(tmp_path, "early.csv", [CDD_HEADER] + [cdd_row(i) for i in range(20)])
    rows = [f"{hour(i):%Y-%m-%dT%H:%M:%SZ},1,2,0.5,1.5,1" for i in range(15, 30)]
    late = write(tmp_path, "late.csv", ["timestamp,open,high,low,close,volume", *rows])
    import_price_csv(store, early, clock=clock, symbol="BTCUSD")
    summary = import_price_csv(store, late, clock=clock, symbol="BTCUSD")
    assert (summary.inserted, summary.skipped) == (10, 5)
    assert count(store, PriceBar) == 30
    with store.session() as session:
        kept = session.scalar(select(PriceBar).where(PriceBar.ts == hour(16)))
    assert kept.open == 40_160 and kept.source == "csv:early"


def test_progress_follows_the_bars_written(tmp_path, store, clock):
    path = write(tmp_path, "p.csv", [CDD_HEADER] + [cdd_row(i) for i in range(7)])
    calls: list[tuple[int, int]] = []
    import_price_csv(store, path, clock=clock, symbol="BTCUSD", progress=lambda *a: calls.append(a))
    assert calls[0] == (0, 7) and calls[-1] == (7, 7)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


# ----------------------------------------------------------------------------------- news


def news_file(tmp_path: Path, rows: list[list[str]], header=("Date", "Text")) -> Path:
    path = tmp_path / "wire_news.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([list(header), *rows])
    return path


def test_news_with_mixed_dates_and_multi_line_bodies(tmp_path):
    long_body = "Bitcoin climbed on Monday as traders returned.\nMore detail follows here.\n\nEnd."
    path = news_file(
        tmp_path,
        [
            ["2021-05-03", long_body],  # line 2, spans lines 2-5
            ["2021-06-22T14:06:07.000Z", "Miners moved coins to exchanges."],  # line 6
            ["2021-06-22T10:00:00-04:00", "Ether lagged. " + "word " * 60],  # line 7
            ["2021-06-23T08:30:00", "A short one"],  # line 8
        ],
    )
    parsed = parse_news_csv(path)
    assert parsed.rejections == [] and parsed.lines == [2, 6, 7, 8]
    published = [item.published_at for item in parsed.items]
    assert published == [
        datetime(2021, 5, 3, 23, 59, 59, tzinfo=UTC),  # date only: the day's last second
        datetime(2021, 6, 22, 14, 6, 7, tzinfo=UTC),
        datetime(2021, 6, 22, 14, 0, tzinfo=UTC),
        datetime(2021, 6, 23, 8, 30, tzinfo=UTC),
    ]
    first = parsed.items[0]
    assert first.title == "Bitcoin climbed on Monday as traders returned."
    assert first.body == long_body and first.url is None and first.source == "wire_news"
    assert parsed.date_only == 1


def test_news_columns_title_url_and_source_are_used_when_present(tmp_path):
    header = ("published_at", "Title", "Body", "Link", "Source")
    row = ["2021-06-22T14:06:07Z", "Headline", "Body text", "https://example.org/a", "Wire"]
    item = parse_news_csv(news_file(tmp_path, [row], header=header)).items[0]
    assert (item.title, item.body, item.url, item.source) == (
        "Headline",
        "Body text",
        "https://example.org/a",
        "Wire",
    )


def test_bad_news_records_are_rejected_at_the_line_where_they_start(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text(
        "date,text\n"  # 1
        '2021-05-03,"first\nsecond line"\n'  # 2-3
        'not a date,"body\nspanning"\n'  # 4-5
        ",no date at all\n"  # 6
        "2021-05-04,\n"  # 7 no text
        '2021-05-05,"three","fields"\n'  # 8
        "2021-05-06,fine\n",  # 9
        encoding="utf-8",
    )
    parsed = parse_news_csv(path)
    assert [(r.line, r.reason) for r in parsed.rejections] == [
        (
            4,
            "date 'not a date' is not a date (expected ISO 8601, such as 2021-05-03 or "
            "2021-06-22T14:06:07Z)",
        ),
        (6, "date is empty"),
        (7, "the article has no text"),
        (8, "expected 2 fields as in the header, found 3"),
    ]
    assert parsed.lines == [2, 9]


def test_a_file_that_is_not_news_fails_before_writing(tmp_path, store, clock):
    path = write(tmp_path, "x.csv", ["when,words", "2021-05-03,text"])
    with pytest.raises(InvalidInputError, match="missing date and text"):
        import_news_csv(store, path, clock=clock)
    assert count(store, Article) == 0


def test_news_import_dedupes_within_the_file_and_across_imports(tmp_path, store, clock):
    rows = [
        ["2021-05-03", "Same body"],
        ["2021-05-04", "Another story"],
        ["2021-05-05", "Same body"],  # same text: the same article
    ]
    path = news_file(tmp_path, rows)
    first = import_news_csv(store, path, clock=clock)
    second = import_news_csv(store, path, clock=clock)
    assert (first.read, first.inserted, first.skipped, first.repeated) == (3, 2, 1, 1)
    assert [(r.line, r.reason) for r in first.repeats] == [(4, "repeats the article of line 2")]
    assert (second.inserted, second.skipped) == (0, 3)
    assert count(store, Article) == 2


def test_a_headline_is_derived_from_the_first_sentence_and_kept_short():
    assert headline_from("Prices fell sharply today.The rest is detail.") == (
        "Prices fell sharply today."
    )
    long = headline_from("x" * 10 + " " + "y" * 200)
    assert long == "x" * 10 + "…"
    assert len(headline_from("word " * 100)) <= 120


# ---------------------------------------------------------------------- the real exports


def peer_file(name: str) -> Path:
    path = PEER / name
    if not path.exists():
        pytest.skip(f"{path} is absent (real exports are only on the development machine)")
    return path


# SQLite only: this test stores 50,912 bars twice, too slow to repeat on every backend.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_gemini_hourly_export_imports_all_but_its_zero_price_bar(store, clock):
    path = peer_file("gemini_BTCUSD_1hr.csv")
    first = import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert (first.read, first.inserted, first.rejected) == (50_913, 50_912, 1)
    assert [r.line for r in first.rejections] == [50_914]
    assert "zero or negative" in first.rejections[0].reason
    second = import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert (second.inserted, second.skipped) == (0, 50_912)
    assert count(store, PriceBar) == 50_912


def test_the_gemini_daily_export_parses_but_is_refused_as_not_hourly(store, clock):
    path = peer_file("gemini_BTCUSD_day.csv")
    parsed = parse_price_csv(path)
    assert parsed.has_banner and parsed.header_line == 2
    assert parsed.spacing == timedelta(days=1)
    assert len(parsed.bars) + len(parsed.rejections) + len(parsed.repeats) == parsed.rows
    with pytest.raises(InvalidInputError, match="not hourly"):
        import_price_csv(store, path, clock=clock, symbol="BTCUSD")
    assert count(store, PriceBar) == 0


def test_the_news_export_imports_every_record_not_rejected(store, clock):
    path = peer_file("news_df.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        records = sum(1 for fields in csv.reader(handle) if fields) - 1  # minus the header
    summary = import_news_csv(store, path, clock=clock)
    assert summary.read == records
    assert summary.inserted == records - summary.rejected - summary.repeated
    assert count(store, Article) == summary.inserted
