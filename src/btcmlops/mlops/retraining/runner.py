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
:class:`RetrainingInProgressError` (HTTP 409) naming the running job.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from btcmlops.clock import Clock, parse_utc
from btcmlops.config import Settings
from btcmlops.db.models import RetrainCheck, RetrainingRun
from btcmlops.db.store import Store
from btcmlops.errors import BtcmlopsError, ConflictError, InsufficientDataError
from btcmlops.features.schema import FEATURE_SETS, model_feature_names, validate_feature_set
from btcmlops.mlops.leases import Leases
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.policy import (
    DriftSummary,
    RetrainPolicy,
    SequentialStatusOf,
    TrainingWindow,
)
from btcmlops.mlops.retraining.promotion import (
    PairedCounts,
    PromotionDecision,
    decide_promotion,
)
from btcmlops.mlops.retraining.rollback import FALLBACK, Safeguards
from btcmlops.mlops.retraining.shadows import Shadows
from btcmlops.mlops.significance import mcnemar_exact
from btcmlops.modeling.baselines import LAST_HOUR, MAJORITY, RULE_WORDS
from btcmlops.modeling.evaluation import evaluate_forecast
from btcmlops.modeling.feature_cache import FeatureFrameCache
from btcmlops.modeling.model_types import (
    DEFAULT_MODEL_TYPE,
    probability_up,
    validate_model_type,
)
from btcmlops.modeling.registry import SHADOW, ModelRegistry, ModelVersionInfo, json_safe
from btcmlops.modeling.splits import PURGE_GAP
from btcmlops.modeling.training import (
    TrainedModel,
    TrainingData,
    load_training_data,
    train_on,
    with_permutation_importances,
)

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=90)  # renewed every 30 s while a retraining runs
DEPLOY = "deploy"
SHADOW_TRIGGER = "shadow"


