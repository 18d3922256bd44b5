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
5. *Dependent nulls*: equal models that take turns being better (a hidden regime, mean 48 h,
   in which one wins 60 % of the discordant hours): how often the trial alone ever crosses,
   and how often the rollback test ever fires in 90 days of hourly looks.
6. *Fallback*: a champion as good as the naive baseline (0.52 both) watched daily for 60
   days from its takeover and from a drift onset at day 30 (α/2 each): share that ever
   falls back; and a champion at 0.46: share and median day.
7. *Performance check* on a champion whose accuracy never changes: share of daily looks that
   fire, with the test accuracy that selected it as baseline (the winner's curse) and with
   its validation hours.

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

from btcmlops.mlops.retraining.paired_tests import (
    group_sequential_boundaries,
    sequential_paired_test,
    trial_level,
)
from btcmlops.mlops.retraining.promotion import (
    MAX_ONE_CLASS_SHARE,
    PairedCounts,
    decide_promotion,
)
from btcmlops.mlops.significance import two_proportion_test

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
REGIME_EDGE = 0.1  # equal models that take turns being better: 0.6 / 0.4 of discordant hours
REGIME_DWELL_HOURS = 48.0
FALLBACK_DAYS = 60
FALLBACK_ONSET_DAY = 30
SELECTION_HOURS = 221  # a challenger's comparison hours (the demo's)
VALIDATION_HOURS = 110  # its validation window, 10 % of a 60-day split
LIVE_HOURS = 168  # the performance check's 7-day window
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


# --------------------------------------------------------- realistic nulls and the checks
def regime_wins(
    rng: np.random.Generator, pairs: int, hours: int, edge: float, dwell_hours: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (wins, discordant) per hour when equal models take turns being better.

    Each hour is discordant with probability 0.3. A hidden two-state regime, switching with
    probability ``1 / dwell_hours`` an hour, makes the first model win a discordant hour with
    probability ``1/2 + edge`` in one state and ``1/2 - edge`` in the other: over time the
    two are equal, but their outcomes are dependent (persistent runs of luck, as volatility
    regimes give real models).
    """
    switch = rng.random((pairs, hours)) < 1.0 / dwell_hours
    state = (np.cumsum(switch, axis=1) + rng.integers(0, 2, (pairs, 1))) % 2
    win_probability = np.where(state == 1, 0.5 + edge, 0.5 - edge)
    discordant = rng.random((pairs, hours)) < 0.3
    wins = discordant & (rng.random((pairs, hours)) < win_probability)
    return np.cumsum(wins, axis=1), np.cumsum(discordant, axis=1)


def trial_crossings(wins: np.ndarray, discordant: np.ndarray, alpha: float) -> np.ndarray:
    """Per pair, whether the promotion trial alone ever crosses (offline look + 30 days)."""
    looks = [OFFLINE_HOURS - 1 + HOURS_PER_DAY * day for day in range(DAYS + 1)]
    crossed = np.zeros(wins.shape[0], dtype=bool)
    for pair in range(wins.shape[0]):
        counts = discordant[pair, looks]
        bounds = np.array(group_sequential_boundaries(counts.tolist(), alpha=alpha))
        crossed[pair] = bool((wins[pair, looks] >= bounds).any())
    return crossed


def first_fallback(
    rng: np.random.Generator,
    pairs: int,
    days: int,
    champion: float,
    baseline: float,
    alpha: float,
    onset_day: int,
) -> np.ndarray:
    """Day of the first fallback (-1 never): the baseline must prove itself better than the
    champion, read daily from the takeover and from a drift onset, each at alpha / 2."""
    bounds = rejection_bounds(days * HOURS_PER_DAY, alpha / 2)
    baseline_right, champion_right = paired_correctness(
        rng, (pairs, days * HOURS_PER_DAY), baseline, champion
    )
    wins_hourly = baseline_right & ~champion_right
    discordant_hourly = wins_hourly | (champion_right & ~baseline_right)
    first = np.full(pairs, -1)
    for start in (0, onset_day * HOURS_PER_DAY):
        wins = np.cumsum(wins_hourly[:, start:], axis=1)
        discordant = np.cumsum(discordant_hourly[:, start:], axis=1)
        daily = np.arange(HOURS_PER_DAY - 1, wins.shape[1], HOURS_PER_DAY)
        hits = wins[:, daily] >= bounds[discordant[:, daily]]
        day = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1 + start // HOURS_PER_DAY, -1)
        first = np.where((first < 0) | ((day >= 0) & (day < first)), day, first)
    return first


def performance_triggers(
    rng: np.random.Generator, pairs: int, accuracy: float, *, selected: bool
) -> np.ndarray:
    """Per pair and daily look, whether the performance check fires on a champion whose
    accuracy never changes (a 0.10 drop confirmed at p < 0.05 over the last 168 outcomes).

    Its baseline is either the test accuracy that selected it (``selected``: the better of
    two equal candidates on 221 test hours, the winner's curse) or 110 validation hours that
    no selection read.
    """
    if selected:
        candidates = rng.binomial(SELECTION_HOURS, accuracy, size=(pairs, 2))
        base_correct, base_rows = candidates.max(axis=1), SELECTION_HOURS
    else:
        base_correct, base_rows = rng.binomial(VALIDATION_HOURS, accuracy, pairs), VALIDATION_HOURS
    live = rng.random((pairs, (DAYS + 7) * HOURS_PER_DAY)) < accuracy
    fired = np.zeros((pairs, DAYS), dtype=bool)
    for day in range(DAYS):
        end = (day + 7) * HOURS_PER_DAY
        correct = live[:, end - LIVE_HOURS : end].sum(axis=1)
        for pair in range(pairs):
            test = two_proportion_test(
                int(base_correct[pair]), base_rows, int(correct[pair]), LIVE_HOURS
            )
            fired[pair, day] = test.difference >= 0.10 and test.p_value < 0.05
    return fired


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

    def dependent_null() -> list[Row]:
        wins, discordant = regime_wins(
            rng(), pairs, OFFLINE_HOURS + DAYS * HOURS_PER_DAY, REGIME_EDGE, REGIME_DWELL_HOURS
        )
        promoted = trial_crossings(wins, discordant, alpha)
        r_wins, r_discordant = regime_wins(
            rng(), pairs, LONG_DAYS * HOURS_PER_DAY, REGIME_EDGE, REGIME_DWELL_HOURS
        )
        hour = np.arange(1, r_wins.shape[1] + 1)
        rolled = ((r_wins >= bounds[r_discordant]) & (hour >= ROLLBACK_FIRST_HOUR)).any(axis=1)
        where = f"0.6/0.4 of discordant hours by turns, mean regime {REGIME_DWELL_HOURS:g} h"
        return [
            Row(
                "dependent null, equal models taking turns: the trial ever crosses (31 looks)",
                "≤ 5%",
                int(promoted.sum()),
                pairs,
                where + "; the trial alone (an upper bound for the rule)",
                0.0,
            ),
            Row(
                f"dependent null, equal models taking turns: ever rolled back in {LONG_DAYS} "
                "days, hourly looks",
                "≤ 5%",
                int(rolled.sum()),
                pairs,
                where,
                0.0,
            ),
        ]

    timed(rows, dependent_null)

    def fallback() -> list[Row]:
        made = []
        for champion, target in ((0.52, "≤ 5%"), (0.46, "report")):
            day = first_fallback(
                rng(), pairs, FALLBACK_DAYS, champion, 0.52, alpha, FALLBACK_ONSET_DAY
            )
            detail = (
                f"daily looks for {FALLBACK_DAYS} days from the takeover and from day "
                f"{FALLBACK_ONSET_DAY}, each at alpha/2"
            )
            if champion < 0.52:
                detail += f"; median day of those {median_day(day[day >= 0])}"
            made.append(
                Row(
                    f"fallback, champion {champion:.2f} vs baseline 0.52: ever falls back",
                    target,
                    int((day >= 0).sum()),
                    pairs,
                    detail,
                    0.0,
                )
            )
        return made

    timed(rows, fallback)

    def performance() -> list[Row]:
        made = []
        for selected in (True, False):
            fired = performance_triggers(rng(), pairs, EQUAL_ACCURACY, selected=selected)
            source = "the test accuracy that selected it" if selected else "its validation hours"
            made.append(
                Row(
                    f"performance check, unchanged 0.53 champion, baseline = {source}: "
                    "fires per daily look",
                    "report" if selected else "below the selected baseline's",
                    int(fired.sum()),
                    fired.size,
                    f"ever in {DAYS} daily looks: {share(fired.any(axis=1))}",
                    0.0,
                )
            )
        return made

    timed(rows, performance)
    print()
    print(
        f"rejection bounds for up to {max_discordant} discordant hours: {bounds_seconds:.1f} s "
        f"(e.g. {bounds[100]} of 100, {bounds[200]} of 200, {bounds[300]} of 300); "
        f"total {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
