"""Retraining jobs: take the pair's lease, train a challenger, meet the champion, decide, record.

A retraining trains a challenger on the training window of
:class:`~btcmlops.mlops.retraining.policy.RetrainPolicy` with the chronological split of
``modeling.splits``, then scores the challenger *and the current champion on the same most
recent test hours* (those the champion never trained on), with the naive baselines on those
hours. The rule of :mod:`~btcmlops.mlops.retraining.promotion` decides on those counts: a
challenger that passes is deployed at once (the champion it replaces goes to shadow, for the
rollback check); one that does not is kept in shadow when it is among the pair's best, and
its evidence grows with every live hour until the daily review promotes it or it is
displaced. With no champion yet, the challenger must beat the baselines on its test hours.
Every run, deployed or not, is a ``retraining_runs`` row with its evidence.

One retraining per (feature set, model type) at a time: a lease in the store (``leases``),
so it holds across API worker processes on PostgreSQL too. A second request gets
:class:`~btcmlops.mlops.retraining.jobs.RetrainingInProgressError` (HTTP 409) naming the
running job.

This module is the pair's front door: the decision, the job's lifecycle around its lease,
the shadow review and the history. The training and the decision of one job are
``challenger``'s, the job and its lease ``jobs``', the documents it leaves ``run_records``'.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from btcmlops.clock import Clock
from btcmlops.config import Settings
from btcmlops.db.models import RetrainCheck, RetrainingRun
from btcmlops.db.store import Store
from btcmlops.errors import BtcmlopsError, ConflictError
from btcmlops.features.schema import FEATURE_SETS, validate_feature_set
from btcmlops.jsonable import jsonable
from btcmlops.mlops.leases import Leases
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.challenger import DEPLOY, ChallengerTrial
from btcmlops.mlops.retraining.jobs import (
    LEASE_TTL,
    RetrainingInProgressError,
    RetrainJob,
    lease_name,
)
from btcmlops.mlops.retraining.policy import DriftSummary, RetrainPolicy, SequentialStatusOf
from btcmlops.mlops.retraining.results import (
    PairRetrainStatus,
    RecordedRetrainCheck,
    RetrainBoth,
    RetrainDecisionDict,
    RetrainingRunRecord,
    RetrainResult,
    RetrainStatus,
    RetrainThresholds,
    RollbackVerdict,
    ShadowPromotionEvidence,
    ShadowReport,
    ShadowReview,
    TrainingWindowDict,
)
from btcmlops.mlops.retraining.rollback import FallbackVerdict, Safeguards
from btcmlops.mlops.retraining.run_records import RunRecord, failed_outcome, finish_run
from btcmlops.mlops.retraining.shadows import Shadows
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE, validate_model_type
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import SHADOW, ModelVersionInfo
from btcmlops.modeling.training import TrainedModel, train_on

log = logging.getLogger(__name__)

SHADOW_TRIGGER = "shadow"


class AutomatedRetraining:
    """Decides, runs and records retraining, promotion, rollback and fallback per pair."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        registry: ModelRegistry,
        *,
        drift_summary: DriftSummary | None = None,
        sequential_status: SequentialStatusOf | None = None,
        leases: Leases | None = None,
        on_champion_change: Callable[[str, str], None] | None = None,
        train_challenger: Callable[..., TrainedModel] = train_on,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.leases = leases or Leases(store)
        self.on_champion_change = on_champion_change
        self.policy = RetrainPolicy(
            store, clock, settings, registry, drift_summary, sequential_status
        )
        self.shadows = Shadows(store, clock, settings, registry)
        self.safeguards = Safeguards(
            store,
            clock,
            settings,
            registry,
            self.shadows,
            self._champion_changed,
            drift_onset=self.policy.drift_onset,
        )

        self.trial = ChallengerTrial(
            store,
            clock,
            settings,
            registry,
            policy=self.policy,
            shadows=self.shadows,
            safeguards=self.safeguards,
            champion_changed=self._champion_changed,
            train_challenger=train_challenger,
        )

    # =================================================================== the decision
    def should_retrain(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE, *, record: bool = True
    ) -> RetrainDecisionDict:
        """Every trigger and blocker of retraining the pair, with its numbers."""
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        decision = self.policy.decide(feature_set, model_type).as_dict()
        if record:
            with self.store.session() as session:
                session.add(
                    RetrainCheck(
                        feature_set=feature_set,
                        model_type=model_type,
                        should_retrain=decision["should_retrain"],
                        decision=jsonable(decision),
                        checked_at=decision["timestamp"],
                    )
                )
        return decision

    def minimum_training_rows(self) -> int:
        return self.policy.minimum_training_rows()

    def training_window(
        self,
        feature_set: str,
        model_type: str,
        now: datetime,
        *,
        performance_degraded: bool = False,
    ) -> TrainingWindowDict:
        window = self.policy.training_window(
            feature_set, model_type, now, performance_degraded=performance_degraded
        )
        return {"start": window.start, "why": window.why}

    def status(self, model_type: str = DEFAULT_MODEL_TYPE) -> RetrainStatus:
        """The ``/retrain/status`` answer: the decision per feature set plus the thresholds."""
        pairs: dict[str, PairRetrainStatus] = {}
        for feature_set in FEATURE_SETS:
            decision = self.should_retrain(feature_set, model_type, record=False)
            pairs[feature_set] = {
                "should_retrain": decision["should_retrain"],
                "reasons": decision["reasons"],
                "data_available": decision["data_check"]["sample_count"],
                "data_required": decision["data_check"]["min_required"],
                "champion_version": decision["champion_version"],
            }
        settings = self.settings
        thresholds: RetrainThresholds = {
            "accuracy_degradation": settings.retrain_accuracy_degradation,
            "drift_severity": settings.retrain_drift_severity,
            "min_samples": settings.retrain_min_samples,
            "min_predictions": settings.retrain_min_predictions,
            "interval_days": settings.retrain_interval_days,
            "cooldown_hours": settings.retrain_cooldown_hours,
            "window_days": settings.retrain_window_days,
            "promotion_alpha": settings.promotion_alpha,
            "rollback_alpha": settings.auto_rollback_alpha,
            "shadow_max": settings.shadow_max,
        }
        return RetrainStatus(**pairs, thresholds=thresholds)

    # =================================================================== execution
    def begin(
        self,
        feature_set: str,
        model_type: str = DEFAULT_MODEL_TYPE,
        *,
        deploy_if_better: bool = True,
        trigger: str = "manual",
        reasons: list[str] | None = None,
        actor: str = "api",
    ) -> RetrainJob:
        """Take the pair's lease and record a running job; raise if one is already running."""
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        job_id = str(uuid.uuid4())
        name = lease_name(feature_set, model_type)
        job_leases = Leases(
            self.store, holder=f"{self.leases.holder}/{job_id}", wall=self.leases.wall
        )
        if not job_leases.acquire(name, LEASE_TTL, job_id=job_id):
            running = job_leases.current(name)
            running_id = running.job_id if running else None
            raise RetrainingInProgressError(
                f"a retraining of {feature_set}/{model_type} is already running "
                f"(job {running_id}); wait for it: GET /retrain/jobs/{running_id}",
                running_id,
            )
        try:
            with self.store.session() as session:
                session.add(
                    RetrainingRun(
                        job_id=job_id,
                        feature_set=feature_set,
                        model_type=model_type,
                        trigger=trigger,
                        reasons=list(reasons or []),
                        status="running",
                        started_at=self.clock.now(),
                    )
                )
        except BaseException:
            job_leases.release(name)
            raise
        return RetrainJob(
            job_id,
            feature_set,
            model_type,
            deploy_if_better,
            trigger,
            list(reasons or []),
            actor,
            _owner=self,
            _leases=job_leases,
        )

    def retrain_model(
        self,
        feature_set: str,
        model_type: str = DEFAULT_MODEL_TYPE,
        deploy_if_better: bool = True,
        *,
        trigger: str = "manual",
        reasons: list[str] | None = None,
        actor: str = "api",
    ) -> RetrainResult:
        """Train a challenger, meet the champion on the same hours, deploy or keep, record."""
        job = self.begin(
            feature_set,
            model_type,
            deploy_if_better=deploy_if_better,
            trigger=trigger,
            reasons=reasons,
            actor=actor,
        )
        return job.run()

    def retrain_both(
        self, model_type: str = DEFAULT_MODEL_TYPE, deploy_if_better: bool = True, **kwargs: Any
    ) -> RetrainBoth:
        results: dict[str, RetrainResult] = {}
        for feature_set in FEATURE_SETS:
            try:
                results[feature_set] = self.retrain_model(
                    feature_set, model_type, deploy_if_better, **kwargs
                )
            except BtcmlopsError as exc:
                results[feature_set] = {"success": False, "error": str(exc)}
        return {
            "success": all(result.get("success") for result in results.values()),
            "results": results,
        }

    def _execute(self, job: RetrainJob) -> RetrainResult:
        name = lease_name(job.feature_set, job.model_type)
        started = time.perf_counter()
        try:
            with job._leases.held(name, LEASE_TTL, job_id=job.job_id) as held:
                if not held:  # our lease lapsed before the job started and was taken
                    raise ConflictError(f"job {job.job_id} lost its lease on {name}")
                outcome, record = self.trial.run(job)
            outcome["training_duration_seconds"] = time.perf_counter() - started
            finish_run(
                self.store,
                self.clock,
                job,
                record,
                status="succeeded",
                duration=outcome["training_duration_seconds"],
            )
            return outcome
        except Exception as exc:
            duration = time.perf_counter() - started
            message = str(exc) if isinstance(exc, BtcmlopsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BtcmlopsError):
                log.exception("retraining %s failed", job.job_id)
            failure = failed_outcome(job, message, duration)
            record = RunRecord(decision="failed", decision_reason=f"retraining failed: {message}")
            finish_run(
                self.store,
                self.clock,
                job,
                record,
                status="failed",
                duration=duration,
                error=message,
            )
            return failure
        finally:
            job._leases.release(name)

    # ============================================================ shadows, safeguards
    def review_shadows(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE
    ) -> ShadowReview | None:
        """Promote the best challenger in shadow that the rule accepts (the daily look); a
        challenger whose trial ended without a promotion leaves the shadow set."""
        best, retired = self.shadows.review(feature_set, model_type)
        if best is None:
            return {"promoted": None, "retired": retired} if retired else None
        shadow, evidence = best
        decision = evidence.decision
        assert decision is not None  # the review returns decided challengers only
        champion = self.registry.champion(feature_set, model_type)
        reason = (
            f"shadow promotion over {champion.version if champion else 'nothing'}: "
            f"{decision.reason} ({evidence.offline_hours} offline + {evidence.live_hours} live)"
        )
        self.registry.promote(
            shadow.version,
            actor="shadow-review",
            reason=reason,
            action=DEPLOY,
            displaced_status=SHADOW,
        )
        self.shadows.trim(feature_set, model_type)
        self._champion_changed(feature_set, model_type)
        queries.add_decision_run(
            self.store,
            feature_set=feature_set,
            model_type=model_type,
            trigger=SHADOW_TRIGGER,
            decision="deployed",
            reason=reason,
            challenger_version=shadow.version,
            champion_version=champion.version if champion else None,
            challenger_metrics=decision.counts.challenger_metrics(),
            champion_metrics=decision.counts.champion_metrics(),
            evidence=ShadowPromotionEvidence(
                **decision.evidence(),
                offline_hours=evidence.offline_hours,
                live_hours=evidence.live_hours,
            ),
            at=self.clock.now(),
        )
        return {
            "promoted": shadow.version,
            "retired": [],
            "reason": reason,
            "evidence": decision.evidence(),
        }

    def shadow_report(self, feature_set: str, model_type: str) -> ShadowReport:
        """The pair's champion (learned or declared baseline), its shadows with the evidence
        each has accrued over time, and the latest decisions with theirs."""
        champion = self.registry.champion(feature_set, model_type)
        decisions = [
            run
            for run in self.history(feature_set, model_type, limit=50)
            if run["evidence"] is not None
        ][:20]
        return {
            "feature_set": feature_set,
            "model_type": model_type,
            "champion": None
            if champion is None
            else {
                "version": champion.version,
                "kind": champion.kind,
                "baseline_rule": champion.baseline_rule,
                "reason": champion.reason,
            },
            "promotion_alpha": self.settings.promotion_alpha,
            "rollback_alpha": self.settings.auto_rollback_alpha,
            "shadows": [
                evidence.as_dict() for evidence in self.shadows.report(feature_set, model_type)
            ],
            "decisions": decisions,
        }

    def promote_by_hand(self, version: str, *, actor: str, reason: str) -> ModelVersionInfo:
        info = self.shadows.promote_by_hand(version, actor=actor, reason=reason)
        self._champion_changed(info.feature_set, info.model_type)
        return info

    def check_auto_rollback(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE
    ) -> RollbackVerdict | None:
        return self.safeguards.check_auto_rollback(feature_set, model_type)

    def check_fallback(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE
    ) -> FallbackVerdict | None:
        return self.safeguards.check_fallback(feature_set, model_type)

    def _champion_changed(self, feature_set: str, model_type: str) -> None:
        if self.on_champion_change:
            self.on_champion_change(feature_set, model_type)

    # =================================================================== history
    def history(
        self, feature_set: str | None = None, model_type: str | None = None, limit: int = 50
    ) -> list[RetrainingRunRecord]:
        return queries.run_history(self.store, feature_set, model_type, limit)

    def job(self, job_id: str) -> RetrainingRunRecord | None:
        return queries.run_by_job(self.store, job_id)

    def checks(
        self, feature_set: str | None = None, model_type: str | None = None, limit: int = 50
    ) -> list[RecordedRetrainCheck]:
        return queries.check_history(self.store, feature_set, model_type, limit)
