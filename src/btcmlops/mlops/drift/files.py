"""Reading the numeric columns of a CSV or Parquet file as float arrays (Arrow readers).

Rows are kept in file order, which the drift statistics take to be time order (it matters
for the autocorrelation of the reference). Missing values become NaN.

A CSV column whose cells are mostly numbers but holds a few that are not (a stray "n/a" or
"error" in a price column) is read as numeric: those cells become missing values and are
reported with their count and the first line they stand on (:class:`StrayCells`), instead
of the whole column being dropped as text. A column is numeric while its numbers outnumber
its stray cells (:func:`is_mostly_numeric`); in-memory tables (``tables``) use the same rule.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from btcmlops.errors import InvalidInputError

PARQUET_MAGIC = b"PAR1"


# Parquet columns are decoded about this many values at a time straight into the result,
# so Arrow's buffers are reused instead of holding a second full copy of a large file.
_PARQUET_VALUES_PER_READ = 1 << 21
_PARQUET_THREADED_VALUES = 1 << 18
# Small tables of float columns are converted in one call (an Arrow tensor); larger ones
# column by column, straight into the result, without the tensor's extra copy.
_TENSOR_MAX_VALUES = 1 << 16
_FLOAT64_ID = pa.float64().id
# Parquet files up to this size are read into memory in one call and decoded from there:
# Arrow otherwise hands the reads to its I/O thread, a wait that costs more than reading a
# small file (a 24-row file of 106 columns: 1.06 against 1.23 ms, medians on 2026-12-07).
_PARQUET_IN_MEMORY_BYTES = 1 << 22


@dataclass(frozen=True)
class StrayCells:
    """Non-numeric cells of a mostly numeric column, read as missing values.

    ``unit`` says what ``first`` counts: ``line`` is a CSV file's line number (the header
    being line 1), ``row`` the 0-based index of the value in an in-memory column.
    """

    column: str
    count: int
    first: int
    first_value: str
    unit: Literal["line", "row"] = "line"


def is_mostly_numeric(numbers: int, stray: int) -> bool:
    """A column with ``numbers`` numeric cells and ``stray`` other filled cells is read as
    numeric when the numbers outnumber the rest; else it is a column of text."""
    return numbers > stray


@dataclass(frozen=True)
class NumericTable:
    """The numeric columns of one file, in file order, and the names of the others.

    A CSV file is parsed when opened; a Parquet file's columns are decoded by
    :meth:`columns`.
    """

    path: Path
    label: str  # how messages name the file
    format: str
    rows: int
    numeric: tuple[str, ...]
    non_numeric: tuple[str, ...]
    _source: pa.Table | pq.ParquetFile
    stray: tuple[StrayCells, ...] = ()

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """A feature-major float64 array (len(names) x rows) of the named numeric columns."""
        names = list(names)
        matrix = np.empty((len(names), self.rows), dtype=float)
        if isinstance(self._source, pa.Table):
            _fill(matrix, 0, self._source.select(names))
            return matrix
        per_read = max(1, _PARQUET_VALUES_PER_READ // max(self.rows, 1))
        # Arrow's thread pool costs more than it saves on small files (measured: 4.6 ms
        # against 1.9 ms for 106 columns of 168 rows)
        threads = self.rows * len(names) >= _PARQUET_THREADED_VALUES
        every_column = not self.non_numeric and names == list(self.numeric)
        for start in range(0, len(names), per_read):
            wanted = names[start : start + per_read]
            # naming every column of the file costs a lookup per name: read them all instead
            columns = None if every_column and len(wanted) == len(names) else wanted
            try:
                table = self._source.read(columns=columns, use_threads=threads)
            except (pa.ArrowException, OSError) as exc:
                raise InvalidInputError(f"cannot read {self.path} as Parquet: {exc}") from exc
            _fill(matrix, start, table)
        if threads:
            # Arrow's allocator keeps the decoded buffers for reuse (about 90 MB after a
            # 200,000-row file), which the statistics that follow would add to the peak.
            pa.default_memory_pool().release_unused()
        return matrix


def _fill(matrix: np.ndarray, start: int, table: pa.Table) -> None:
    if (
        table.num_rows * table.num_columns <= _TENSOR_MAX_VALUES
        and all(kind.id == _FLOAT64_ID for kind in table.schema.types)
        and len(batches := table.to_batches()) == 1
    ):
        # every column in one call (15 us for 106 columns of 24 rows, against 166 us one
        # column at a time); column-major, so its transpose is feature-major
        tensor = batches[0].to_tensor(null_to_nan=True, row_major=False)
        matrix[start : start + table.num_columns] = np.asarray(tensor).T
        return
    for offset, column in enumerate(table.columns):  # one Arrow column into each row
        if not pa.types.is_float64(column.type):
            column = pc.cast(column, pa.float64())
        matrix[start + offset] = column.to_numpy()


def read_numeric_table(path: Path, *, label: str = "") -> NumericTable:
    """Open ``path`` (Parquet by its magic bytes, else CSV) and sort its columns into numeric
    and non-numeric. Booleans count as numeric (0/1); strings, dates and timestamps do not.
    ``label`` names the file in messages (default: its path).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"cannot read {path}: no such file")
    contents = None  # a small Parquet file's bytes, read with its magic in one open
    try:
        with path.open("rb") as handle:
            is_parquet = handle.read(4) == PARQUET_MAGIC
            if is_parquet and os.fstat(handle.fileno()).st_size <= _PARQUET_IN_MEMORY_BYTES:
                contents = PARQUET_MAGIC + handle.read()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    stray: list[StrayCells] = []
    if is_parquet:
        source: pa.Table | pq.ParquetFile = _open_parquet(path, contents)
        schema, rows = source.schema_arrow, source.metadata.num_rows
    else:
        source, stray = _mostly_numeric_as_numbers(_read_csv(path))
        schema, rows = source.schema, source.num_rows
    if len(set(schema.names)) != len(schema.names):
        raise InvalidInputError(f"{path} has repeated column names")
    kinds = [
        (name, _is_numeric(kind)) for name, kind in zip(schema.names, schema.types, strict=True)
    ]
    return NumericTable(
        path=path,
        label=label or str(path),
        format="parquet" if is_parquet else "csv",
        rows=rows,
        numeric=tuple(name for name, numeric in kinds if numeric),
        non_numeric=tuple(name for name, numeric in kinds if not numeric),
        _source=source,
        stray=tuple(stray),
    )


