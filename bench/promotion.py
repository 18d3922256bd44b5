"""Benchmark: how often the promotion and rollback rule fires, measured by simulation.

The rule (``btcmlops.mlops.retraining.promotion``) reads paired counts: a challenger and the
champion scored on the same hours. The service adds the challenger's offline comparison
hours (its test split, 220 hours here) and 24 live shadow hours a day, and looks once a
day; the first look is on the offline hours alone (day 0), then days 1 to 30. Each scenario
below simulates ``--decisions`` independent pairs (default 2,000) and reports a share with
its 95% Wilson interval:

1. *Equally good models* (both 0.53 accurate, same hard prediction on 70% of hours, up-rate
   0.50 and 0.52): share of pairs in which the challenger is ever promoted over the 31
   looks (target <= 5%); for contrast, the old rule at one look on the 220 offline hours
   ("accuracy gain > 0 and log loss at most 0.02 worse"), alone and with exact McNemar
   p < 0.05 required.
2. *A challenger truly 0.05 better* (0.58 against 0.53, 70% agreement): share promoted by
   day 30, the end of its trial (target >= 80%), and the median day of promotion.
3. *A constant predictor* ("up", P(up) = 0.51 every hour) against a 0.55 champion and
   against a 0.50 one: share promoted (target 0: it predicts one class on every hour).
4. *Rollback*: a new champion judged against the previous one (in shadow) on the same live
   hours, ``sequential_paired_test(previous_only_wins, new_only_wins, alpha)``. Equal models
   (0.53 both, 70% agreement): share ever rolled back over 30 and 90 days (target <= 5%),
   with a look at the end of each day and with a look every hour from hour 48 (the
   ``auto_rollback_window`` default). A truly worse new champion (0.48 against 0.53): share
   rolled back by day 30 and the median day.

How the hours are drawn: the outcome is up with probability ``base_rate``, independently
every hour. The two models' correctness comes from one shared category per hour, drawn
independently of the outcome: both right with probability ``r = (a1 + a2 + g - 1) / 2``,
both wrong ``g - r``, only the first right ``a1 - r``, only the second ``a2 - r`` (marginal
accuracies ``a1``, ``a2``, agreement ``g``; 0.58/0.53 at g = 0.70 gives 0.405/0.295/0.175/
0.125). A model's hard prediction is the outcome when it is right and the other direction
when not; its P(up) lies on the side of its prediction, ``|P(up) - 1/2| = a - 1/2 + U(-j, j)``
with ``j = --jitter`` (default 0.02), clipped to [0.005, 0.495], so it is roughly calibrated
to its accuracy and its log loss means something. "Same direction as last hour" is drawn
independently of the outcome (accuracy 0.5). Every batch of hours (the offline split, then
each day) becomes ``PairedCounts.from_outcomes``; the batches are added and
``decide_promotion`` runs at every look with the discordant counts of the earlier looks (the
trial's alpha-spending boundary depends on them; looks past day 30 can never promote). The
rollback scenarios need only the discordant counts: the smallest number of previous-champion
wins that makes ``sequential_paired_test`` reject is found for every number of discordant
hours (the e-value grows with the wins), then every hourly or daily look is a comparison.

    .venv/bin/python bench/promotion.py [--decisions 2000] [--seed 20261204] [--alpha 0.05]
        [--jitter 0.02]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from btcmlops.mlops.retraining.promotion import (
    MAX_ONE_CLASS_SHARE,
    PairedCounts,
    decide_promotion,
    sequential_paired_test,
    trial_level,
)

OFFLINE_HOURS = 220
DAYS = 30
LONG_DAYS = 90
HOURS_PER_DAY = 24
AGREEMENT = 0.70
EQUAL_ACCURACY = 0.53
BETTER_ACCURACY = 0.58
WORSE_ACCURACY = 0.48
STRONG_CHAMPION = 0.55
WEAK_CHAMPION = 0.50
CONSTANT_P_UP = 0.51
ROLLBACK_FIRST_HOUR = 48  # the auto_rollback_window default
OLD_LOG_LOSS_TOLERANCE = 0.02  # the old rule's retrain_log_loss_tolerance
OLD_SIGNIFICANCE = 0.05
Z95 = 1.959963984540054
DEGENERATE = "not_degenerate"


@dataclass(frozen=True)
class Hours:
    """Per-pair, per-hour arrays of shape (pairs, hours)."""

    actual: np.ndarray
    challenger_p_up: np.ndarray
    champion_p_up: np.ndarray
    last_hour: np.ndarray


@dataclass(frozen=True)
class Row:
    scenario: str
    target: str
    hits: int
    total: int
    detail: str
    seconds: float
    same_run: bool = False


# ----------------------------------------------------------------------------- simulation
def category_probabilities(first: float, second: float, agreement: float) -> np.ndarray:
    """P(both right), P(both wrong), P(only first right), P(only second right)."""
    both_right = (first + second + agreement - 1) / 2
    shares = np.array([both_right, agreement - both_right, first - both_right, second - both_right])
    if (shares < -1e-12).any():
        raise ValueError(f"accuracies {first}, {second} cannot agree on {agreement:.0%}")
    return np.clip(shares, 0.0, None)


def paired_correctness(
    rng: np.random.Generator, shape: tuple[int, int], first: float, second: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which hours each model gets right, with accuracies ``first``/``second``, 70% agreement."""
    edges = np.cumsum(category_probabilities(first, second, AGREEMENT))
    category = np.searchsorted(edges, rng.random(shape), side="right")
    category = np.minimum(category, 3)  # rounding at the top edge
    first_right = (category == 0) | (category == 2)
    second_right = (category == 0) | (category == 3)
    return first_right, second_right


