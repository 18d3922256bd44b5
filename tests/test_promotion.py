"""The promotion rule as a pure function: each condition can refuse on its own, the
sequential test keeps its level over repeated looks, and the counts add up."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from btcmlops.mlops.retraining.paired_tests import (
    MIXTURE_UPPER,
    group_sequential_boundaries,
    log_mixture_e_value,
    log_mixture_e_values,
    mixture_e_value,
    sequential_paired_test,
    spent_alpha,
    trial_look,
)
from btcmlops.mlops.retraining.promotion import CONDITIONS, PairedCounts, decide_promotion

# A challenger that passes everything on 400 hours: 60% right against a 50% champion.
GOOD = PairedCounts(
    hours=400,
    actual_up=200,
    challenger_correct=240,
    champion_correct=200,
    challenger_only=90,
    champion_only=50,
    challenger_predicted_up=210,
    last_hour_correct=200,
    challenger_log_loss_sum=400 * 0.67,
)
LAST_LOOK = {"alpha": 0.05, "earlier_discordant": [100] * 30}  # the trial's 31st look


def test_a_challenger_that_meets_every_condition_is_promoted():
    decision = decide_promotion(GOOD, **LAST_LOOK)
    assert decision.promote is True
    assert decision.failed == []
    assert all(decision.conditions.values())
    evidence = decision.evidence()
    assert evidence["hours"] == 400
    assert evidence["test"]["wins"] == 90 and evidence["test"]["losses"] == 50
    bounds = group_sequential_boundaries([100] * 30 + [140], alpha=0.05)
    assert evidence["test"]["threshold"] == bounds[-1] <= 90 and evidence["test"]["look"] == 30
    # the first look spends little of alpha: the same counts are not enough there
    first = decide_promotion(GOOD, alpha=0.05)
    assert first.failed == ["sequential_test"] and first.test.boundary > 90


@pytest.mark.parametrize(
    ("condition", "change"),
    [
        # a draw on the discordant hours: the paired trial is not convinced
        ("sequential_test", {"challenger_only": 70, "champion_only": 70, "champion_correct": 240}),
        # the hours were 62% up: "always up" scores 0.62 > 0.60
        ("beats_majority", {"actual_up": 248, "challenger_log_loss_sum": 400 * 0.655}),
        # the last hour's direction was right 61% of the time
        ("beats_last_hour", {"last_hour_correct": 244}),
        # probabilities worse than the constant base rate (ln 2 = 0.693 at a 50% up rate)
        ("beats_base_rate_log_loss", {"challenger_log_loss_sum": 400 * 0.70}),
        # "up" on 96% of the hours
        ("not_degenerate", {"challenger_predicted_up": 384}),
    ],
)
def test_each_condition_alone_can_refuse(condition, change):
    decision = decide_promotion(replace(GOOD, **change), **LAST_LOOK)
    assert decision.promote is False
    assert decision.failed == [condition]
    assert condition in decision.reason


def test_a_constant_predictor_never_replaces_a_champion():
    # "always up" at the hours' majority, with its base-rate probability
    constant = PairedCounts.from_outcomes(
        actual=np.r_[np.ones(210), np.zeros(190)].astype(int),
        challenger_p_up=np.full(400, 0.525),
        champion_p_up=np.r_[
            np.full(150, 0.6), np.full(60, 0.4), np.full(140, 0.4), np.full(50, 0.6)
        ],
        last_hour_direction=np.zeros(400),
    )
    decision = decide_promotion(constant, alpha=0.05)
    assert decision.promote is False
    assert "not_degenerate" in decision.failed
    assert decision.one_class_share == 1.0


def test_without_a_champion_only_the_baselines_and_degeneracy_count():
    decision = decide_promotion(replace(GOOD, champion_only=200), alpha=0.05, paired=False)
    assert decision.conditions["sequential_test"] is True
    assert decision.promote is True
    assert decision.champion_accuracy is None


def test_no_hours_is_no_promotion():
    decision = decide_promotion(PairedCounts(), alpha=0.05)
    assert decision.promote is False and set(decision.failed) == set(CONDITIONS)


def test_counts_from_outcomes_add_up_like_the_concatenated_hours():
    rng = np.random.default_rng(3)
    actual = rng.integers(0, 2, 300)
    new, old = rng.random(300), rng.random(300)
    last = rng.integers(0, 2, 300).astype(float)
    last[::17] = np.nan
    whole = PairedCounts.from_outcomes(actual, new, old, last)
    parts = PairedCounts.from_outcomes(actual[:120], new[:120], old[:120], last[:120])
    parts = parts + PairedCounts.from_outcomes(actual[120:], new[120:], old[120:], last[120:])
    assert parts.hours == whole.hours == 300
    for name in ("actual_up", "challenger_only", "champion_only", "last_hour_correct"):
        assert getattr(parts, name) == getattr(whole, name)
    assert parts.challenger_log_loss_sum == pytest.approx(whole.challenger_log_loss_sum)
    right_new = (new > 0.5).astype(int) == actual
    right_old = (old > 0.5).astype(int) == actual
    assert whole.challenger_only == int((right_new & ~right_old).sum())


def test_the_mixture_e_value_matches_its_integral():
    from scipy.integrate import quad

    upper = MIXTURE_UPPER
    for k, n in [(0, 0), (3, 5), (30, 40), (12, 40), (311, 558)]:

        def likelihood_ratio(p, k=k, n=n):
            return np.exp(k * np.log(2 * p) + (n - k) * np.log(2 * (1 - p))) / (upper - 0.5)

        integral, _ = quad(likelihood_ratio, 0.5, upper, limit=200)
        assert mixture_e_value(k, n) == pytest.approx(integral, rel=1e-8)
    assert log_mixture_e_values(np.array([3, 30]), np.array([5, 40])) == pytest.approx(
        [log_mixture_e_value(3, 5), log_mixture_e_value(30, 40)]
    )


def test_sequential_test_refuses_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        sequential_paired_test(1, 1, 1.5)
    with pytest.raises(ValueError, match="successes"):
        log_mixture_e_value(5, 3)


@pytest.mark.slow
def test_equal_models_watched_every_day_are_rarely_rolled_back():
    """The rollback e-value and Ville's inequality: 2,000 equal pairs, 60 daily looks each."""
    rng = np.random.default_rng(17)
    pairs, days, per_day = 2_000, 60, 24
    # discordant hours only matter: each favours either side with probability 1/2
    discordant = rng.binomial(per_day, 0.3, size=(pairs, days))
    wins = rng.binomial(discordant, 0.5)
    crossed = np.zeros(pairs, dtype=bool)
    cumulative_wins = np.cumsum(wins, axis=1)
    cumulative_n = np.cumsum(discordant, axis=1)
    for day in range(days):
        log_e = log_mixture_e_values(cumulative_wins[:, day], cumulative_n[:, day])
        crossed |= log_e >= np.log(20.0)
    assert crossed.mean() <= 0.05
    # and a challenger right on 2/3 of the discordant hours is found
    strong = np.cumsum(rng.binomial(discordant, 2 / 3), axis=1)
    found = log_mixture_e_values(strong[:, -1], cumulative_n[:, -1]) >= np.log(20.0)
    assert found.mean() >= 0.9


