"""Hourly OHLCV bars from CSV files: CryptoDataDownload-style exchange exports and a plain format.

The format is recognised from the header (names compared case-insensitively; an optional
banner line may come before it):

* ``cryptodatadownload``: ``Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume`` and its
  variants (``unix`` for ``Unix Timestamp``, ``Volume BTC,Volume USD``, extra columns such as
  ``tradecount`` ignored). One of the two time columns may be missing, not both.
* ``plain``: ``timestamp,open,high,low,close,volume``; the timestamp is ISO-8601 text or a
  Unix time.

A file that is neither (missing columns, binary, empty, not CSV) raises
:class:`~btcmlops.errors.InvalidInputError` before anything is written.

Timestamps are UTC (naive dates are taken as UTC, offsets converted). A Unix time below 1e11
is seconds, from 1e11 up to 1e14 milliseconds. A Unix time written as an integer is exact and
authoritative: a Date beside it must agree. One that is not (``1.6276E+12``: a spreadsheet
rounded it) is approximate, so the Date is used, after checking it lies within the precision
the written digits claim.

Volume: with several volume columns the base asset's is used (``Volume BTC`` for BTC/USD):
the column whose currency starts the symbol, else the first volume column, which is the base
volume in CryptoDataDownload exports. A column named plain ``Volume`` always wins.

Rows: a row with a wrong field count, an unreadable or contradictory timestamp, a time not on
the hour, an empty, NaN or non-numeric value, a zero or negative price, a negative volume,
High below Low, or Open/Close outside High-Low is rejected with its line and reason; the rest
import. A repeated hour keeps its first row in the file; the repeats are skipped and listed.

Non-hourly files: btcmlops is an hourly system, so :func:`import_price_csv` refuses a file
whose bars are not typically (most often) one hour apart, daily or minute bars alike,
instead of storing them as if hourly. :func:`parse_price_csv` still reads such a file and
reports its spacing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from btcmlops.clock import HOUR, Clock
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.csv_common import (
    CsvImportSummary,
    Progress,
    RowVerdicts,
    column_texts,
    find_header,
    iso,
    micros_to_datetimes,
    normalise_column,
    number_problem,
    parse_instants,
    parse_numbers,
    plural,
    read_records,
    separator_hint,
    split_by_width,
    start_summary,
    store_numbered,
)
from btcmlops.ingest.sources import Bar, RejectedRow
from btcmlops.ingest.storage import store_bars

PriceFormat = Literal["cryptodatadownload", "plain"]
BarOrder = Literal["oldest first", "newest first", "unordered", "too few bars to tell"]

_UNIX_NAMES = ("unix timestamp", "unix")
_TIMESTAMP_NAMES = ("timestamp",)
_DATE_NAMES = ("date", "datetime")
_PRICE_NAMES = ("open", "high", "low", "close")
_EXPECTED = (
    "expected a CryptoDataDownload export (Unix Timestamp,Date,Symbol,Open,High,Low,Close,"
    "Volume) or timestamp,open,high,low,close,volume"
)
_SECONDS_BELOW = 1e11  # 1e11 s is the year 5138; 1e11 ms is March 1973
_MILLISECONDS_BELOW = 1e14
_MICROS_PER_HOUR = 3_600_000_000
_EXACT_INTEGER = r"[+-]?\d+(?:\.0*)?"
_DIGITS = r"^[+-]?\d*(?:\.(\d*))?(?:[eE]([+-]?\d+))?$"
_WRITE_CHUNK = 5_000  # bars per store_bars call (one transaction and one progress step each)


@dataclass(frozen=True)
class _Layout:
    format: PriceFormat
    header: list[str]
    instant: int | None  # Unix Timestamp, or the plain format's timestamp
    date: int | None
    symbol: int | None
    prices: tuple[int, int, int, int]  # open, high, low, close
    volumes: tuple[int, ...]


@dataclass(frozen=True)
class ParsedPrices:
    """A price CSV read and checked, not stored.

    ``bars[i]`` comes from line ``lines[i]``; bars keep the file's order, one per hour (the
    first row of a repeated hour). ``rejections`` and ``repeats`` give lines and reasons.
    ``symbols`` are the distinct values of the Symbol column, letters and digits only
    (``BTC/USD`` -> ``BTCUSD``); ``spacing`` is the most common gap between the times read.
    """

    path: Path
    format: PriceFormat
    header_line: int
    has_banner: bool
    columns: dict[str, str]
    rows: int
    bars: list[Bar]
    lines: list[int]
    rejections: list[RejectedRow]
    repeats: list[RejectedRow]
    symbols: tuple[str, ...]
    spacing: timedelta | None
    order: BarOrder

    def between(self, start: datetime, end: datetime) -> ParsedPrices:
        """The same file's bars with ``start <= ts < end`` only (the rejections are kept)."""
        kept = [i for i, bar in enumerate(self.bars) if start <= bar.ts < end]
        return replace(self, bars=[self.bars[i] for i in kept], lines=[self.lines[i] for i in kept])

    def span(self) -> tuple[datetime, datetime] | None:
        """The first and the last bar's hour, or ``None`` when no bar was sound."""
        if not self.bars:
            return None
        hours = [bar.ts for bar in self.bars]
        return min(hours), max(hours)

    def describe(self) -> str:
        """One line about what was recognised, e.g. for the CLI before the summary."""
        name = "CryptoDataDownload export" if self.format == "cryptodatadownload" else "plain"
        where = f"header on line {self.header_line}" + (
            " after a banner line" if self.has_banner else ""
        )
        spacing = "" if self.spacing is None else f", {_duration(self.spacing)} apart"
        return (
            f"{name} format ({where}), {plural(self.rows, 'row')}, {self.order}{spacing}, "
            f"volume from {self.columns['volume']!r}"
        )


