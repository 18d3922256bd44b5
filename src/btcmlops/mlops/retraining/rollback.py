"""The two ways a champion leaves without a better challenger: rollback and fallback.

**Rollback.** A champion that arrived by a deployment (or a manual promotion) is judged
against the champion it replaced, which keeps predicting in shadow, on the same live hours:
the sequential paired test of :mod:`~btcmlops.mlops.retraining.paired_tests` with the previous
champion as the side that must prove itself better, read every hour once
``auto_rollback_window`` paired hours exist, at ``auto_rollback_alpha``. Two equal models
are therefore rolled back with probability at most alpha however long they are watched. A
champion that arrived by a rollback is not judged again (no ping-pong).

**Fallback.** A learned champion that the same test finds significantly worse than a naive
baseline (the majority class of its training window, or the last hour's direction) on its
live hours is replaced by that baseline. The test is started twice: at the takeover, and at
the first feature-drift onset since then (a time the features alone fix, so starting there
peeks at no outcome); a model that was good before a change and bad after it would
otherwise need its bad hours to outweigh its good ones first. Each start gets half of
``promotion_alpha`` (a union bound keeps the level). The baseline is registered as a model
version of its own (its ``hyperparameters`` name the rule) and served like any model.
``/health``, ``/models`` and the dashboard say so in words; a learned model replaces it
only by the promotion rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from btcmlops.clock import Clock
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.deployment_pairing import DeploymentPairing
from btcmlops.mlops.retraining.paired_tests import SequentialTest, sequential_paired_test
from btcmlops.mlops.retraining.results import (
    FallbackEvidence,
    FallbackVerdictDict,
    LiveMetrics,
    RollbackVerdict,
)
from btcmlops.mlops.retraining.shadows import JUDGED_BY_ROLLBACK, Shadows
from btcmlops.modeling.baselines import LAST_HOUR, MAJORITY, RULE_WORDS
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import SHADOW, ModelVersionInfo
from btcmlops.modeling.training import TrainingData, load_training_data, train_on

log = logging.getLogger(__name__)

AUTO_ROLLBACK = "auto_rollback"
FALLBACK = "fallback"


@dataclass(frozen=True)
class FallbackVerdict:
    """The learned champion against each naive baseline on its live hours."""

    feature_set: str
    model_type: str
    champion_version: str
    hours: int
    tests: dict[str, SequentialTest]
    fell_back_to: str | None
    fallback_version: str | None
    reason: str

    def as_dict(self) -> FallbackVerdictDict:
        return {
            "feature_set": self.feature_set,
            "model_type": self.model_type,
            "champion_version": self.champion_version,
            "hours": self.hours,
            "tests": {rule: test.as_dict() for rule, test in self.tests.items()},
            "fell_back_to": self.fell_back_to,
            "fallback_version": self.fallback_version,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class BaselineComparison:
    """A learned champion's live hours against each naive baseline on the same hours."""

    hours: int
    tests: dict[str, SequentialTest]
    champion_accuracy: float
    baseline_accuracy: dict[str, float]
    actual_up_rate: float
    champion_up_rate: float
    baseline_up_rate: dict[str, float]

    def strongest(self) -> float:
        return max(test.e_value for test in self.tests.values())

    def metrics(self, rule: str | None = None) -> LiveMetrics:
        """Scores in the retraining history's field names: the champion's, or a baseline's."""
        return {
            "rows": self.hours,
            "accuracy": self.champion_accuracy if rule is None else self.baseline_accuracy[rule],
            "actual_up_rate": self.actual_up_rate,
            "predicted_up_rate": self.champion_up_rate
            if rule is None
            else self.baseline_up_rate[rule],
        }


