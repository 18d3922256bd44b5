"""The two ways a champion leaves without a better challenger: rollback and fallback.

**Rollback.** A champion that arrived by a deployment (or a manual promotion) is judged
against the champion it replaced, which keeps predicting in shadow, on the same live hours:
the sequential paired test of :mod:`~btcmlops.mlops.retraining.promotion` with the previous
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
from typing import Any

import numpy as np
from sqlalchemy import select, type_coerce
from sqlalchemy.types import NullType

from btcmlops.clock import Clock
from btcmlops.config import Settings
from btcmlops.db.models import PredictionLog
from btcmlops.db.store import Store
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.promotion import (
    PairedCounts,
    SequentialTest,
    sequential_paired_test,
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

    def as_dict(self) -> dict[str, Any]:
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

    def metrics(self, rule: str | None = None) -> dict[str, Any]:
        """Scores in the retraining history's field names: the champion's, or a baseline's."""
        return {
            "rows": self.hours,
            "accuracy": self.champion_accuracy if rule is None else self.baseline_accuracy[rule],
            "actual_up_rate": self.actual_up_rate,
            "predicted_up_rate": self.champion_up_rate
            if rule is None
            else self.baseline_up_rate[rule],
        }


def paired_counts(
    store: Store, challenger: str, champion: str, since: datetime, until: datetime
) -> PairedCounts:
    """``queries.paired_hours(...).counts()`` without the last hour's direction (the rollback
    test reads the two models only), from one narrow read of both versions.

    The hourly rollback check counts every paired hour since the deployment; the rows are
    paired here in plain Python, without building a frame per version. The pairing is the
    same: the target hours in ``(since, until]`` that both versions predicted and that
    resolved, each version's first logged resolved prediction standing for the hour, and the
    challenger's actual direction.
    """
    query = (
        select(
            PredictionLog.model_version,
            # The hour as the database returns it, only compared with itself: equal hours are
            # equal values, and not converting each one to a datetime halves the read.
            type_coerce(PredictionLog.target_ts, NullType()),
            PredictionLog.actual_direction,
            PredictionLog.probability_up,
        )
        .where(
            PredictionLog.model_version.in_([challenger, champion]),
            PredictionLog.outcome_status == queries.RESOLVED,
            PredictionLog.target_ts > since,
            PredictionLog.target_ts <= until,
        )
        .order_by(PredictionLog.id)
    )
    with store.session() as session:
        rows = session.connection().execute(query).all()
    first: dict[str, dict[object, tuple[int, float]]] = {challenger: {}, champion: {}}
    for version, target_ts, actual, p_up in rows:  # oldest id first: the first one stays
        first[version].setdefault(target_ts, (actual, p_up))
    challenger_hours, champion_hours = first[challenger], first[champion]
    paired = [
        (actual, p_up, champion_hours[hour][1])
        for hour, (actual, p_up) in challenger_hours.items()
        if hour in champion_hours
    ]
    actual, challenger_p_up, champion_p_up = zip(*paired, strict=True) if paired else ((), (), ())
    return PairedCounts.from_outcomes(
        np.array(actual, dtype=int),
        np.array(challenger_p_up, dtype=float),
        np.array(champion_p_up, dtype=float),
        np.full(len(paired), np.nan),
    )


class DeploymentPairing:
    """The rollback test's paired hours of one deployment, kept between hourly checks.

    :func:`paired_counts` reads every paired hour since the deployment at every check, so a
    champion that stays deployed costs more each hour (a year's backtest spent most of its
    time there). A resolved outcome never changes afterwards (the outcomes job only turns
    pending rows into resolved or expired ones), so each check here reads only the rows
    resolved since the previous one (``outcome_recorded_at`` at or after the last seen, ids
    already seen skipped) and updates the pairs they touch. The counts equal
    :func:`paired_counts`'s: the same rows stand for each hour (a version's lowest id among
    its resolved rows of the hour), only the floating-point sum of log losses may differ in
    its last digits (it is summed in another order; the rollback test does not read it).
    """

    def __init__(self, challenger: str, champion: str, since: datetime) -> None:
        self.challenger, self.champion, self.since = challenger, champion, since
        self._first: dict[str, dict[datetime, tuple[int, int, float]]] = {
            challenger: {},
            champion: {},
        }
        # The paired hours as columns (the challenger's actual direction, both P(up)), in
        # arrays that grow by doubling; ``_slot`` gives each paired hour its row.
        self._slot: dict[datetime, int] = {}
        self._columns = np.empty((3, 1024))
        self._seen: set[int] = set()
        self._watermark: datetime | None = None

    def counts(self, store: Store) -> PairedCounts:
        """Read the newly resolved rows, then count every paired hour."""
        versions = PredictionLog.model_version.in_([self.challenger, self.champion])
        query = select(
            PredictionLog.id,
            PredictionLog.model_version,
            PredictionLog.target_ts,
            PredictionLog.actual_direction,
            PredictionLog.probability_up,
            PredictionLog.outcome_status,
            PredictionLog.outcome_recorded_at,
        )
        if self._watermark is None:
            query = query.where(
                versions,
                PredictionLog.outcome_status == queries.RESOLVED,
                PredictionLog.target_ts > self.since,
            )
        else:
            # Only what ix_prediction_logs_version_recorded serves (given more to filter on,
            # SQLite's planner ranges over the status index instead); the rest is checked below.
            query = query.where(versions, PredictionLog.outcome_recorded_at >= self._watermark)
        with store.session() as session:
            rows = session.connection().execute(query.order_by(PredictionLog.id)).all()
        for row_id, version, hour, actual, p_up, status, recorded_at in rows:
            if row_id in self._seen:
                continue
            self._seen.add(row_id)
            if self._watermark is None or recorded_at > self._watermark:
                self._watermark = recorded_at
            if status != queries.RESOLVED or hour <= self.since:
                continue
            standing = self._first[version].get(hour)
            if standing is not None and standing[0] < row_id:
                continue  # an older row already stands for this hour
            self._first[version][hour] = (row_id, actual, p_up)
            self._pair(hour)
        actual, challenger_p_up, champion_p_up = self._columns[:, : len(self._slot)]
        return PairedCounts.from_outcomes(
            actual.astype(int), challenger_p_up, champion_p_up, np.full(actual.size, np.nan)
        )

    def _pair(self, hour: datetime) -> None:
        challenger = self._first[self.challenger].get(hour)
        champion = self._first[self.champion].get(hour)
        if challenger is None or champion is None:
            return
        slot = self._slot.setdefault(hour, len(self._slot))
        if slot == self._columns.shape[1]:
            self._columns = np.concatenate([self._columns, np.empty_like(self._columns)], axis=1)
        # the challenger's actual direction, as paired_counts takes it
        self._columns[:, slot] = (challenger[1], challenger[2], champion[2])


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
    def check_auto_rollback(self, feature_set: str, model_type: str) -> dict[str, Any] | None:
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
        verdict: dict[str, Any] = {
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
        evidence = {
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
