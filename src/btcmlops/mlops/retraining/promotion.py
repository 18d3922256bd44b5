"""The promotion rule: when a challenger may replace the champion, as a pure function.

Everything here reads *paired* outcomes: the challenger, the champion and the naive
baselines scored on the same hours. Their sufficient statistics are a handful of counts
(:class:`PairedCounts`), so the offline comparison hours of a retraining and the live shadow
hours that follow simply add up. The rule's paired test is the group-sequential trial of
:mod:`~btcmlops.mlops.retraining.paired_tests`; this module adds the naive baselines, the
degeneracy guard and the record of the decision (:class:`PromotionDecision`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from btcmlops.mlops.retraining.paired_tests import TRIAL_LOOKS, TrialLook, trial_look
from btcmlops.mlops.retraining.results import (
    ChallengerMetrics,
    ChampionMetrics,
    PairedCountsDict,
    PromotionEvidence,
)

MAX_ONE_CLASS_SHARE = 0.95
CONDITIONS = (
    "sequential_test",
    "beats_majority",
    "beats_last_hour",
    "beats_base_rate_log_loss",
    "not_degenerate",
)


@dataclass(frozen=True)
class PairedCounts:
    """A challenger and a champion (plus the naive baselines) on the same hours.

    ``challenger_only`` counts the hours where the challenger was right and the champion
    wrong; ``champion_only`` the reverse. ``last_hour_correct`` counts the hours that the
    rule "same direction as the last hour" got right. ``challenger_log_loss_sum`` is the sum
    of the challenger's per-hour log losses.
    """

    hours: int = 0
    actual_up: int = 0
    challenger_correct: int = 0
    champion_correct: int = 0
    challenger_only: int = 0
    champion_only: int = 0
    challenger_predicted_up: int = 0
    last_hour_correct: int = 0
    challenger_log_loss_sum: float = 0.0

    def __add__(self, other: PairedCounts) -> PairedCounts:
        return PairedCounts(
            **{name: getattr(self, name) + getattr(other, name) for name in _FIELDS}
        )

    @classmethod
    def from_outcomes(
        cls,
        actual: np.ndarray,
        challenger_p_up: np.ndarray,
        champion_p_up: np.ndarray,
        last_hour_direction: np.ndarray,
    ) -> PairedCounts:
        """Counts of per-hour arrays: directions 0/1, P(up) of both models, and the last
        hour's own direction (NaN where unknown: that hour counts as a miss for the rule).

        >>> PairedCounts.from_outcomes(
        ...     np.array([1, 0, 1, 1]), np.array([0.6, 0.4, 0.4, 0.7]),
        ...     np.array([0.4, 0.4, 0.6, 0.3]), np.array([1.0, 1.0, np.nan, 0.0]),
        ... ).challenger_only
        2
        """
        y = np.asarray(actual, dtype=int)
        p_new = np.clip(np.asarray(challenger_p_up, dtype=float), 1e-15, 1 - 1e-15)
        new_right = (p_new > 0.5).astype(int) == y
        old_right = (np.asarray(champion_p_up, dtype=float) > 0.5).astype(int) == y
        last = np.asarray(last_hour_direction, dtype=float)
        losses = -(y * np.log(p_new) + (1 - y) * np.log1p(-p_new))
        return cls(
            hours=int(y.size),
            actual_up=int(y.sum()),
            challenger_correct=int(new_right.sum()),
            champion_correct=int(old_right.sum()),
            challenger_only=int((new_right & ~old_right).sum()),
            champion_only=int((old_right & ~new_right).sum()),
            challenger_predicted_up=int((p_new > 0.5).sum()),
            last_hour_correct=int((last == y).sum()),
            challenger_log_loss_sum=float(losses.sum()),
        )

    def as_dict(self) -> PairedCountsDict:
        return PairedCountsDict(**asdict(self))

    def challenger_metrics(self) -> ChallengerMetrics:
        """The challenger's scores on these hours, in the retraining history's field names."""
        n = self.hours
        return {
            "rows": n,
            "correct": self.challenger_correct,
            "accuracy": self.challenger_correct / n if n else None,
            "actual_up_rate": self.actual_up / n if n else None,
            "predicted_up_rate": self.challenger_predicted_up / n if n else None,
            "log_loss": self.challenger_log_loss_sum / n if n else None,
        }

    def champion_metrics(self) -> ChampionMetrics:
        n = self.hours
        return {
            "rows": n,
            "correct": self.champion_correct,
            "accuracy": self.champion_correct / n if n else None,
            "actual_up_rate": self.actual_up / n if n else None,
        }


_FIELDS = tuple(PairedCounts.__dataclass_fields__)


@dataclass(frozen=True)
class PromotionDecision:
    """The rule's verdict on one challenger, with every number it rests on."""

    promote: bool
    reason: str
    conditions: dict[str, bool]
    test: TrialLook
    counts: PairedCounts
    challenger_accuracy: float | None
    champion_accuracy: float | None
    majority_accuracy: float | None
    last_hour_accuracy: float | None
    challenger_log_loss: float | None
    base_rate_log_loss: float | None
    one_class_share: float | None
    failed: list[str] = field(default_factory=list)

    def evidence(self) -> PromotionEvidence:
        """What a stored decision keeps: hours, discordant counts, statistic, threshold."""
        return {
            "rule": "group-sequential paired trial on discordant hours + naive baselines + "
            "not degenerate",
            "promote": self.promote,
            "hours": self.counts.hours,
            "conditions": dict(self.conditions),
            "failed": list(self.failed),
            "test": self.test.as_dict(),
            "counts": self.counts.as_dict(),
            "challenger_accuracy": self.challenger_accuracy,
            "champion_accuracy": self.champion_accuracy,
            "majority_accuracy": self.majority_accuracy,
            "last_hour_accuracy": self.last_hour_accuracy,
            "challenger_log_loss": self.challenger_log_loss,
            "base_rate_log_loss": self.base_rate_log_loss,
            "one_class_share": self.one_class_share,
        }


