"""Console output shared by commands: rich tables for people, JSON for machines."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return str(value)


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (no rich markup, so it pipes cleanly)."""
    print(json.dumps(payload, default=_jsonable, indent=2, allow_nan=False))
