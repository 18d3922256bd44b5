"""What the price and news CSV importers share.

Reading a file into line-numbered records, finding its header (after an optional banner
line), parsing instants and numbers a whole column at a time, collecting one reason per
rejected row, writing in chunks with progress, and the summary an import returns.

Line numbers are the file's 1-based physical lines. A quoted field may span several lines; its
record is reported at the line where it starts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from btcmlops.clock import ensure_utc
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.sources import RejectedRow
from btcmlops.ingest.storage import ImportSummary

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as an import writes, for a progress bar."""

Item = TypeVar("Item")
Layout = TypeVar("Layout")

# Formats tried on a date column, as pandas formats ("ISO8601" covers `2021-07-30`,
# `2021-07-30 00:00:00`, `2021-07-30T00:00:00Z`, fractions and offsets). Day-first and
# month-first spreadsheet forms are both listed: the one that reads most of a column wins,
# so a month-first file is never read day-first just because its days are <= 12.
DATE_FORMATS: tuple[str, ...] = (
    "ISO8601",
    "%d-%m-%y %H:%M",  # CryptoDataDownload files re-saved by a spreadsheet: 30-07-21 0:00
    "%m-%d-%y %H:%M",
    "%d-%m-%Y %H:%M",
    "%m-%d-%Y %H:%M",
    "%Y-%m-%d %I-%p",  # older CryptoDataDownload hourly exports: 2020-04-10 11-PM
)
_RANKING_SAMPLE = 512  # values per column used to rank the date formats
_MICROSECONDS = np.int64(1_000_000)
_EPOCH = pd.Timestamp(0, tz="UTC")


# --------------------------------------------------------------------------- reading a file


@dataclass(frozen=True)
class CsvRecords:
    """The non-blank records of a CSV file, each with the line it starts on."""

    path: Path
    records: list[list[str]]
    lines: list[int]


def read_records(path: Path | str) -> CsvRecords:
    """Read ``path`` as UTF-8 CSV text, refusing what is not (missing, empty, binary).

    Blank lines, and lines whose fields are all empty (what spreadsheets append), carry no
    data and are not records.
    """
    path = Path(path)
    text = _decode(path, _read_bytes(path))
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[list[str]] = []
    lines: list[int] = []
    last_line = 0
    try:
        for fields in reader:
            start, last_line = last_line + 1, reader.line_num
            if "".join(fields).strip():
                records.append(fields)
                lines.append(start)
    except csv.Error as exc:
        raise InvalidInputError(
            f"{path}: line {last_line + 1} is not valid CSV ({exc}); nothing was imported"
        ) from exc
    if not records:
        raise InvalidInputError(f"{path} has no header and no rows: it holds only blank lines")
    return CsvRecords(path, records, lines)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InvalidInputError(f"no such file: {path}")
    if not path.is_file():
        raise InvalidInputError(f"{path} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise InvalidInputError(f"{path} is empty: expected a CSV file with a header line")
    head = raw[:8192]
    if head.startswith(b"PK\x03\x04"):
        raise InvalidInputError(
            f"{path} is a ZIP archive or an Excel workbook, not CSV text: save it as CSV first"
        )
    if head.startswith(b"\x1f\x8b"):
        raise InvalidInputError(f"{path} is gzip-compressed: decompress it first")
    if b"\x00" in head:
        raise InvalidInputError(f"{path} is a binary file, not CSV text")
    return raw


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
            "save it as UTF-8 CSV"
        ) from exc


def normalise_column(name: str) -> str:
    """A header name as compared: ``Unix_Timestamp`` -> ``unix timestamp``."""
    return " ".join(name.replace("_", " ").lower().split())


def separator_hint(header: list[str]) -> str:
    """A hint for a header that was not split on commas (``;`` or tab separated files)."""
    if len(header) == 1:
        for separator, name in ((";", "semicolons"), ("\t", "tabs")):
            if separator in header[0]:
                return f" (the fields seem separated by {name}; expected commas)"
    return ""