def decide_promotion(
    counts: PairedCounts,
    *,
    alpha: float,
    max_one_class_share: float = MAX_ONE_CLASS_SHARE,
    paired: bool = True,
    earlier_discordant: Sequence[int] = (),
    trial_looks: int = TRIAL_LOOKS,
) -> PromotionDecision:
    """Promote only when all five conditions hold on the same hours:

    1. the paired trial says the challenger is better than the champion at this look (the
       discordant hours counted at its earlier looks are ``earlier_discordant``;
       ``paired=False`` when there is no champion yet: the condition then holds);
    2. its accuracy beats the majority class *of those hours* (a hindsight baseline);
    3. its accuracy beats "same direction as the last hour";
    4. its mean log loss beats the constant base-rate forecast of those hours;
    5. it predicts one class on at most ``max_one_class_share`` of them.

    >>> good = PairedCounts(hours=400, actual_up=200, challenger_correct=240,
    ...     champion_correct=200, challenger_only=90, champion_only=50,
    ...     challenger_predicted_up=210, last_hour_correct=196,
    ...     challenger_log_loss_sum=400 * 0.67)
    >>> looks = {"alpha": 0.05, "earlier_discordant": [60] * 30}  # the trial's last look
    >>> decide_promotion(good, **looks).promote
    True
    >>> from dataclasses import replace
    >>> decide_promotion(replace(good, challenger_predicted_up=399), **looks).failed
    ['not_degenerate']
    """
    n = counts.hours
    test = trial_look(
        counts.challenger_only,
        counts.champion_only,
        alpha=alpha,
        earlier_discordant=earlier_discordant,
        trial_looks=trial_looks,
    )
    if n == 0:
        conditions = {name: False for name in CONDITIONS}
        return PromotionDecision(
            promote=False,
            reason="no paired hours yet",
            conditions=conditions,
            test=test,
            counts=counts,
            challenger_accuracy=None,
            champion_accuracy=None,
            majority_accuracy=None,
            last_hour_accuracy=None,
            challenger_log_loss=None,
            base_rate_log_loss=None,
            one_class_share=None,
            failed=list(CONDITIONS),
        )
    accuracy = counts.challenger_correct / n
    up_rate = counts.actual_up / n
    majority = max(up_rate, 1 - up_rate)
    last_hour = counts.last_hour_correct / n
    log_loss = counts.challenger_log_loss_sum / n
    base_rate = _binary_entropy(up_rate)
    one_class = max(counts.challenger_predicted_up, n - counts.challenger_predicted_up) / n
    conditions = {
        "sequential_test": test.rejects if paired else True,
        "beats_majority": accuracy > majority,
        "beats_last_hour": accuracy > last_hour,
        "beats_base_rate_log_loss": log_loss < base_rate,
        "not_degenerate": one_class <= max_one_class_share,
    }
    failed = [name for name, held in conditions.items() if not held]
    promote = not failed
    champion_accuracy = counts.champion_correct / n if paired else None
    return PromotionDecision(
        promote=promote,
        reason=_reason(
            promote,
            failed,
            n,
            accuracy,
            champion_accuracy,
            majority,
            last_hour,
            log_loss,
            base_rate,
            one_class,
            test,
            paired,
        ),
        conditions=conditions,
        test=test,
        counts=counts,
        challenger_accuracy=accuracy,
        champion_accuracy=champion_accuracy,
        majority_accuracy=majority,
        last_hour_accuracy=last_hour,
        challenger_log_loss=log_loss,
        base_rate_log_loss=base_rate,
        one_class_share=one_class,
        failed=failed,
    )


def _binary_entropy(rate: float) -> float:
    """Mean log loss of the constant forecast ``rate`` on hours whose up-rate is ``rate``."""
    if rate <= 0.0 or rate >= 1.0:
        return 0.0
    return -(rate * math.log(rate) + (1 - rate) * math.log1p(-rate))


def _reason(
    promote: bool,
    failed: list[str],
    hours: int,
    accuracy: float,
    champion_accuracy: float | None,
    majority: float,
    last_hour: float,
    log_loss: float,
    base_rate: float,
    one_class: float,
    test: TrialLook,
    paired: bool,
) -> str:
    against = (
        f" vs champion {champion_accuracy:.3f}; discordant hours {test.wins}:{test.losses} "
        f"(needs {test.boundary} wins at look {test.look + 1} of {test.trial_looks})"
        if paired
        else ""
    )
    head = (
        f"on {hours} paired hours: accuracy {accuracy:.3f}{against}; majority {majority:.3f}, "
        f"last hour {last_hour:.3f}; log loss {log_loss:.4f} vs base rate {base_rate:.4f}; "
        f"one class on {one_class:.0%} of hours"
    )
    if promote:
        return f"promote: {head}"
    return f"keep: {', '.join(failed)} failed {head}"
