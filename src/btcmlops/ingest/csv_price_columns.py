"""Which columns of a price CSV hold what: its header recognised as one of the two formats.

The format is told from the header's names (compared case-insensitively): a
CryptoDataDownload export names a Unix Timestamp and/or a Date column, the plain format a
timestamp column; both need Open, High, Low, Close and at least one volume column. With
several volume columns the base asset's is used (see :func:`base_volume_column`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from btcmlops.errors import InvalidInputError
from btcmlops.ingest.csv_common import column_texts, normalise_column, separator_hint

PriceFormat = Literal["cryptodatadownload", "plain"]

_UNIX_NAMES = ("unix timestamp", "unix")
_TIMESTAMP_NAMES = ("timestamp",)
_DATE_NAMES = ("date", "datetime")
PRICE_NAMES = ("open", "high", "low", "close")
_EXPECTED = (
    "expected a CryptoDataDownload export (Unix Timestamp,Date,Symbol,Open,High,Low,Close,"
    "Volume) or timestamp,open,high,low,close,volume"
)


@dataclass(frozen=True)
class PriceLayout:
    """The recognised format and the index of each column it uses (None when absent)."""

    format: PriceFormat
    header: list[str]
    instant: int | None  # Unix Timestamp, or the plain format's timestamp
    date: int | None
    symbol: int | None
    prices: tuple[int, int, int, int]  # open, high, low, close
    volumes: tuple[int, ...]


def normalise_symbol(symbol: str) -> str:
    """``btc/usd`` -> ``BTCUSD``: how symbols in files and arguments are compared."""
    return "".join(ch for ch in symbol.upper() if ch.isalnum())


def recognise_layout(header: list[str]) -> PriceLayout:
    """The layout of a price CSV with this header; :class:`InvalidInputError` if it is none."""
    names = [normalise_column(name) for name in header]

    def first_of(options: tuple[str, ...]) -> int | None:
        return next((names.index(option) for option in options if option in names), None)

    unix, timestamp, date = first_of(_UNIX_NAMES), first_of(_TIMESTAMP_NAMES), first_of(_DATE_NAMES)
    instant = unix if unix is not None else timestamp
    prices = [first_of((name,)) for name in PRICE_NAMES]
    volumes = tuple(i for i, n in enumerate(names) if n == "volume" or n.startswith("volume "))

    missing = [name for name, index in zip(PRICE_NAMES, prices, strict=True) if index is None]
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
    return PriceLayout(
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


def base_volume_column(layout: PriceLayout, symbol: str) -> int:
    """A plain ``Volume`` column, else the one whose currency starts ``symbol``, else the first."""
    names = [normalise_column(layout.header[i]) for i in layout.volumes]
    if "volume" in names:
        return layout.volumes[names.index("volume")]
    for index, name in zip(layout.volumes, names, strict=True):
        currency = normalise_symbol(name.removeprefix("volume "))
        if symbol and currency and symbol.startswith(currency):
            return index
    return layout.volumes[0]


def used_columns(layout: PriceLayout, volume: int) -> dict[str, str]:
    """Each role (unix, date, open, ..., volume) and the header name of the column read for it."""
    roles = {"unix": layout.instant, "date": layout.date, "symbol": layout.symbol}
    if layout.format == "plain":
        roles = {"timestamp": layout.instant}
    roles.update(zip(PRICE_NAMES, layout.prices, strict=True))
    roles["volume"] = volume
    return {role: layout.header[index] for role, index in roles.items() if index is not None}


def file_symbols(layout: PriceLayout, records: list[list[str]]) -> tuple[str, ...]:
    """The distinct values of the Symbol column, letters and digits only (none without one)."""
    if layout.symbol is None:
        return ()
    texts = (
        column_texts(records, layout.symbol).str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
    )
    return tuple(str(found) for found in pd.unique(texts) if found)