def find_header(table: CsvRecords, recognise: Callable[[list[str]], Layout]) -> tuple[int, Layout]:
    """The index of the header record and its layout.

    The header is the first record, or the second when the first is a banner (a line such as
    ``Created on ...,https://...`` that CryptoDataDownload puts above the header).
    ``recognise`` returns the layout of a header or raises :class:`InvalidInputError`; when
    neither record is a header, the problem with the first one is raised.
    """
    problem: InvalidInputError | None = None
    for index in range(min(2, len(table.records))):
        try:
            return index, recognise(table.records[index])
        except InvalidInputError as exc:
            problem = problem or exc
    assert problem is not None
    raise InvalidInputError(f"{table.path}: {problem}; nothing was imported") from problem


def split_by_width(
    table: CsvRecords, first: int, width: int
) -> tuple[list[list[str]], list[int], list[RejectedRow]]:
    """Records from index ``first`` on with ``width`` fields, their lines, and the rest rejected."""
    records: list[list[str]] = []
    lines: list[int] = []
    rejections: list[RejectedRow] = []
    for fields, line in zip(table.records[first:], table.lines[first:], strict=True):
        if len(fields) == width:
            records.append(fields)
            lines.append(line)
        else:
            rejections.append(
                RejectedRow(line, f"expected {width} fields as in the header, found {len(fields)}")
            )
    return records, lines, rejections


def column_texts(records: list[list[str]], index: int) -> pd.Series:
    """One column of the records as stripped strings (empty string when blank)."""
    return pd.Series([fields[index] for fields in records], dtype="str").str.strip()


# ------------------------------------------------------------------------ instants, numbers


