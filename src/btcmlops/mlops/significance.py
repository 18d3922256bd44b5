"""Tests that decide whether a difference in accuracy is real.

>>> result = two_proportion_test(120, 200, 90, 200)   # 60% vs 45% correct
>>> round(result.z, 3), result.p_value < 0.01
(3.004, True)
>>> two_proportion_test(22, 40, 20, 40).p_value > 0.05   # 55% vs 50% on 40 each
True
>>> round(mcnemar_exact(only_first_right=12, only_second_right=3).p_value, 4)
0.0352
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import binomtest, norm


@dataclass(frozen=True)
class ProportionTest:
    """A one-sided test that proportion 1 exceeds proportion 2."""

    first: float
    second: float
    difference: float
    z: float
    p_value: float

    def as_dict(self) -> dict[str, float]:
        return {
            "first": self.first,
            "second": self.second,
            "difference": self.difference,
            "z": self.z,
            "p_value": self.p_value,
        }


def two_proportion_test(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int
) -> ProportionTest:
    """Pooled two-proportion z-test of H1: p1 > p2 (one-sided).

    z = (p̂1 - p̂2) / sqrt(p̂ (1 - p̂) (1/n1 + 1/n2)) with the pooled p̂ = (k1 + k2) / (n1 + n2);
    p = 1 - Φ(z). (Agresti, *Categorical Data Analysis*, 3rd ed., §2.1.) Used for "accuracy
    dropped": p1 the reference accuracy, p2 the current one.
    """
    if trials_1 <= 0 or trials_2 <= 0:
        raise ValueError("both samples need at least one trial")
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    pooled = (successes_1 + successes_2) / (trials_1 + trials_2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials_1 + 1 / trials_2))
    if spread == 0:
        z = 0.0 if p1 == p2 else math.copysign(math.inf, p1 - p2)
    else:
        z = (p1 - p2) / spread
    return ProportionTest(p1, p2, p1 - p2, z, float(norm.sf(z)))


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test on paired predictions of two models on the same hours."""

    only_first_right: int
    only_second_right: int
    p_value: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "test": "McNemar exact (two-sided binomial on discordant pairs)",
            "only_challenger_right": self.only_first_right,
            "only_champion_right": self.only_second_right,
            "p_value": self.p_value,
        }


def mcnemar_exact(*, only_first_right: int, only_second_right: int) -> McNemarResult:
    """Exact McNemar test: under H0 each discordant hour favours either model with p = 1/2.

    p = two-sided binomial test of b successes in b + c trials (McNemar 1947; the exact form
    recommended for small counts by Fagerland, Lydersen & Laake 2013). No discordant pairs
    means no evidence either way (p = 1).
    """
    discordant = only_first_right + only_second_right
    if discordant == 0:
        return McNemarResult(only_first_right, only_second_right, 1.0)
    p_value = binomtest(only_first_right, discordant, 0.5, alternative="two-sided").pvalue
    return McNemarResult(only_first_right, only_second_right, float(p_value))