def p_up_of(
    rng: np.random.Generator,
    actual: np.ndarray,
    right: np.ndarray,
    accuracy: float,
    jitter: float,
) -> np.ndarray:
    """P(up) on the side of the hard prediction, about as confident as the model is accurate."""
    predicted_up = np.where(right, actual, 1 - actual) == 1
    confidence = accuracy - 0.5 + rng.uniform(-jitter, jitter, actual.shape)
    confidence = np.clip(confidence, 0.005, 0.495)
    return np.where(predicted_up, 0.5 + confidence, 0.5 - confidence)


def simulate(
    rng: np.random.Generator,
    pairs: int,
    hours: int,
    *,
    base_rate: float,
    challenger: float | None,
    champion: float,
    jitter: float,
) -> Hours:
    """``challenger=None`` is the constant predictor (P(up) = CONSTANT_P_UP every hour)."""
    shape = (pairs, hours)
    actual = (rng.random(shape) < base_rate).astype(np.int8)
    if challenger is None:
        champion_right = rng.random(shape) < champion
        challenger_p_up = np.full(shape, CONSTANT_P_UP)
    else:
        challenger_right, champion_right = paired_correctness(rng, shape, challenger, champion)
        challenger_p_up = p_up_of(rng, actual, challenger_right, challenger, jitter)
    champion_p_up = p_up_of(rng, actual, champion_right, champion, jitter)
    last_hour = (rng.random(shape) < 0.5).astype(float)
    return Hours(actual, challenger_p_up, champion_p_up, last_hour)


def look_edges(days: int) -> list[int]:
    """Hour indices at which the service looks: after the offline hours, then every day."""
    return [OFFLINE_HOURS + HOURS_PER_DAY * day for day in range(days + 1)]


