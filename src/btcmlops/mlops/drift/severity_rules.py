"""The severity of a feature-drift check and the level of each feature, from the per-feature
test results: the contract's PSI thresholds applied to the PSI in excess of its no-drift
expectation.

Separate from ``feature_drift`` (which runs the tests) because the rule is a pure function of
their outcome, stated once in ``docs/drift.md`` and tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from btcmlops.severity import Severity


@dataclass(frozen=True)
class SeverityRule:
    """When a check is medium or high (see :func:`drift_severity`).

    PSI thresholds are the contract's (0.1-0.2 low, 0.2-0.3 medium, above 0.3 high), applied to
    the PSI in excess of its no-drift expectation.
    """

    medium_psi: float = 0.2
    high_psi: float = 0.3
    medium_share: float = 0.05
    high_share: float = 0.10


def drift_severity(
    features_tested: int,
    significant: np.ndarray,
    detected: np.ndarray,
    psi_excess: np.ndarray,
    rule: SeverityRule = SeverityRule(),
) -> Severity:
    """The severity of one check.

    - ``none``: no feature's BH-adjusted KS p-value is below alpha.
    - ``high``: at least max(1, ceil(10% of the tested features)) drifted features have a
      PSI exceeding its no-drift expectation by more than 0.3.
    - ``medium``: likewise with 5% of the tested features and an excess above 0.2.
    - ``low``: otherwise, i.e. some feature changed significantly but the drift is small or
      confined to few features.

    PSI excess (PSI minus its expectation under no drift at these sample sizes) is what
    keeps 24-row windows, whose PSI is large from sampling alone, from inflating severity.
    """
    if features_tested == 0 or not np.any(significant):
        return "none"
    excess = np.nan_to_num(psi_excess, nan=0.0)
    if np.count_nonzero(detected & (excess > rule.high_psi)) >= _needed(
        rule.high_share, features_tested
    ):
        return "high"
    if np.count_nonzero(detected & (excess > rule.medium_psi)) >= _needed(
        rule.medium_share, features_tested
    ):
        return "medium"
    return "low"


def feature_levels(
    significant: np.ndarray,
    detected: np.ndarray,
    psi_excess: np.ndarray,
    rule: SeverityRule = SeverityRule(),
) -> list[Severity]:
    """A word per feature: ``none`` unless significant; then by PSI excess if it drifted."""
    excess = np.nan_to_num(psi_excess, nan=0.0)
    levels: list[Severity] = []
    for is_significant, is_detected, value in zip(
        significant.tolist(), detected.tolist(), excess.tolist(), strict=True
    ):
        if not is_significant:
            levels.append("none")
        elif is_detected and value > rule.high_psi:
            levels.append("high")
        elif is_detected and value > rule.medium_psi:
            levels.append("medium")
        else:
            levels.append("low")
    return levels


def _needed(share: float, features_tested: int) -> int:
    return max(1, math.ceil(share * features_tested - 1e-9))