def normalise_symbol(symbol: str) -> str:
    """``btc/usd`` -> ``BTCUSD``: how symbols in files and arguments are compared."""
    return "".join(ch for ch in symbol.upper() if ch.isalnum())


def parse_price_csv(path: Path | str, *, symbol: str | None = None) -> ParsedPrices:
    """Read a price CSV into sound hourly bars with their lines, and the rejected rows.

    Parameters
    ----------
    path:
        The CSV file.
    symbol:
        The market, used to pick the base-asset volume column when the file has no Symbol
        column (otherwise the file's own symbol is used).

    Raises
    ------
    InvalidInputError
        When the file is not one of the recognised formats.
    """
    table = read_records(path)
    header_index, layout = find_header(table, _recognise)
    records, lines, width_rejections = split_by_width(table, header_index + 1, len(layout.header))
    symbols = _symbols(layout, records)
    hint = symbols[0] if symbols else normalise_symbol(symbol or "")
    volume = _base_volume(layout, hint)

    verdicts = RowVerdicts(len(records))
    micros = _resolve_times(layout, records, verdicts)
    timed = ~verdicts.rejected
    verdicts.reject(
        timed & (micros % _MICROS_PER_HOUR != 0),
        lambda row: f"{iso(micros[row])} is not on the hour",
    )
    values = _check_values(layout, volume, records, verdicts)

    accepted = np.flatnonzero(~verdicts.rejected)
    kept, repeats = _first_of_each_hour(accepted, micros, lines)
    line_numbers = np.asarray(lines, dtype=np.int64)
    times = micros_to_datetimes(micros[kept])
    open_, high, low, close, vol = (column[kept].tolist() for column in values)
    bars = [Bar(*fields) for fields in zip(times, open_, high, low, close, vol, strict=True)]
    rejections = sorted(width_rejections + verdicts.rejections(lines), key=lambda r: r.line)
    return ParsedPrices(
        path=table.path,
        format=layout.format,
        header_line=table.lines[header_index],
        has_banner=header_index > 0,
        columns=_used_columns(layout, volume),
        rows=len(table.records) - header_index - 1,
        bars=bars,
        lines=line_numbers[kept].tolist(),
        rejections=rejections,
        repeats=repeats,
        symbols=symbols,
        spacing=_typical_spacing(micros[timed]),
        order=_order(micros[kept]),
    )


def import_price_csv(
    store: Store,
    path: Path | str,
    *,
    clock: Clock,
    symbol: str,
    source: str | None = None,
    progress: Progress | None = None,
) -> CsvImportSummary:
    """Import a price CSV into the store as ``symbol``'s hourly bars; idempotent.

    The whole file is parsed and checked first (:func:`read_importable_prices`), so a file
    of another format, symbol or bar spacing is refused before anything is written. Bars
    already stored are skipped, never overwritten. ``source`` defaults to
    ``csv:<file name stem>``. ``progress(done, total)`` follows the bars written.
    """
    parsed = read_importable_prices(path, symbol=symbol)
    return store_parsed_prices(
        store, parsed, clock=clock, symbol=symbol, source=source, progress=progress
    )