def promotion_paths(
    hours: Hours, days: int, alpha: float, *, stop_at_promotion: bool
) -> dict[str, np.ndarray]:
    """Run ``decide_promotion`` at every daily look of every pair.

    Per pair, the first look (its day) at which the challenger was promoted (``promote``),
    at which each condition held (by its name), and at which every condition but
    ``not_degenerate`` held (``others``); -1 for never.
    """
    pairs = hours.actual.shape[0]
    first: dict[str, np.ndarray] = {}
    levels: list[float] = []  # per pair: the trial's exact level given its discordant counts
    edges = look_edges(days)
    for pair in range(pairs):
        counts = PairedCounts()
        start = 0
        looked: list[int] = []  # discordant hours at the earlier looks (the trial's history)
        for day, end in enumerate(edges):
            counts = counts + PairedCounts.from_outcomes(
                hours.actual[pair, start:end],
                hours.challenger_p_up[pair, start:end],
                hours.champion_p_up[pair, start:end],
                hours.last_hour[pair, start:end],
            )
            start = end
            decision = decide_promotion(counts, alpha=alpha, earlier_discordant=looked)
            looked.append(counts.challenger_only + counts.champion_only)
            held = dict(decision.conditions)
            held["promote"] = decision.promote
            held["others"] = all(v for k, v in decision.conditions.items() if k != DEGENERATE)
            for name, happened in held.items():
                first.setdefault(name, np.full(pairs, -1))
                if happened and first[name][pair] < 0:
                    first[name][pair] = day
            if stop_at_promotion and decision.promote:
                break
        levels.append(trial_level(looked, alpha=alpha))
    first["level"] = np.array(levels)
    return first


def old_rule(hours: Hours) -> tuple[np.ndarray, np.ndarray]:
    """The old rule at one look on the offline hours: alone, and with McNemar required."""
    part = slice(0, OFFLINE_HOURS)
    y = hours.actual[:, part]
    new_p = np.clip(hours.challenger_p_up[:, part], 1e-15, 1 - 1e-15)
    old_p = np.clip(hours.champion_p_up[:, part], 1e-15, 1 - 1e-15)
    new_right = (new_p > 0.5).astype(np.int8) == y
    old_right = (old_p > 0.5).astype(np.int8) == y

    def log_loss(p: np.ndarray) -> np.ndarray:
        return -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean(axis=1)

    gain = new_right.mean(axis=1) - old_right.mean(axis=1)
    deploy = (gain > 0) & (log_loss(new_p) - log_loss(old_p) <= OLD_LOG_LOSS_TOLERANCE)
    only_new = (new_right & ~old_right).sum(axis=1)
    only_old = (old_right & ~new_right).sum(axis=1)
    p_values: dict[tuple[int, int], float] = {}
    significant = np.zeros_like(deploy)
    for index, (b, c) in enumerate(zip(only_new.tolist(), only_old.tolist(), strict=True)):
        if (b, c) not in p_values:
            p_values[b, c] = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
        significant[index] = p_values[b, c] < OLD_SIGNIFICANCE
    return deploy, deploy & significant


# ------------------------------------------------------------------------------ rollback
def rejection_bounds(max_discordant: int, alpha: float) -> np.ndarray:
    """``bound[n]``: fewest wins of ``n`` discordant hours with which the test rejects.

    ``n + 1`` when no count rejects. Binary search on the project's own
    ``sequential_paired_test``: for a fixed ``n`` the mixture e-value grows with the wins.
    """
    bounds = np.empty(max_discordant + 1, dtype=np.int64)
    for n in range(max_discordant + 1):
        low, high = 0, n + 1  # the answer lies in [low, high]
        while low < high:
            middle = (low + high) // 2
            if sequential_paired_test(middle, n - middle, alpha).rejects:
                high = middle
            else:
                low = middle + 1
        bounds[n] = low
    return bounds


def first_rollback(
    rng: np.random.Generator,
    pairs: int,
    days: int,
    new: float,
    previous: float,
    alpha: float,
    bounds: np.ndarray,
) -> dict[str, np.ndarray]:
    """First hour at which the rollback test rejects (-1 for never), hourly and daily looks."""
    previous_right, new_right = paired_correctness(
        rng, (pairs, days * HOURS_PER_DAY), previous, new
    )
    wins = np.cumsum(previous_right & ~new_right, axis=1)
    discordant = wins + np.cumsum(new_right & ~previous_right, axis=1)
    rejects = wins >= bounds[discordant]
    check = rng.integers(0, rejects.size, 500)
    for flat in check:  # the bounds against the function itself
        pair, hour = divmod(int(flat), rejects.shape[1])
        k, n = int(wins[pair, hour]), int(discordant[pair, hour])
        assert sequential_paired_test(k, n - k, alpha).rejects == rejects[pair, hour]
    hour = np.arange(1, rejects.shape[1] + 1)
    looks = {
        "hourly": hour >= ROLLBACK_FIRST_HOUR,
        "daily": hour % HOURS_PER_DAY == 0,
    }
    first = {}
    for name, looked in looks.items():
        hits = rejects & looked
        first[name] = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, -1)
    return first


