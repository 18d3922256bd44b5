"""One way to make values fit JSON, for every place the service writes it.

JSON has no NaN or infinity and PostgreSQL's JSONB refuses them, numpy scalars and instants
are not JSON types, and a store must never hold half a document. :func:`jsonable` turns a
nested value into plain JSON (``None`` for a number that is not finite, numpy scalars as
Python numbers, instants as ISO text, paths as text) or refuses what it does not know;
:func:`finite_or_none` is the same rule for one number, for float columns and hot paths.

>>> from datetime import datetime, timezone
>>> jsonable({"p": float("nan"), 1: (2, 2.5), "at": datetime(2024, 1, 1, tzinfo=timezone.utc)})
{'p': None, '1': [2, 2.5], 'at': '2024-01-01T00:00:00+00:00'}
>>> finite_or_none(float("inf")) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any


def finite_or_none(value: Any) -> Any:
    """``value`` with a numpy scalar as its Python number, and ``None`` for a NaN or an
    infinity; anything else unchanged."""
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable(value: Any, *, fallback: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain JSON: dicts (keys as text), lists, text, booleans, integers,
    finite floats and ``None``.

    A value of another type is passed to ``fallback`` when one is given (the terminal's JSON
    uses ``str``), else refused with :class:`TypeError`, so nothing unexpected is stored.
    """
    if isinstance(value, dict):
        return {str(key): jsonable(item, fallback=fallback) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item, fallback=fallback) for item in value]
    value = finite_or_none(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if fallback is not None:
        return fallback(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r}")