def read_importable_prices(path: Path | str, *, symbol: str) -> ParsedPrices:
    """Parse a price CSV and make the checks an import makes before it writes anything.

    Raises :class:`InvalidInputError` for an invalid symbol, a file that is not a price CSV,
    holds bars of another symbol (by its Symbol column), or bars that are not hourly.
    """
    if not normalise_symbol(symbol) or len(symbol) > 16:
        raise InvalidInputError(
            f"invalid symbol {symbol!r}: expected e.g. BTCUSD (at most 16 characters)"
        )
    parsed = parse_price_csv(path, symbol=symbol)
    foreign = [found for found in parsed.symbols if found != normalise_symbol(symbol)]
    if foreign:
        raise InvalidInputError(
            f"{parsed.path} holds bars of {', '.join(foreign)}, not {symbol}; nothing was "
            "imported (pass that symbol to import them under it)"
        )
    if parsed.spacing is not None and parsed.spacing != HOUR:
        raise InvalidInputError(
            f"{parsed.path} holds bars {_duration(parsed.spacing)} apart, not hourly bars; "
            "btcmlops stores hourly bars only, so nothing was imported (use an hourly export)"
        )
    return parsed


def store_parsed_prices(
    store: Store,
    parsed: ParsedPrices,
    *,
    clock: Clock,
    symbol: str,
    source: str | None = None,
    progress: Progress | None = None,
) -> CsvImportSummary:
    """Store the sound bars of a checked :class:`ParsedPrices` (see :func:`import_price_csv`)."""
    summary = start_summary(
        parsed.path, parsed.describe(), parsed.rows, parsed.rejections, parsed.repeats
    )
    source = (source or f"csv:{parsed.path.stem}")[:32]
    store_numbered(
        parsed.bars,
        parsed.lines,
        lambda chunk: store_bars(store, chunk, symbol=symbol, source=source, clock=clock),
        summary,
        chunk_size=_WRITE_CHUNK,
        progress=progress,
    )
    return summary


# ------------------------------------------------------------------------------ the header


def _recognise(header: list[str]) -> _Layout:
    names = [normalise_column(name) for name in header]

    def first_of(options: tuple[str, ...]) -> int | None:
        return next((names.index(option) for option in options if option in names), None)

    unix, timestamp, date = first_of(_UNIX_NAMES), first_of(_TIMESTAMP_NAMES), first_of(_DATE_NAMES)
    instant = unix if unix is not None else timestamp
    prices = [first_of((name,)) for name in _PRICE_NAMES]
    volumes = tuple(i for i, n in enumerate(names) if n == "volume" or n.startswith("volume "))

    missing = [name for name, index in zip(_PRICE_NAMES, prices, strict=True) if index is None]
    if not volumes:
        missing.append("volume")
    if instant is None and date is None:
        missing.insert(0, "a time column (unix timestamp, date or timestamp)")
    if missing:
        raise InvalidInputError(
            f"not a price CSV: missing {', '.join(missing)} (found columns: {_shown(header)})"
            f"{separator_hint(header)}; {_EXPECTED}"
        )
    used = {names[i] for i in (instant, date, *prices, *volumes) if i is not None}
    twice = sorted(name for name in used if names.count(name) > 1)
    if twice:
        raise InvalidInputError(f"column {twice[0]!r} appears more than once in the header")
    return _Layout(
        format="plain" if unix is None and date is None else "cryptodatadownload",
        header=list(header),
        instant=instant,
        date=date,
        symbol=first_of(("symbol",)),
        prices=tuple(prices),  # type: ignore[arg-type]  # all present, checked above
        volumes=volumes,
    )


def _shown(header: list[str]) -> str:
    names = [repr(name[:40]) for name in header[:12]]
    return ", ".join(names) + (", ..." if len(header) > 12 else "")


def _base_volume(layout: _Layout, symbol: str) -> int:
    names = [normalise_column(layout.header[i]) for i in layout.volumes]
    if "volume" in names:
        return layout.volumes[names.index("volume")]
    for index, name in zip(layout.volumes, names, strict=True):
        currency = normalise_symbol(name.removeprefix("volume "))
        if symbol and currency and symbol.startswith(currency):
            return index
    return layout.volumes[0]