class Safeguards:
    """Paired rollback and the declared baseline fallback of every pair."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        registry: ModelRegistry,
        shadows: Shadows,
        on_champion_change: Callable[[str, str], None] | None = None,
        drift_onset: Callable[[str, datetime, datetime], datetime | None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.shadows = shadows
        self.on_champion_change = on_champion_change
        self.drift_onset = drift_onset
        self._pairings: dict[tuple[str, str, datetime], DeploymentPairing] = {}

    # ------------------------------------------------------------------------ rollback
    def check_auto_rollback(self, feature_set: str, model_type: str) -> RollbackVerdict | None:
        """Judge the newest deployed champion against the shadowed champion it replaced."""
        latest = self.shadows.latest_change(feature_set, model_type)
        if latest is None or latest.action not in JUDGED_BY_ROLLBACK:
            return None
        if latest.previous_version is None:
            return None
        champion = self.registry.champion(feature_set, model_type)
        if champion is None or champion.version != latest.version:
            return None
        previous = self.registry.get(latest.previous_version)
        window = self.settings.auto_rollback_window
        verdict: RollbackVerdict = {
            "feature_set": feature_set,
            "model_type": model_type,
            "champion_version": champion.version,
            "previous_version": previous.version,
            "outcomes": 0,
            "window": window,
            "rolled_back": False,
        }
        if previous.status != SHADOW:
            verdict["status"] = "not_judged"
            verdict["reason"] = (
                f"{previous.version} no longer predicts in shadow ({previous.status}); "
                "without paired hours the deployment is not judged"
            )
            return verdict
        counts = self._pairing(previous.version, champion.version, latest.changed_at).counts(
            self.store
        )
        verdict["outcomes"] = counts.hours
        if counts.hours < window:
            verdict["status"] = "waiting"
            return verdict
        test = sequential_paired_test(
            counts.challenger_only, counts.champion_only, self.settings.auto_rollback_alpha
        )
        live = counts.champion_correct / counts.hours
        before = counts.challenger_correct / counts.hours
        verdict.update(
            status="judged",
            live_accuracy=live,
            previous_accuracy=before,
            evidence=test.as_dict(),
        )
        if not test.rejects:
            return verdict
        reason = (
            f"automatic rollback: on the same {counts.hours} live hours {champion.version} "
            f"scored {live:.3f} and the previous champion {previous.version} {before:.3f}; "
            f"the previous one was right alone on {test.wins} hours and the new one on "
            f"{test.losses} (e-value {test.e_value:.3g} >= {test.threshold:g})"
        )
        self.registry.rollback(
            feature_set, model_type, actor="auto-rollback", reason=reason, action=AUTO_ROLLBACK
        )
        self._changed(feature_set, model_type)
        verdict.update(rolled_back=True, reason=reason)
        return verdict

    def _pairing(self, previous: str, champion: str, since: datetime) -> DeploymentPairing:
        """The deployment's pairing, kept while it is the one judged (older ones dropped)."""
        key = (previous, champion, since)
        if key not in self._pairings:
            self._pairings = {key: DeploymentPairing(previous, champion, since)}
        return self._pairings[key]

    # ------------------------------------------------------------------------ fallback
    def check_fallback(self, feature_set: str, model_type: str) -> FallbackVerdict | None:
        """Fall back to a naive baseline the learned champion is significantly worse than."""
        champion = self.registry.champion(feature_set, model_type)
        if champion is None or champion.baseline_rule is not None:
            return None
        now = self.clock.now()
        took_over = self.shadows.took_over(champion) or champion.created_at
        starts = [took_over]
        onset = self.drift_onset(feature_set, took_over, now) if self.drift_onset else None
        if onset is not None and onset > took_over:
            starts.append(onset)
        alpha = self.settings.promotion_alpha / len(starts)
        # one read of the champion's live hours since it took over; the hours since the
        # onset are their tail
        outcomes = queries.version_outcomes(self.store, champion.version, took_over, now)
        last_hour = None
        if len(outcomes) >= self.settings.retrain_min_predictions:
            last_hour = queries.last_hour_before(
                self.store, self.settings.symbol, outcomes.target_ts
            )
        verdicts = [
            self._against_baselines(champion, outcomes, last_hour, start, alpha) for start in starts
        ]
        if verdicts[0] is None:
            return None
        compared = max(
            (verdict for verdict in verdicts if verdict is not None),
            key=BaselineComparison.strongest,
        )
        hours, tests = compared.hours, compared.tests
        worse_than = [rule for rule, test in tests.items() if test.rejects]
        if not worse_than:
            return FallbackVerdict(
                feature_set,
                model_type,
                champion.version,
                hours,
                tests,
                None,
                None,
                f"{champion.version} is not significantly worse than a naive baseline on "
                f"{hours} live hours",
            )
        rule = max(worse_than, key=lambda name: tests[name].e_value)
        test = tests[rule]
        accuracy = compared.champion_accuracy
        baseline_accuracy = compared.baseline_accuracy[rule]
        reason = (
            f"fallback: {champion.version} was right on {accuracy:.3f} of {hours} live hours, "
            f"the baseline '{RULE_WORDS[rule]}' on {baseline_accuracy:.3f}; the baseline was "
            f"right alone on {test.wins} hours and the model on {test.losses} (e-value "
            f"{test.e_value:.3g} >= {test.threshold:g}). The pair now serves that rule, "
            "openly, until a learned challenger beats it"
        )
        fallback = self.register_baseline(
            feature_set, model_type, champion.feature_names, rule, reason
        )
        self.registry.promote(
            fallback.version,
            actor="fallback",
            reason=reason,
            action=FALLBACK,
            displaced_status=SHADOW,
        )
        self.shadows.trim(feature_set, model_type)
        self._changed(feature_set, model_type)
        evidence: FallbackEvidence = {
            "rule": f"sequential paired test against the naive baselines, alpha {alpha:g} "
            f"from each of {len(starts)} start(s)",
            "since": [start.isoformat() for start in starts],
            "hours": hours,
            "baseline": rule,
            "tests": {name: t.as_dict() for name, t in tests.items()},
        }
        queries.add_decision_run(
            self.store,
            feature_set=feature_set,
            model_type=model_type,
            trigger=FALLBACK,
            decision=FALLBACK,
            reason=reason,
            challenger_version=fallback.version,
            champion_version=champion.version,
            challenger_metrics=compared.metrics(rule),
            champion_metrics=compared.metrics(),
            evidence=evidence,
            at=now,
        )
        return FallbackVerdict(
            feature_set,
            model_type,
            champion.version,
            hours,
            tests,
            rule,
            fallback.version,
            reason,
        )

    def _against_baselines(
        self,
        champion: ModelVersionInfo,
        tenure: queries.VersionOutcomes,
        tenure_last_hour: np.ndarray | None,
        since: datetime,
        alpha: float,
    ) -> BaselineComparison | None:
        """The champion's live hours since ``since`` against each naive baseline, from its
        hours since it took over (``tenure``) and the last hour's direction before each."""
        later = tenure.target_ts > since
        outcomes = tenure.where(later)
        if len(outcomes) < self.settings.retrain_min_predictions or tenure_last_hour is None:
            return None
        last = tenure_last_hour[later]
        right = (outcomes.p_up > 0.5).astype(int) == outcomes.actual
        baseline_right = {
            MAJORITY: outcomes.actual == _training_majority(champion),
            LAST_HOUR: last == outcomes.actual,
        }
        tests = {
            rule: sequential_paired_test(
                int((hits & ~right).sum()), int((right & ~hits).sum()), alpha
            )
            for rule, hits in baseline_right.items()
        }
        majority = _training_majority(champion)
        return BaselineComparison(
            hours=len(outcomes),
            tests=tests,
            champion_accuracy=float(right.mean()),
            baseline_accuracy={rule: float(hits.mean()) for rule, hits in baseline_right.items()},
            actual_up_rate=float(outcomes.actual.mean()),
            champion_up_rate=float((outcomes.p_up > 0.5).mean()),
            baseline_up_rate={MAJORITY: float(majority), LAST_HOUR: float((last == 1).mean())},
        )

    def register_baseline(
        self,
        feature_set: str,
        model_type: str,
        feature_names: list[str],
        rule: str,
        reason: str,
        data: TrainingData | None = None,
    ) -> ModelVersionInfo:
        """The naive ``rule`` fitted on ``data`` (default: the recent window), registered
        under the pair so it is served like any model."""
        if data is None:
            data = load_training_data(
                self.store,
                feature_set,
                clock=self.clock,
                settings=self.settings,
                start=self.clock.now() - timedelta(days=self.settings.retrain_window_days),
                columns=feature_names,
            )
        trained = train_on(
            data,
            feature_set=feature_set,
            model_type=model_type,
            settings=self.settings,
            with_importances=False,
            baseline_rule=rule,
        )
        return self.registry.register(trained, created_by="fallback", reason=reason)

    def _changed(self, feature_set: str, model_type: str) -> None:
        if self.on_champion_change:
            self.on_champion_change(feature_set, model_type)


def _training_majority(champion: ModelVersionInfo) -> int:
    """The class the champion's training window held more often (its majority baseline)."""
    baseline = (champion.metrics.get("baselines") or {}).get("majority_class") or {}
    rate = baseline.get("predicted_up_rate")
    return int(rate is not None and rate > 0.5)
