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
    number_problem,
    parse_numbers,
    plural,
    read_records,
    split_by_width,
    start_summary,
    store_numbered,
)
from btcmlops.ingest.csv_price_columns import (
    PriceFormat,
    PriceLayout,
    base_volume_column,
    file_symbols,
    normalise_symbol,
    recognise_layout,
    used_columns,
)
from btcmlops.ingest.csv_price_times import resolve_times
from btcmlops.ingest.sources import Bar, RejectedRow
from btcmlops.ingest.storage import store_bars

BarOrder = Literal["oldest first", "newest first", "unordered", "too few bars to tell"]

_MICROS_PER_HOUR = 3_600_000_000
_WRITE_CHUNK = 5_000  # bars per store_bars call (one transaction and one progress step each)


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
    header_index, layout = find_header(table, recognise_layout)
    records, lines, width_rejections = split_by_width(table, header_index + 1, len(layout.header))
    symbols = file_symbols(layout, records)
    hint = symbols[0] if symbols else normalise_symbol(symbol or "")
    volume = base_volume_column(layout, hint)

    verdicts = RowVerdicts(len(records))
    micros = resolve_times(layout, records, verdicts)
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
        columns=used_columns(layout, volume),
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


# ---------------------------------------------------------------------------------- values


def _check_values(
    layout: PriceLayout, volume: int, records: list[list[str]], verdicts: RowVerdicts
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