def _used_columns(layout: _Layout, volume: int) -> dict[str, str]:
    roles = {"unix": layout.instant, "date": layout.date, "symbol": layout.symbol}
    if layout.format == "plain":
        roles = {"timestamp": layout.instant}
    roles.update(zip(_PRICE_NAMES, layout.prices, strict=True))
    roles["volume"] = volume
    return {role: layout.header[index] for role, index in roles.items() if index is not None}


def _symbols(layout: _Layout, records: list[list[str]]) -> tuple[str, ...]:
    if layout.symbol is None:
        return ()
    texts = (
        column_texts(records, layout.symbol).str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
    )
    return tuple(str(found) for found in pd.unique(texts) if found)


# ----------------------------------------------------------------------------------- times


def _resolve_times(layout: _Layout, records: list[list[str]], verdicts: RowVerdicts) -> np.ndarray:
    """Each row's UTC start in microseconds; rows without a trustworthy time are rejected."""
    count = len(records)
    date_name = layout.header[layout.date] if layout.date is not None else "Date"
    if layout.date is not None:
        date_text = column_texts(records, layout.date)
        date_us, date_ok = parse_instants(date_text)
    else:
        date_text = pd.Series([""] * count, dtype="str")
        date_us, date_ok = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool)
    date_given = date_text.to_numpy(dtype=object) != ""

    def unreadable_date(row: int) -> str:
        return (
            f"{date_name} {date_text.iat[row]!r} is not a date (expected forms such as "
            "2021-07-30 00:00:00, 30-07-21 0:00 or ISO 8601)"
        )

    if layout.instant is None:
        verdicts.reject(~date_given, lambda row: f"{date_name} is empty")
        verdicts.reject(~date_ok, unreadable_date)
        return date_us

    name = layout.header[layout.instant]
    text = column_texts(records, layout.instant)
    given = text.to_numpy(dtype=object) != ""
    number = parse_numbers(text)
    is_number = ~np.isnan(number)
    in_range = is_number & (number > 0) & (number < _MILLISECONDS_BELOW)
    exact = text.str.fullmatch(_EXACT_INTEGER).to_numpy(dtype=bool) & in_range
    approximate = is_number & in_range & ~exact
    unit_us = np.where(number < _SECONDS_BELOW, 1_000_000, 1_000).astype(np.int64)
    whole = np.rint(np.where(exact, number, 0.0)).astype(np.int64)
    as_text = given & ~is_number
    text_us, text_ok = parse_instants(text.where(as_text, ""))
    own_ok = exact | (as_text & text_ok)
    own_us = np.where(exact, whole * unit_us, text_us)

    def shown(row: int) -> str:
        return f"{name} {text.iat[row]!r}"

    verdicts.reject(
        is_number & ~in_range,
        lambda row: f"{shown(row)} is not a Unix time in seconds or milliseconds",
    )
    verdicts.reject(
        as_text & ~text_ok, lambda row: f"{shown(row)} is neither a Unix time nor a date"
    )
    verdicts.reject(own_ok & date_given & ~date_ok, unreadable_date)
    verdicts.reject(
        own_ok & date_ok & (own_us != date_us),
        lambda row: (
            f"{shown(row)} ({iso(own_us[row])}) disagrees with {date_name} "
            f"{date_text.iat[row]!r} ({iso(date_us[row])})"
        ),
    )
    inexact = "is not an exact integer (a spreadsheet may have rounded it)"
    if layout.date is None:
        verdicts.reject(
            approximate,
            lambda row: f"{shown(row)} {inexact} and the file has no Date column to use instead",
        )
    verdicts.reject(
        approximate & ~date_given, lambda row: f"{shown(row)} {inexact} and {date_name} is empty"
    )
    verdicts.reject(approximate & ~date_ok, unreadable_date)
    verdicts.reject(
        approximate & date_ok & _outside_precision(text, number, unit_us, date_us, approximate),
        lambda row: (
            f"{shown(row)} (about {iso(int(number[row] * unit_us[row]))}) does not match "
            f"{date_name} {date_text.iat[row]!r} ({iso(date_us[row])})"
        ),
    )
    verdicts.reject(
        ~given & ~date_given,
        lambda row: (
            f"no time: {name} and {date_name} are empty"
            if layout.date is not None
            else f"{name} is empty"
        ),
    )
    verdicts.reject(~given & ~date_ok, unreadable_date)
    return np.where(own_ok, own_us, date_us)


