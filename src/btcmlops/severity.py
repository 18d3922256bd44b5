"""The severity of a drift check: four ordered words, one order for the whole service.

``none < low < medium < high``. "Not enough data" is a check's status, never a severity, so it
has no rank here: ``severity_at_least(None, ...)`` is false. The settings, the drift checks,
the retraining policy and the metrics import the order from this module; the dashboard reads
it from ``GET /drift/history`` (``severity_order``). It sits at the package root because the
settings need it and must not import ``mlops``.

>>> SEVERITIES
('none', 'low', 'medium', 'high')
>>> severity_rank("medium")
2
>>> severity_at_least("high", "medium"), severity_at_least("low", "medium")
(True, False)
>>> severity_at_least(None, "none")
False
>>> severities_at_least("medium")
('medium', 'high')
>>> max(["low", "high", "none"], key=severity_rank)
'high'
"""

from __future__ import annotations

from typing import Literal, get_args

from btcmlops.errors import InvalidInputError

Severity = Literal["none", "low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


def severity_rank(severity: str) -> int:
    """0 for ``none`` up to 3 for ``high``; an unknown word is refused."""
    try:
        return SEVERITIES.index(severity)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInputError(
            f"unknown severity {severity!r}: expected one of {', '.join(SEVERITIES)}"
        ) from None


def severity_at_least(severity: str | None, threshold: Severity) -> bool:
    """True when ``severity`` is a real severity at or above ``threshold``."""
    if severity is None:
        return False
    return severity_rank(severity) >= severity_rank(threshold)


def severities_at_least(threshold: Severity) -> tuple[Severity, ...]:
    """The severities at or above ``threshold``, lowest first."""
    return SEVERITIES[severity_rank(threshold) :]
