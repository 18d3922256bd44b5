"""Each row's hour in a price CSV, from its Unix time and/or its Date, checked against each other.

Timestamps are UTC (naive dates are taken as UTC, offsets converted). A Unix time below 1e11
is seconds, from 1e11 up to 1e14 milliseconds. A Unix time written as an integer is exact and
authoritative: a Date beside it must agree. One that is not (``1.6276E+12``: a spreadsheet
rounded it) is approximate, so the Date is used, after checking it lies within the precision
the written digits claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btcmlops.ingest.csv_common import (
    RowVerdicts,
    column_texts,
    iso,
    parse_instants,
    parse_numbers,
)
from btcmlops.ingest.csv_price_columns import PriceLayout

_SECONDS_BELOW = 1e11  # 1e11 s is the year 5138; 1e11 ms is March 1973
_MILLISECONDS_BELOW = 1e14
_EXACT_INTEGER = r"[+-]?\d+(?:\.0*)?"
_DIGITS = r"^[+-]?\d*(?:\.(\d*))?(?:[eE]([+-]?\d+))?$"


def resolve_times(
    layout: PriceLayout, records: list[list[str]], verdicts: RowVerdicts
) -> np.ndarray:
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