def _mostly_numeric_as_numbers(table: pa.Table) -> tuple[pa.Table, list[StrayCells]]:
    """Text columns whose filled cells are mostly numbers, as float columns (the others
    missing), with what was not a number; other columns unchanged."""
    stray = []
    for index, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        text = table.column(index).to_numpy(zero_copy_only=False)
        cells = pd.Series(text, dtype=object)
        filled = cells.notna().to_numpy() & (cells.astype(str).str.strip() != "").to_numpy()
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        bad = filled & np.isnan(numbers)
        count = int(bad.sum())
        if not count or not is_mostly_numeric(int(filled.sum()) - count, count):
            continue  # no stray cell, or a column of text
        first = int(np.flatnonzero(bad)[0])
        stray.append(StrayCells(field.name, count, first + 2, str(text[first])[:40], "line"))
        table = table.set_column(index, field.name, pa.array(numbers, type=pa.float64()))
    return table, stray


def _open_parquet(path: Path, contents: bytes | None) -> pq.ParquetFile:
    """The Parquet file at ``path``, decoded from ``contents`` (its bytes) when given."""
    try:
        if contents is not None:
            return pq.ParquetFile(pa.BufferReader(contents), pre_buffer=False)
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"cannot read {path} as Parquet: {exc}") from exc


def _read_csv(path: Path) -> pa.Table:
    try:
        return pa_csv.read_csv(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"cannot read {path} as CSV: {first_line}") from exc


def _is_numeric(kind: pa.DataType) -> bool:
    return (
        kind.id == _FLOAT64_ID  # first: nearly every feature column is one
        or pa.types.is_floating(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )
