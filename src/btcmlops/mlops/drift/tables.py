"""Reading the numeric columns of an in-memory table (column name → values, as a JSON body
brings them) as float arrays, with what :mod:`~btcmlops.mlops.drift.files` gives for a file.

Values are numbers (booleans count as 0/1), ``None`` (missing) or strings. The strings
``inf``, ``+inf``, ``-inf``, ``infinity`` and ``nan`` (any case, either sign) are read as
the floats they spell, since JSON has no literal for them; a blank string is missing, as a
blank CSV cell is. Any other string in a mostly numeric column is a stray cell: read as
missing and reported with its count and the row (0-based) of the first
(:class:`~btcmlops.mlops.drift.files.StrayCells`). A column whose stray strings are as many
as its numbers is text, like a text column of a file.

>>> table = read_table({"price": [1.5, "inf", None, "n/a", 2.0], "name": list("abcde")})
>>> table.numeric, table.non_numeric, table.stray[0].count, table.stray[0].first
(('price',), ('name',), 1, 3)
>>> table.columns(["price"]).tolist()
[[1.5, inf, nan, nan, 2.0]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.files import StrayCells, is_mostly_numeric

SPELLED_FLOATS = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("inf", "infinity", "nan")
)
# pandas' names for columns that hold only numbers (and missing values)
_NUMERIC_KINDS = frozenset({"floating", "integer", "mixed-integer-float", "boolean", "empty"})


@dataclass(frozen=True)
class ColumnTable:
    """The numeric columns of an in-memory table and the names of the others, with the
    interface of :class:`~btcmlops.mlops.drift.files.NumericTable`."""

    label: str
    rows: int
    numeric: tuple[str, ...]
    non_numeric: tuple[str, ...]
    stray: tuple[StrayCells, ...] = ()
    _values: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """A feature-major float64 array (len(names) x rows) of the named numeric columns."""
        matrix = np.empty((len(names), self.rows), dtype=float)
        for index, name in enumerate(names):
            matrix[index] = self._values[name]
        return matrix


def read_table(table: Mapping[str, Sequence], *, label: str = "the table") -> ColumnTable:
    """Sort the columns of ``table`` into numeric (read as floats) and non-numeric.

    Raises InvalidInputError when the columns differ in length, or a value is neither a
    number, None nor a string.
    """
    if not isinstance(table, Mapping):
        raise InvalidInputError(f"{label} must map column names to lists of values")
    lengths = {str(name): _length(label, str(name), values) for name, values in table.items()}
    if len(set(lengths.values())) > 1:
        (first, rows), *rest = lengths.items()
        other, count = next((name, n) for name, n in rest if n != rows)
        raise InvalidInputError(
            f"{label}'s columns differ in length: {first} has {rows} values, {other} "
            f"{count}; every column needs one value per row"
        )
    values: dict[str, np.ndarray] = {}
    stray: list[StrayCells] = []
    non_numeric: list[str] = []
    for name, column in table.items():
        numbers, cells = _read_column(label, str(name), column)
        if numbers is None:
            non_numeric.append(str(name))
            continue
        values[str(name)] = numbers
        if cells is not None:
            stray.append(cells)
    return ColumnTable(
        label=label,
        rows=next(iter(lengths.values()), 0),
        numeric=tuple(values),
        non_numeric=tuple(non_numeric),
        stray=tuple(stray),
        _values=values,
    )


def _length(label: str, name: str, values: object) -> int:
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise InvalidInputError(f"column {name} of {label} must be a list of values")
    return len(values)  # type: ignore[arg-type]


def _read_column(
    label: str, name: str, values: Sequence
) -> tuple[np.ndarray | None, StrayCells | None]:
    """The column as floats and its stray cells; (None, None) for a column of text."""
    if pd.api.types.infer_dtype(values, skipna=True) in _NUMERIC_KINDS:
        return np.asarray(values, dtype=float).reshape(-1), None
    numbers = np.empty(len(values), dtype=float)
    stray_rows: list[int] = []
    for row, value in enumerate(values):
        numbers[row] = _read_value(label, name, row, value, stray_rows)
    if not stray_rows:
        return numbers, None
    if not is_mostly_numeric(int(np.count_nonzero(~np.isnan(numbers))), len(stray_rows)):
        return None, None
    first = stray_rows[0]
    cells = StrayCells(name, len(stray_rows), first, str(values[first])[:40], "row")
    return numbers, cells


def _read_value(label: str, name: str, row: int, value: object, stray_rows: list[int]) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        word = value.strip().lower()
        if word in SPELLED_FLOATS:
            return float(word)
        if word:
            stray_rows.append(row)
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"column {name} of {label}, row {row}: expected a number, null or a string, "
            f"got {type(value).__name__}"
        ) from None