def parse_instants(texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column of date texts to UTC microseconds since the epoch, a column at a time.

    Returns ``(microseconds, readable)``; naive values are UTC, offsets are converted. The
    formats of :data:`DATE_FORMATS` are ranked by how many of a sample of the column they
    read and applied in that order to what is still unread; only values no format reads go
    through a per-value ISO-8601 parse.
    """
    values = texts.to_numpy(dtype=object)
    micros = np.zeros(len(values), dtype=np.int64)
    readable = np.zeros(len(values), dtype=bool)
    pending = texts.to_numpy(dtype=object) != ""
    for fmt in _ranked_formats(texts[pending]):
        if not pending.any():
            break
        where = np.flatnonzero(pending)
        parsed = pd.to_datetime(texts.iloc[where], format=fmt, utc=True, errors="coerce")
        ok = parsed.notna().to_numpy()
        micros[where[ok]] = _as_micros(parsed[ok])
        readable[where[ok]] = True
        pending[where[ok]] = False
    for i in np.flatnonzero(pending):
        moment = _parse_iso_one(values[i])
        if moment is not None:
            micros[i] = (moment - _EPOCH) // pd.Timedelta(microseconds=1)
            readable[i] = True
    return micros, readable


def _ranked_formats(texts: pd.Series) -> list[str]:
    if texts.empty:
        return []
    step = -(-len(texts) // _RANKING_SAMPLE)  # ceiling: at most _RANKING_SAMPLE values
    sample = texts.iloc[::step]
    hits = [
        int(pd.to_datetime(sample, format=fmt, utc=True, errors="coerce").notna().sum())
        for fmt in DATE_FORMATS
    ]
    # Stable sort: on equal hits the order of DATE_FORMATS decides (day-first before month-first).
    return [fmt for _, fmt in sorted(zip(hits, DATE_FORMATS, strict=True), key=lambda p: -p[0])]


def _as_micros(parsed: pd.Series) -> np.ndarray:
    return parsed.dt.as_unit("us").to_numpy(dtype="datetime64[us]").astype(np.int64)


def _parse_iso_one(text: str) -> datetime | None:
    cleaned = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return ensure_utc(datetime.fromisoformat(cleaned))
    except ValueError:
        return None


def micros_to_datetimes(micros: np.ndarray) -> list[datetime]:
    """Aware UTC datetimes from microseconds since the epoch."""
    return list(pd.to_datetime(micros, unit="us", utc=True).to_pydatetime())


def iso(micros: int) -> str:
    """``2021-07-30T00:00:00Z`` for a microsecond timestamp (used in rejection reasons)."""
    return pd.Timestamp(int(micros), unit="us", tz="UTC").isoformat().replace("+00:00", "Z")


def parse_numbers(texts: pd.Series) -> np.ndarray:
    """Floats of a column; NaN where a value is empty or not a number."""
    return pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def number_problem(column: str, text: str) -> str:
    """Why the text of a numeric field is not a usable number."""
    if not text:
        return f"{column} is empty"
    if text.lower() in {"nan", "-nan", "+nan"}:
        return f"{column} is NaN"
    if text.lower().lstrip("+-") in {"inf", "infinity"}:
        return f"{column} {text!r} is not a finite number"
    return f"{column} {text!r} is not a number"


# -------------------------------------------------------------------------------- verdicts


class RowVerdicts:
    """One reason per rejected row; the first check that rejects a row gives its reason."""

    def __init__(self, count: int) -> None:
        self.rejected = np.zeros(count, dtype=bool)
        self.reasons: dict[int, str] = {}

    def reject(self, mask: np.ndarray, reason: Callable[[int], str]) -> None:
        """Reject the rows of ``mask`` not rejected yet, with ``reason(row)``."""
        fresh = mask & ~self.rejected
        for row in np.flatnonzero(fresh):
            self.reasons[int(row)] = reason(int(row))
        self.rejected |= fresh

    def rejections(self, lines: Sequence[int]) -> list[RejectedRow]:
        return [RejectedRow(lines[row], reason) for row, reason in self.reasons.items()]


# ------------------------------------------------------------------------- summary, storing


@dataclass
class CsvImportSummary(ImportSummary):
    """An :class:`ImportSummary` that also tells what the file was and what repeated in it.

    ``skipped`` counts both rows already in the store and rows that repeat an hour (or an
    article) seen earlier in the same file; ``repeated`` is the second kind, listed in
    ``repeats`` with their lines. ``read = inserted + skipped + rejected`` still holds.
    """

    path: str = ""
    detected: str = ""
    repeated: int = 0
    repeats: list[RejectedRow] = field(default_factory=list)

    def line(self) -> str:
        already = self.skipped - self.repeated
        return (
            f"rows read {self.read}, inserted {self.inserted}, skipped {self.skipped} "
            f"({already} already stored, {self.repeated} repeated in the file), "
            f"rejected {self.rejected}"
        )

    def merge(self, other: ImportSummary) -> CsvImportSummary:
        super().merge(other)
        if isinstance(other, CsvImportSummary):
            self.repeated += other.repeated
            self.repeats.extend(other.repeats)
        return self

    def as_dict(self) -> dict[str, object]:
        document = super().as_dict()
        document.update(
            path=self.path,
            detected=self.detected,
            repeated=self.repeated,
            repeats=[{"line": r.line, "reason": r.reason} for r in self.repeats],
        )
        return document


def start_summary(
    path: Path, detected: str, rows: int, rejections: list[RejectedRow], repeats: list[RejectedRow]
) -> CsvImportSummary:
    """The summary of a parsed file before anything is written."""
    return CsvImportSummary(
        read=rows,
        skipped=len(repeats),
        rejected=len(rejections),
        rejections=list(rejections),
        path=str(path),
        detected=detected,
        repeated=len(repeats),
        repeats=list(repeats),
    )


def store_numbered(
    items: Sequence[Item],
    lines: Sequence[int],
    write: Callable[[Sequence[Item]], ImportSummary],
    summary: ImportSummary,
    *,
    chunk_size: int,
    progress: Progress | None = None,
) -> None:
    """Write ``items`` in chunks with ``write`` and fold each chunk's outcome into ``summary``.

    ``write`` (``store_bars`` or ``store_articles``) numbers its rejections by position in the
    chunk; they are reported here under the item's line in the file.
    """
    total = len(items)
    if progress is not None:
        progress(0, total)
    for start in range(0, total, chunk_size):
        part = write(items[start : start + chunk_size])
        summary.inserted += part.inserted
        summary.skipped += part.skipped
        for rejection in part.rejections:
            summary.reject(lines[start + rejection.line - 1], rejection.reason)
        if progress is not None:
            progress(min(start + chunk_size, total), total)
    summary.rejections.sort(key=lambda rejection: rejection.line)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