class RetrainingInProgressError(ConflictError):
    """A retraining of the same pair is running; ``job_id`` names it."""

    def __init__(self, message: str, job_id: str | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.extra = {"job_id": job_id}


@dataclass
class RetrainJob:
    """A retraining that holds its pair's lease; ``run()`` does the work and releases it."""

    job_id: str
    feature_set: str
    model_type: str
    deploy_if_better: bool
    trigger: str
    reasons: list[str]
    actor: str
    _owner: AutomatedRetraining = field(repr=False)
    # The job's own lease holder: two jobs of one process must not share the pair's lease.
    _leases: Leases = field(repr=False)
    _done: bool = False

    def run(self) -> dict[str, Any]:
        if self._done:
            raise RuntimeError(f"job {self.job_id} already ran")
        self._done = True
        return self._owner._execute(self)


@dataclass(frozen=True)
class Meeting:
    """Challenger and champion on the same test hours, as counts and as metrics."""

    counts: PairedCounts
    rows: int
    window: dict[str, Any] | None
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    significance: dict[str, Any] | None


@dataclass(frozen=True)
class RunRecord:
    """What the ``retraining_runs`` row keeps of a finished job."""

    decision: str
    decision_reason: str
    challenger_version: str | None = None
    champion_version: str | None = None
    challenger_metrics: dict[str, Any] | None = None
    champion_metrics: dict[str, Any] | None = None
    significance: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    windows: dict[str, Any] | None = None
    samples: dict[str, Any] | None = None


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
        self.train_challenger = train_challenger
        # the training window's rows, decoded once across retrainings of this process
        self.frames = FeatureFrameCache(store)
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

    # =================================================================== the decision
    def should_retrain(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE, *, record: bool = True
    ) -> dict[str, Any]:
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
                        decision=json_safe(decision),
                        checked_at=decision["timestamp"],
                    )
                )
        return decision

    def minimum_training_rows(self) -> int:
        return self.policy.minimum_training_rows()

    def training_window(
        self, feature_set: str, model_type: str, now: Any, *, performance_degraded: bool = False
    ) -> dict[str, Any]:
        window = self.policy.training_window(
            feature_set, model_type, now, performance_degraded=performance_degraded
        )
        return {"start": window.start, "why": window.why}

    def status(self, model_type: str = DEFAULT_MODEL_TYPE) -> dict[str, Any]:
        """The ``/retrain/status`` answer: the decision per feature set plus the thresholds."""
        status: dict[str, Any] = {}
        for feature_set in FEATURE_SETS:
            decision = self.should_retrain(feature_set, model_type, record=False)
            status[feature_set] = {
                "should_retrain": decision["should_retrain"],
                "reasons": decision["reasons"],
                "data_available": decision["data_check"]["sample_count"],
                "data_required": decision["data_check"]["min_required"],
                "champion_version": decision["champion_version"],
            }
        settings = self.settings
        status["thresholds"] = {
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
        return status

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
    ) -> dict[str, Any]:
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
    ) -> dict[str, Any]:
        results: dict[str, Any] = {}
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

    def _execute(self, job: RetrainJob) -> dict[str, Any]:
        name = lease_name(job.feature_set, job.model_type)
        started = time.perf_counter()
        try:
            with job._leases.held(name, LEASE_TTL, job_id=job.job_id) as held:
                if not held:  # our lease lapsed before the job started and was taken
                    raise ConflictError(f"job {job.job_id} lost its lease on {name}")
                outcome, record = self._train_compare_decide(job)
            outcome["training_duration_seconds"] = time.perf_counter() - started
            self._finish(
                job, record, status="succeeded", duration=outcome["training_duration_seconds"]
            )
            return outcome
        except Exception as exc:
            duration = time.perf_counter() - started
            message = str(exc) if isinstance(exc, BtcmlopsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BtcmlopsError):
                log.exception("retraining %s failed", job.job_id)
            failure = {
                "success": False,
                "job_id": job.job_id,
                "error": message,
                "training_duration_seconds": duration,
                "deployment": {"deployed": False, "reason": f"retraining failed: {message}"},
            }
            record = RunRecord(decision="failed", decision_reason=f"retraining failed: {message}")
            self._finish(job, record, status="failed", duration=duration, error=message)
            return failure
        finally:
            job._leases.release(name)

    def _train_compare_decide(self, job: RetrainJob) -> tuple[dict[str, Any], RunRecord]:
        now = self.clock.now()
        champion = self.registry.champion(job.feature_set, job.model_type)
        challenger_columns = model_feature_names(job.feature_set)
        columns = list(
            dict.fromkeys(challenger_columns + (champion.feature_names if champion else []))
        )
        degraded = self.policy.performance_check(champion, now)["triggered"]
        window = self.policy.training_window(
            job.feature_set, job.model_type, now, performance_degraded=degraded
        )
        data, challenger = self._train(job, window, columns, challenger_columns)
        challenger_data = TrainingData(
            data.features[challenger_columns],
            data.targets,
            data.last_hour_direction,
            data.closed_before,
        )
        meeting = self._meet(challenger, champion, data)
        decision = self._decide(challenger, champion, meeting)
        if decision.promote:
            challenger = with_permutation_importances(challenger, challenger_data)
        registered = self.registry.register(
            challenger,
            created_by=f"retraining:{job.trigger}"[:64],
            reason=f"job {job.job_id}: " + ("; ".join(job.reasons) or job.trigger),
        )
        deployed, shadowed, reason = self._act(
            job, champion, registered, challenger, challenger_data, decision
        )
        evidence = {
            **decision.evidence(),
            "offline": True,
            "champion_version": champion.version if champion else None,
        }
        challenger_metrics = {**meeting.challenger, **_rates(meeting.counts)}
        record = RunRecord(
            decision="deployed" if deployed else "kept",
            decision_reason=reason,
            challenger_version=registered.version,
            champion_version=champion.version if champion else None,
            challenger_metrics=challenger_metrics,
            champion_metrics=meeting.champion,
            significance=meeting.significance,
            evidence=evidence,
            windows={
                **challenger.windows(),
                "comparison": meeting.window,
                "training_window": {"start": window.start.isoformat(), "why": window.why},
            },
            samples={
                "train": int(challenger.split.train_index.size),
                "validation": int(challenger.split.validation_index.size),
                "test": int(challenger.split.test_index.size),
                "comparison": meeting.rows,
            },
        )
        return _outcome(
            job, challenger, registered, champion, meeting, record, deployed, shadowed
        ), record

    def _act(
        self,
        job: RetrainJob,
        champion: ModelVersionInfo | None,
        registered: ModelVersionInfo,
        challenger: TrainedModel,
        data: TrainingData,
        decision: PromotionDecision,
    ) -> tuple[bool, bool, str]:
        """Deploy a challenger that passed; else keep it in shadow (after declaring a naive
        baseline the champion when there was none). Returns (deployed, shadowed, reason)."""
        reason = decision.reason
        if decision.promote and job.deploy_if_better:
            self.registry.promote(
                registered.version,
                actor=job.actor,
                reason=reason,
                action=DEPLOY,
                displaced_status=SHADOW,
            )
            self.shadows.trim(job.feature_set, job.model_type)
            self._champion_changed(job.feature_set, job.model_type)
            return True, False, reason
        if decision.promote:
            reason = f"{reason}; not deployed because deploy_if_better is false"
        elif champion is None and job.deploy_if_better:
            champion = self._first_fallback(job, challenger, data, decision)
            reason = (
                f"{reason}. No learned model has skill yet: the pair serves the naive "
                f"baseline {champion.version} ({champion.baseline_rule}) openly"
            )
        if champion is None or self.settings.shadow_max == 0:
            return False, False, reason
        self.shadows.admit(registered.version)
        shadowed = self.registry.get(registered.version).status == SHADOW
        if shadowed:
            reason = f"{reason}; kept in shadow to gather live evidence"
        return False, shadowed, reason

    def _first_fallback(
        self,
        job: RetrainJob,
        challenger: TrainedModel,
        data: TrainingData,
        decision: PromotionDecision,
    ) -> ModelVersionInfo:
        """No champion and a first challenger without skill: serve the better naive rule on
        its test hours, declared as such (the challenger waits in shadow)."""
        rule = (
            LAST_HOUR
            if (decision.last_hour_accuracy or 0.0) > (decision.majority_accuracy or 0.0)
            else MAJORITY
        )
        reason = (
            f"first champion: the learned challenger failed the promotion rule "
            f"({', '.join(decision.failed)}); serving the baseline '{RULE_WORDS[rule]}'"
        )
        fallback = self.safeguards.register_baseline(
            job.feature_set, job.model_type, list(challenger.feature_names), rule, reason, data
        )
        self.registry.promote(fallback.version, actor=job.actor, reason=reason, action=FALLBACK)
        self._champion_changed(job.feature_set, job.model_type)
        return self.registry.get(fallback.version)

    def _train(
        self,
        job: RetrainJob,
        window: TrainingWindow,
        columns: list[str],
        challenger_columns: list[str],
    ) -> tuple[TrainingData, TrainedModel]:
        try:
            data = load_training_data(
                self.store,
                job.feature_set,
                clock=self.clock,
                settings=self.settings,
                start=window.start,
                columns=columns,
                frames=self.frames,
            )
            challenger = self.train_challenger(
                TrainingData(
                    data.features[challenger_columns],
                    data.targets,
                    data.last_hour_direction,
                    data.closed_before,
                ),
                feature_set=job.feature_set,
                model_type=job.model_type,
                settings=self.settings,
                with_importances=False,
            )
        except InsufficientDataError as exc:
            raise InsufficientDataError(f"training on {window.why}: {exc}") from exc
        return data, challenger

    def _meet(
        self, challenger: TrainedModel, champion: ModelVersionInfo | None, data: TrainingData
    ) -> Meeting:
        """Score challenger and champion on the same test hours the champion never trained on."""
        hours = challenger.split.test_index
        if champion is not None:
            trained_until = parse_utc(champion.windows["train"]["end"])
            hours = hours[hours > trained_until + PURGE_GAP]
        if not len(hours):
            return Meeting(PairedCounts(), 0, None, challenger.test.as_dict(), None, None)
        x, y = data.rows(hours)
        last_hour = data.last_hour_direction.reindex(hours).to_numpy(dtype=float)
        p_challenger = probability_up(challenger.pipeline, x[list(challenger.feature_names)])
        window = {"start": hours[0].isoformat(), "end": hours[-1].isoformat(), "rows": len(hours)}
        challenger_metrics = evaluate_forecast(y, p_challenger).as_dict()
        if champion is None:
            counts = PairedCounts.from_outcomes(y, p_challenger, p_challenger, last_hour)
            return Meeting(counts, len(hours), window, challenger_metrics, None, None)
        pipeline = self.registry.load_pipeline(champion)
        p_champion = probability_up(pipeline, x[champion.feature_names])
        counts = PairedCounts.from_outcomes(y, p_challenger, p_champion, last_hour)
        significance = mcnemar_exact(
            only_first_right=counts.challenger_only, only_second_right=counts.champion_only
        ).as_dict()
        return Meeting(
            counts,
            len(hours),
            window,
            challenger_metrics,
            evaluate_forecast(y, p_champion).as_dict(),
            significance,
        )

    def _decide(
        self, challenger: TrainedModel, champion: ModelVersionInfo | None, meeting: Meeting
    ) -> PromotionDecision:
        alpha = self.settings.promotion_alpha
        trial_looks = self.settings.promotion_trial_days + 1
        if champion is None:
            decision = decide_promotion(
                meeting.counts, alpha=alpha, paired=False, trial_looks=trial_looks
            )
            return _reworded(decision, "first champion: " + decision.reason)
        # the trial's first look: the offline comparison hours
        decision = decide_promotion(meeting.counts, alpha=alpha, trial_looks=trial_looks)
        if meeting.rows < self.settings.retrain_min_comparison_rows:
            return _reworded(
                decision,
                f"kept {champion.version}: only {meeting.rows} test hours the champion never "
                f"trained on ({self.settings.retrain_min_comparison_rows} needed for a fair "
                "comparison)",
                promote=False,
            )
        verb = "deploy over" if decision.promote else "kept"
        return _reworded(decision, f"{verb} {champion.version}: {decision.reason}")

    def _finish(
        self,
        job: RetrainJob,
        record: RunRecord,
        *,
        status: str,
        duration: float,
        error: str | None = None,
    ) -> None:
        values = {
            "status": status,
            "finished_at": self.clock.now(),
            "duration_seconds": duration,
            "error": error,
            "decision": record.decision,
            "decision_reason": record.decision_reason,
            "challenger_version": record.challenger_version,
            "champion_version": record.champion_version,
            "challenger_metrics": json_safe(record.challenger_metrics),
            "champion_metrics": json_safe(record.champion_metrics),
            "significance": json_safe(record.significance),
            "evidence": json_safe(record.evidence),
            "windows": json_safe(record.windows),
            "samples": json_safe(record.samples),
        }
        with self.store.session() as session:
            session.execute(
                update(RetrainingRun).where(RetrainingRun.job_id == job.job_id).values(**values)
            )

    # ============================================================ shadows, safeguards
    def review_shadows(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE
    ) -> dict[str, Any] | None:
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
            evidence={
                **decision.evidence(),
                "offline_hours": evidence.offline_hours,
                "live_hours": evidence.live_hours,
            },
            at=self.clock.now(),
        )
        return {
            "promoted": shadow.version,
            "retired": [],
            "reason": reason,
            "evidence": decision.evidence(),
        }

    def shadow_report(self, feature_set: str, model_type: str) -> dict[str, Any]:
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
    ) -> dict[str, Any] | None:
        return self.safeguards.check_auto_rollback(feature_set, model_type)

    def check_fallback(self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE) -> Any:
        return self.safeguards.check_fallback(feature_set, model_type)

    def _champion_changed(self, feature_set: str, model_type: str) -> None:
        if self.on_champion_change:
            self.on_champion_change(feature_set, model_type)

    # =================================================================== history
    def history(
        self, feature_set: str | None = None, model_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return queries.run_history(self.store, feature_set, model_type, limit)

    def job(self, job_id: str) -> dict[str, Any] | None:
        return queries.run_by_job(self.store, job_id)

    def checks(
        self, feature_set: str | None = None, model_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return queries.check_history(self.store, feature_set, model_type, limit)


def lease_name(feature_set: str, model_type: str) -> str:
    return f"retrain:{feature_set}:{model_type}"


def _reworded(
    decision: PromotionDecision, reason: str, *, promote: bool | None = None
) -> PromotionDecision:
    return replace(
        decision, reason=reason, promote=decision.promote if promote is None else promote
    )


def _rates(counts: PairedCounts) -> dict[str, Any]:
    n = counts.hours
    if not n:
        return {}
    return {
        "actual_up_rate": counts.actual_up / n,
        "predicted_up_rate": counts.challenger_predicted_up / n,
    }


def _outcome(
    job: RetrainJob,
    challenger: TrainedModel,
    registered: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    meeting: Meeting,
    record: RunRecord,
    deployed: bool,
    shadowed: bool,
) -> dict[str, Any]:
    """The job's answer (the ``/retrain/execute`` contract's shape plus the evidence)."""
    new, old = meeting.challenger, meeting.champion
    evidence = record.evidence or {}
    return {
        "success": True,
        "job_id": job.job_id,
        "samples_used": int(challenger.split.train_index.size),
        "samples": record.samples,
        "windows": record.windows,
        "new_model": {
            "test_accuracy": challenger.test_accuracy,
            "validation_accuracy": challenger.validation.accuracy,
            "model_version": registered.version,
            "test_interval_95": [challenger.test.accuracy_ci_low, challenger.test.accuracy_ci_high],
        },
        "comparison": {
            "new_is_better": bool(evidence.get("promote")),
            "new_accuracy": new["accuracy"],
            "current_accuracy": None if old is None else old["accuracy"],
            "accuracy_improvement": None if old is None else new["accuracy"] - old["accuracy"],
            "new_log_loss": new["log_loss"],
            "current_log_loss": None if old is None else old["log_loss"],
            "current_version": champion.version if champion else None,
            "majority_accuracy": evidence.get("majority_accuracy"),
            "last_hour_accuracy": evidence.get("last_hour_accuracy"),
            "significance": meeting.significance,
        },
        "evidence": evidence,
        "deployment": {"deployed": deployed, "shadow": shadowed, "reason": record.decision_reason},
    }
