"""Building scorers by name, for the CLI, the scheduler and the API.

``vader`` is always available. ``finbert`` needs the ``finbert`` extra and local weights;
when it cannot be built, asking for it by name raises :class:`ScorerUnavailableError`, while
asking for ``all`` builds what it can and reports the rest. Importing this module never
imports torch: :class:`FinbertScorer` does that when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from btcmlops.config import Settings
from btcmlops.errors import InvalidInputError
from btcmlops.sentiment.base import ScorerUnavailableError, SentimentScorer
from btcmlops.sentiment.finbert import FinbertScorer, finbert_unavailable_reason
from btcmlops.sentiment.vader import VaderScorer

SCORER_NAMES = ("vader", "finbert")
ALL = "all"


def scorer_names(choice: str) -> list[str]:
    """The scorers ``choice`` names: one of :data:`SCORER_NAMES`, or ``all`` for every one.

    >>> scorer_names("all"), scorer_names("VADER")
    (['vader', 'finbert'], ['vader'])
    """
    wanted = choice.strip().lower()
    if wanted == ALL:
        return list(SCORER_NAMES)
    if wanted not in SCORER_NAMES:
        raise InvalidInputError(
            f"unknown sentiment scorer {choice!r}; expected one of {', '.join(SCORER_NAMES)} "
            f"or {ALL}"
        )
    return [wanted]


def make_scorer(name: str, settings: Settings) -> SentimentScorer:
    """Build the scorer called ``name``, configured from ``settings``.

    Raises
    ------
    InvalidInputError
        ``name`` is not a scorer.
    ScorerUnavailableError
        FinBERT's libraries or weights are missing (the message says how to provide them).
    """
    wanted = name.strip().lower()
    if wanted == "vader":
        return VaderScorer()
    if wanted == "finbert":
        return FinbertScorer(
            model=settings.finbert_model,
            batch_size=settings.finbert_batch_size,
            threads=settings.n_jobs,
        )
    raise InvalidInputError(
        f"unknown sentiment scorer {name!r}; expected one of {', '.join(SCORER_NAMES)}"
    )


@dataclass
class ScorerSelection:
    """The scorers built for a choice, and why any others could not be."""

    scorers: list[SentimentScorer] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def make_scorers(choice: str, settings: Settings) -> ScorerSelection:
    """Build the scorers ``choice`` names (a name or ``all``).

    A scorer asked for by name that cannot be built raises :class:`ScorerUnavailableError`;
    with ``all``, it is listed in ``unavailable`` with the reason and the others are built.
    """
    names = scorer_names(choice)
    selection = ScorerSelection()
    for name in names:
        try:
            selection.scorers.append(make_scorer(name, settings))
        except ScorerUnavailableError as exc:
            if len(names) == 1:
                raise
            selection.unavailable[name] = str(exc)
    return selection


@dataclass(frozen=True, slots=True)
class ScorerStatus:
    """Whether a scorer can be built here; ``reason`` says why not (``None`` when it can)."""

    name: str
    available: bool
    reason: str | None = None


def available_scorers(settings: Settings) -> list[ScorerStatus]:
    """Which scorers can be built here, checked cheaply: nothing is loaded or imported.

    FinBERT counts as available when torch and transformers are installed and its weights
    are found; a corrupt checkpoint still fails later, in :func:`make_scorer`.
    """
    finbert_reason = finbert_unavailable_reason(settings.finbert_model)
    return [
        ScorerStatus("vader", True),
        ScorerStatus("finbert", finbert_reason is None, finbert_reason),
    ]