def _outside_precision(
    text: pd.Series,
    number: np.ndarray,
    unit_us: np.ndarray,
    date_us: np.ndarray,
    approximate: np.ndarray,
) -> np.ndarray:
    """Rows whose approximate Unix time is further from the Date than its last digit allows.

    ``1.6276E+12`` claims five significant digits: the true value lies within half a unit of
    the last one (0.5e8 ms), so a Date more than that away contradicts it.
    """
    outside = np.zeros(len(number), dtype=bool)
    rows = np.flatnonzero(approximate)
    if rows.size == 0:
        return outside
    digits = text.iloc[rows].str.extract(_DIGITS)
    decimals = digits[0].fillna("").str.len().to_numpy(dtype=float)
    exponent = pd.to_numeric(digits[1], errors="coerce").fillna(0).to_numpy(dtype=float)
    half_unit_us = 0.5 * 10.0 ** (exponent - decimals) * unit_us[rows]
    distance_us = np.abs(date_us[rows] - number[rows] * unit_us[rows])
    outside[rows] = distance_us > half_unit_us
    return outside


# ---------------------------------------------------------------------------------- values


def _check_values(
    layout: _Layout, volume: int, records: list[list[str]], verdicts: RowVerdicts
) -> list[np.ndarray]:
    """Open, High, Low, Close and Volume as floats; rows with unusable values are rejected."""
    indexes = (*layout.prices, volume)
    labels = [layout.header[i] for i in indexes]
    texts = [column_texts(records, i) for i in indexes]
    values = [parse_numbers(column) for column in texts]
    for label, column, value in zip(labels, texts, values, strict=True):
        verdicts.reject(~np.isfinite(value), _number_reason(label, column))

    def raw(position: int, row: int) -> str:
        return f"{labels[position]} {texts[position].iat[row]}"

    open_, high, low, close, vol = values
    prices = np.vstack([open_, high, low, close])
    verdicts.reject(
        (prices <= 0).any(axis=0),
        lambda row: (
            "a price is zero or negative: "
            + ", ".join(raw(p, row) for p in range(4) if prices[p, row] <= 0)
        ),
    )
    verdicts.reject(vol < 0, lambda row: f"{raw(4, row)} is negative")
    verdicts.reject(high < low, lambda row: f"{raw(1, row)} is below {raw(2, row)}")
    for position, value in ((0, open_), (3, close)):
        verdicts.reject(
            (value < low) | (value > high),
            lambda row, p=position: f"{raw(p, row)} lies outside {raw(2, row)} .. {raw(1, row)}",
        )
    return values


def _number_reason(label: str, texts: pd.Series) -> Callable[[int], str]:
    return lambda row: number_problem(label, texts.iat[row])


# ----------------------------------------------------------------------- repeats, spacing


def _first_of_each_hour(
    accepted: np.ndarray, micros: np.ndarray, lines: list[int]
) -> tuple[np.ndarray, list[RejectedRow]]:
    """The accepted rows that are the first of their hour in the file, and the repeats."""
    hours = micros[accepted]
    repeated = pd.Series(hours).duplicated(keep="first").to_numpy()
    if not repeated.any():
        return accepted, []
    distinct, first = np.unique(hours, return_index=True)
    repeats = [
        RejectedRow(
            lines[row],
            f"repeats the hour {iso(micros[row])} of line "
            f"{lines[accepted[first[np.searchsorted(distinct, micros[row])]]]}",
        )
        for row in accepted[repeated]
    ]
    return accepted[~repeated], repeats


def _typical_spacing(micros: np.ndarray) -> timedelta | None:
    """The most common gap between consecutive distinct times (the smallest on a tie).

    The mode, not the mean or median, so an hourly file with many missing hours still
    reads as hourly.
    """
    distinct = np.unique(micros)
    if distinct.size < 2:
        return None
    gaps, counts = np.unique(np.diff(distinct), return_counts=True)
    return timedelta(microseconds=int(gaps[np.argmax(counts)]))


def _order(micros: np.ndarray) -> BarOrder:
    if micros.size < 2:
        return "too few bars to tell"
    steps = np.diff(micros)
    if (steps > 0).all():
        return "oldest first"
    if (steps < 0).all():
        return "newest first"
    return "unordered"


def _duration(spacing: timedelta) -> str:
    seconds = spacing.total_seconds()
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return plural(int(seconds // size), unit)
    return f"{seconds:g} seconds"