# ------------------------------------------------------------------------------- report
def wilson(hits: int, total: int) -> tuple[float, float]:
    if total == 0:
        return 0.0, 1.0
    share = hits / total
    denominator = 1 + Z95**2 / total
    centre = (share + Z95**2 / (2 * total)) / denominator
    half = Z95 * math.sqrt(share * (1 - share) / total + Z95**2 / (4 * total**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def share(mask: np.ndarray) -> str:
    return f"{mask.mean():.1%}"


def median_day(days: np.ndarray) -> str:
    if days.size == 0:
        return "–"
    quartiles = np.percentile(days, [25, 50, 75])
    return f"{statistics.median(days.tolist()):g} (IQR {quartiles[0]:g}–{quartiles[2]:g})"


def timed(rows: list[Row], make: Callable[[], list[Row]]) -> None:
    started = time.perf_counter()
    made = make()
    seconds = time.perf_counter() - started
    for index, row in enumerate(made):  # rows of one simulation share its time
        rows.append(
            Row(row.scenario, row.target, row.hits, row.total, row.detail, seconds, index > 0)
        )
        print(format_row(rows[-1]), flush=True)


def format_row(row: Row) -> str:
    low, high = wilson(row.hits, row.total)
    measured = row.hits / row.total if row.total else 0.0
    return (
        f"| {row.scenario} | {row.target} | **{measured:.1%}** ({row.hits}/{row.total}) "
        f"| {low:.1%}–{high:.1%} | {row.detail} "
        f"| {'same run' if row.same_run else f'{row.seconds:.1f} s'} |"
    )


# ------------------------------------------------------------------------------ scenarios
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000, help="pairs per scenario")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--jitter", type=float, default=0.02, help="spread of |P(up) - 1/2|")
    args = parser.parse_args()
    pairs, alpha = args.decisions, args.alpha
    streams = iter(np.random.SeedSequence(args.seed).spawn(16))

    def rng() -> np.random.Generator:
        return np.random.default_rng(next(streams))

    hours_30 = OFFLINE_HOURS + DAYS * HOURS_PER_DAY
    print(
        f"{pairs} pairs per scenario, alpha {alpha:g} (promotion: a 31-look paired trial "
        f"spending alpha t^2; rollback: e-value bar {1 / alpha:g}), "
        f"{OFFLINE_HOURS} offline hours + {HOURS_PER_DAY} live hours a day, a look after the "
        f"offline hours (day 0) and at the end of every day; seed {args.seed}"
    )
    print()
    print("| scenario | target | measured | 95% Wilson | detail | time |")
    print("|---|---|---|---|---|---|")
    rows: list[Row] = []
    started = time.perf_counter()

    for base_rate in (0.50, 0.52):

        def equal(base_rate: float = base_rate) -> list[Row]:
            hours = simulate(
                rng(),
                pairs,
                hours_30,
                base_rate=base_rate,
                challenger=EQUAL_ACCURACY,
                champion=EQUAL_ACCURACY,
                jitter=args.jitter,
            )
            path = promotion_paths(hours, DAYS, alpha, stop_at_promotion=False)
            deploy, with_mcnemar = old_rule(hours)
            where = f"equal 0.53/0.53, up-rate {base_rate:.2f}"
            return [
                Row(
                    f"{where}: new rule, ever promoted in 31 looks (days 0–{DAYS})",
                    "≤ 5%",
                    int((path["promote"] >= 0).sum()),
                    pairs,
                    f"the paired trial alone ever crossed: {share(path['sequential_test'] >= 0)}; "
                    f"its exact level given these pairs' discordant counts: "
                    f"{path['level'].mean():.2%}",
                    0.0,
                ),
                Row(
                    f"{where}: old rule, one look on {OFFLINE_HOURS} offline hours",
                    "contrast (was ~47%)",
                    int(deploy.sum()),
                    pairs,
                    "gain > 0 and log loss ≤ champion's + 0.02",
                    0.0,
                ),
                Row(
                    f"{where}: old rule + exact McNemar p < 0.05, one look",
                    "contrast",
                    int(with_mcnemar.sum()),
                    pairs,
                    "two-sided binomial test on discordant hours",
                    0.0,
                ),
            ]

        timed(rows, equal)

    def better() -> list[Row]:
        hours = simulate(
            rng(),
            pairs,
            OFFLINE_HOURS + DAYS * HOURS_PER_DAY,
            base_rate=0.5,
            challenger=BETTER_ACCURACY,
            champion=EQUAL_ACCURACY,
            jitter=args.jitter,
        )
        path = promotion_paths(hours, DAYS, alpha, stop_at_promotion=True)
        day = path["promote"]
        within = (day >= 0) & (day <= DAYS)
        return [
            Row(
                f"better 0.58/0.53, up-rate 0.50: promoted by day {DAYS} (the trial's end)",
                "≥ 80%",
                int(within.sum()),
                pairs,
                f"median day of those {median_day(day[within])}; "
                f"on the offline hours alone (day 0) {share(day == 0)}",
                0.0,
            )
        ]

    timed(rows, better)

    for champion in (STRONG_CHAMPION, WEAK_CHAMPION):

        def constant(champion: float = champion) -> list[Row]:
            hours = simulate(
                rng(),
                pairs,
                hours_30,
                base_rate=0.5,
                challenger=None,
                champion=champion,
                jitter=args.jitter,
            )
            path = promotion_paths(hours, DAYS, alpha, stop_at_promotion=False)
            return [
                Row(
                    f"constant P(up) {CONSTANT_P_UP} vs champion {champion:.2f}: ever promoted",
                    "0",
                    int((path["promote"] >= 0).sum()),
                    pairs,
                    "held at some look: "
                    + ", ".join(
                        f"{name} {share(first >= 0)}"
                        for name, first in path.items()
                        if name not in ("promote", "others", "level")
                    )
                    + f"; all but {DEGENERATE} (one class on ≤ {MAX_ONE_CLASS_SHARE:.0%} of "
                    f"hours) {share(path['others'] >= 0)}",
                    0.0,
                )
            ]

        timed(rows, constant)

    max_discordant = LONG_DAYS * HOURS_PER_DAY
    bounds_started = time.perf_counter()
    bounds = rejection_bounds(max_discordant, alpha)
    bounds_seconds = time.perf_counter() - bounds_started

    for days in (DAYS, LONG_DAYS):

        def equal_rollback(days: int = days) -> list[Row]:
            first = first_rollback(
                rng(), pairs, days, EQUAL_ACCURACY, EQUAL_ACCURACY, alpha, bounds
            )
            return [
                Row(
                    f"rollback, equal 0.53/0.53: ever rolled back in {days} days, {name} looks",
                    "≤ 5%",
                    int((first[name] >= 0).sum()),
                    pairs,
                    "looks every hour from hour 48"
                    if name == "hourly"
                    else f"{days} looks, end of each day",
                    0.0,
                )
                for name in ("daily", "hourly")
            ]

        timed(rows, equal_rollback)

    def worse_rollback() -> list[Row]:
        first = first_rollback(rng(), pairs, DAYS, WORSE_ACCURACY, EQUAL_ACCURACY, alpha, bounds)
        made = []
        for name in ("daily", "hourly"):
            hour = first[name]
            days = np.ceil(hour[hour >= 0] / HOURS_PER_DAY)
            made.append(
                Row(
                    f"rollback, worse new 0.48 vs previous 0.53: rolled back by day {DAYS}, "
                    f"{name} looks",
                    "report",
                    int((hour >= 0).sum()),
                    pairs,
                    f"median day of those {median_day(days)}",
                    0.0,
                )
            )
        return made

    timed(rows, worse_rollback)
    print()
    print(
        f"rejection bounds for up to {max_discordant} discordant hours: {bounds_seconds:.1f} s "
        f"(e.g. {bounds[100]} of 100, {bounds[200]} of 200, {bounds[300]} of 300); "
        f"total {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