def exact_crossing_probability(discordant, bounds, p=0.5):
    """P(wins reach the bound at some look) for wins ~ Binomial(increments, p), exactly."""
    from scipy.stats import binom

    alive, seen, crossed = np.array([1.0]), 0, 0.0
    for n, bound in zip(discordant, bounds, strict=True):
        if n > seen:
            alive = np.convolve(alive, binom.pmf(np.arange(n - seen + 1), n - seen, p))
            seen = n
        crossed += alive[bound:].sum()
        alive[bound:] = 0.0
    return crossed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_trial_spends_no_more_than_alpha_over_its_looks(seed):
    rng = np.random.default_rng(seed)
    discordant = np.cumsum([rng.integers(0, 120), *rng.integers(0, 15, 30)]).tolist()
    bounds = group_sequential_boundaries(discordant, alpha=0.05, trial_looks=31)
    for look in range(len(discordant)):
        spent = exact_crossing_probability(discordant[: look + 1], bounds[: look + 1])
        assert spent <= spent_alpha(look, 31, 0.05) + 1e-12
    # and it spends most of it: the bounds are not needlessly high
    assert exact_crossing_probability(discordant, bounds) > 0.03
    # a better challenger (60 % of discordant hours) crosses more often than the level
    assert exact_crossing_probability(discordant, bounds, p=0.6) > 0.05


def test_after_its_last_look_a_trial_can_no_longer_promote():
    last = trial_look(200, 0, alpha=0.05, earlier_discordant=[10] * 30, trial_looks=31)
    assert last.look == 30 and last.rejects is True  # the last look still counts
    over = trial_look(200, 0, alpha=0.05, earlier_discordant=[10] * 31, trial_looks=31)
    assert over.rejects is False and over.over is True
    assert trial_look(5, 5, alpha=0.05, earlier_discordant=[10] * 30).over is True
    with pytest.raises(ValueError, match="cannot fall"):
        group_sequential_boundaries([10, 5], alpha=0.05)


@pytest.mark.slow
def test_the_trial_promotes_a_better_challenger_and_rarely_an_equal_one():
    """The bench's setting: 220 offline hours then 24 a day, 30 % discordant, 2,000 pairs."""
    rng = np.random.default_rng(17)
    found = {}
    for name, p in (("equal", 0.5), ("better", 0.175 / 0.3)):
        crossed = 0
        for _ in range(2_000):
            increments = [rng.binomial(220, 0.3), *rng.binomial(24, 0.3, 30)]
            discordant = np.cumsum(increments)
            wins = np.cumsum(rng.binomial(increments, p))
            bounds = group_sequential_boundaries(discordant.tolist(), alpha=0.05)
            crossed += bool((wins >= np.array(bounds)).any())
        found[name] = crossed / 2_000
    assert found["equal"] <= 0.06  # 0.05 in expectation at most; Monte Carlo noise
    assert found["better"] >= 0.78
