"""Automated retraining: when to retrain, how a challenger meets the champion, when to deploy.

The decision (``should_retrain``) reports every check with its numbers:

1. **performance** — the champion's live accuracy over the last ``retrain_performance_days``
   against its *own* recorded baseline (its test accuracy when it was trained); triggers on a
   drop of at least ``retrain_accuracy_degradation`` that a one-sided two-proportion test
   confirms (p < 0.05), and only with at least ``retrain_min_predictions`` outcomes;
2. **drift** — the drift summary's feature severity (its overall severity, model accuracy
   included, with ``retrain_drift_counts_model``) at or above ``retrain_drift_severity``;
3. **schedule** — the champion is older than ``retrain_interval_days``;
4. **data** — at least ``retrain_min_samples`` feature rows in the training window, else no
   retraining at all (with the reason);

plus a **cooldown** of ``retrain_cooldown_hours`` after any retraining of the pair.

A retraining (``retrain_model``) trains a challenger on the most recent
``retrain_window_days`` with the chronological split of ``modeling.splits``, then scores the
challenger *and the current champion on the same most recent test hours* (those the champion
never trained on). The challenger is deployed when its accuracy beats the champion's by at
least ``retrain_min_improvement`` (a tie keeps the champion) and its log loss is not worse by
more than ``retrain_log_loss_tolerance``; McNemar's exact test on the paired predictions is
reported beside the decision and required when ``retrain_require_significance`` is set. With
no champion yet, a challenger is deployed when it beats the majority-class baseline. Every
run, deployed or not, is a ``retraining_runs`` row.

One retraining per (feature set, model type) at a time: a lease in the store (``leases``),
so it holds across API worker processes on PostgreSQL too. A second request gets
:class:`RetrainingInProgressError` (HTTP 409) naming the running job.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, case, func, select, update

from btcmlops.clock import HOUR, Clock, parse_utc
from btcmlops.config import Settings
from btcmlops.db.models import (
    ChampionChange,
    DriftReport,
    FeatureRow,
    PredictionLog,
    RetrainCheck,
    RetrainingRun,
)
from btcmlops.db.store import Store
from btcmlops.errors import BtcmlopsError, ConflictError, InsufficientDataError
from btcmlops.features.schema import (
    FEATURE_SETS,
    FEATURE_VERSION,
    model_feature_names,
    validate_feature_set,
)
from btcmlops.mlops.leases import Leases
from btcmlops.mlops.significance import mcnemar_exact, two_proportion_test
from btcmlops.modeling.evaluation import ClassificationMetrics, evaluate_forecast
from btcmlops.modeling.model_types import (
    DEFAULT_MODEL_TYPE,
    probability_up,
    validate_model_type,
)
from btcmlops.modeling.registry import ModelRegistry, ModelVersionInfo, json_safe
from btcmlops.modeling.splits import PURGE_GAP, SPLIT_FRACTIONS
from btcmlops.modeling.training import (
    TrainedModel,
    TrainingData,
    load_training_data,
    train_on,
    with_permutation_importances,
)

log = logging.getLogger(__name__)

SEVERITY_ORDER = {"none": 0, "low": 1, "medium": 2, "high": 3}
SIGNIFICANCE_LEVEL = 0.05
LEASE_TTL = timedelta(seconds=90)  # renewed every 30 s while a retraining runs
DEPLOY = "deploy"
AUTO_ROLLBACK = "auto_rollback"

DriftSummary = Callable[[str, str], dict[str, Any]]


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


class AutomatedRetraining:
    """Decides, runs and records retraining for every (feature set, model type)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        registry: ModelRegistry,
        *,
        drift_summary: DriftSummary | None = None,
        leases: Leases | None = None,
        on_champion_change: Callable[[str, str], None] | None = None,
        train_challenger: Callable[..., TrainedModel] = train_on,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.drift_summary = drift_summary
        self.leases = leases or Leases(store)
        self.on_champion_change = on_champion_change
        self.train_challenger = train_challenger

    # =================================================================== the decision
    def should_retrain(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE, *, record: bool = True
    ) -> dict[str, Any]:
        """Every trigger and blocker of retraining the pair, with its numbers."""
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        now = self.clock.now()
        champion = self.registry.champion(feature_set, model_type)
        performance = self._performance_check(champion, now)
        drift = self._drift_check(feature_set, model_type)
        last_run = self._last_run_at(feature_set, model_type)
        schedule = self._schedule_check(champion, last_run, now)
        data = self._data_check(feature_set, model_type, now, performance["triggered"])
        cooldown = self._cooldown_check(last_run, now)

        reasons = [
            check["reason"] for check in (performance, drift, schedule) if check["triggered"]
        ]
        if champion is None:
            reasons.insert(0, f"no champion for {feature_set}/{model_type} yet")
        blocked = []
        if not data["sufficient_data"]:
            blocked.append(data["reason"])
        if cooldown["active"]:
            blocked.append(cooldown["reason"])
        should = bool(reasons) and not blocked
        decision = {
            "feature_set": feature_set,
            "model_type": model_type,
            "should_retrain": should,
            "reasons": reasons + [f"not retraining: {reason}" for reason in blocked if reasons],
            "triggers": [
                name
                for name, check in (
                    ("performance", performance),
                    ("drift", drift),
                    ("schedule", schedule),
                )
                if check["triggered"]
            ]
            + (["no_champion"] if champion is None else []),
            "blocked_by": blocked,
            "champion_version": champion.version if champion else None,
            "performance_check": performance,
            "drift_check": drift,
            "schedule_check": schedule,
            "data_check": data,
            "cooldown_check": cooldown,
            "timestamp": now,
        }
        if record:
            with self.store.session() as session:
                session.add(
                    RetrainCheck(
                        feature_set=feature_set,
                        model_type=model_type,
                        should_retrain=should,
                        decision=json_safe(decision),
                        checked_at=now,
                    )
                )
        return decision

    def _performance_check(
        self, champion: ModelVersionInfo | None, now: datetime
    ) -> dict[str, Any]:
        settings = self.settings
        check: dict[str, Any] = {
            "triggered": False,
            "period_days": settings.retrain_performance_days,
            "threshold": settings.retrain_accuracy_degradation,
            "min_predictions": settings.retrain_min_predictions,
            "live_accuracy": None,
            "live_predictions": 0,
            "baseline_accuracy": None,
            "drop": None,
            "p_value": None,
        }
        if champion is None:
            check["reason"] = "no champion to judge"
            return check
        baseline = champion.metrics.get("test", {})
        base_correct, base_rows = baseline.get("correct"), baseline.get("rows")
        check["baseline_accuracy"] = champion.test_accuracy
        check["baseline_predictions"] = base_rows
        check["champion_version"] = champion.version
        since = now - timedelta(days=settings.retrain_performance_days)
        correct, total = self._live_counts(champion.version, since, now)
        check["live_predictions"] = total
        if total:
            check["live_accuracy"] = correct / total
        if total < settings.retrain_min_predictions or not base_rows:
            check["reason"] = (
                f"{total} outcomes of {champion.version} in the last "
                f"{settings.retrain_performance_days} days; "
                f"{settings.retrain_min_predictions} needed to judge performance"
            )
            return check
        test = two_proportion_test(int(base_correct), int(base_rows), correct, total)
        check["drop"] = test.difference
        check["p_value"] = test.p_value
        triggered = (
            test.difference >= settings.retrain_accuracy_degradation
            and test.p_value < SIGNIFICANCE_LEVEL
        )
        check["triggered"] = triggered
        check["reason"] = (
            f"performance {'degraded' if triggered else 'holding'}: live accuracy "
            f"{test.second:.3f} over {total} outcomes vs baseline {test.first:.3f} "
            f"(drop {test.difference:+.3f}, threshold {settings.retrain_accuracy_degradation}, "
            f"one-sided p={test.p_value:.3g})"
        )
        return check

    def _live_counts(self, version: str, since: datetime, until: datetime) -> tuple[int, int]:
        resolved = PredictionLog.outcome_status == "resolved"
        query = select(
            func.coalesce(
                func.sum(case((PredictionLog.prediction_correct.is_(True), 1), else_=0)), 0
            ),
            func.count(),
        ).where(
            PredictionLog.model_version == version,
            resolved,
            PredictionLog.predicted_at >= since,
            PredictionLog.predicted_at <= until,
        )
        with self.store.session() as session:
            correct, total = session.execute(query).one()
        return int(correct), int(total)

    def _drift_check(self, feature_set: str, model_type: str) -> dict[str, Any]:
        threshold = self.settings.retrain_drift_severity
        check: dict[str, Any] = {"triggered": False, "threshold": threshold, "severity": None}
        if self.drift_summary is None:
            check["reason"] = "drift detection not configured"
            return check
        try:
            summary = self.drift_summary(feature_set, model_type)
        except BtcmlopsError as exc:
            check["reason"] = f"drift check failed: {exc}"
            check["error"] = str(exc)
            return check
        check["feature_severity"] = summary.get("feature_drift", {}).get("drift_severity")
        check["model_severity"] = summary.get("model_drift", {}).get("drift_severity")
        check["counts_model"] = self.settings.retrain_drift_counts_model
        # Accuracy is the performance check's job (its own drop threshold and minimum
        # outcomes); the model's severity counts here only when the settings say so.
        severity = (
            summary.get("overall_severity")
            if self.settings.retrain_drift_counts_model
            else check["feature_severity"]
        )
        check["severity"] = severity
        check["top_features"] = summary.get("feature_drift", {}).get("top_features", [])
        triggered = severity in SEVERITY_ORDER and (
            SEVERITY_ORDER[severity] >= SEVERITY_ORDER[threshold]
        )
        check["triggered"] = triggered
        detail = ", ".join(check["top_features"][:3])
        check["reason"] = f"drift severity {severity} (threshold {threshold})" + (
            f"; most drifted: {detail}" if detail else ""
        )
        return check

    def _last_run_at(self, feature_set: str, model_type: str) -> datetime | None:
        with self.store.session() as session:
            return session.scalar(
                select(func.max(RetrainingRun.started_at)).where(
                    RetrainingRun.feature_set == feature_set,
                    RetrainingRun.model_type == model_type,
                )
            )

    def _schedule_check(
        self, champion: ModelVersionInfo | None, last_run: datetime | None, now: datetime
    ) -> dict[str, Any]:
        """Due when neither the champion nor any retraining of the pair (deployed or not) is
        younger than the interval: a challenger that lost resets the clock too, so a pair
        whose champion keeps winning is retrained once per interval, not every day."""
        interval = self.settings.retrain_interval_days
        if champion is None:
            return {"triggered": False, "interval_days": interval, "reason": "no champion"}
        age_days = (now - champion.created_at) / timedelta(days=1)
        latest = max(filter(None, (champion.created_at, last_run)))
        since_days = (now - latest) / timedelta(days=1)
        triggered = since_days >= interval
        return {
            "triggered": triggered,
            "interval_days": interval,
            "champion_age_days": age_days,
            "champion_created_at": champion.created_at,
            "last_retraining_at": last_run,
            "days_since_last_training": since_days,
            "reason": f"schedule: champion is {age_days:.1f} days old, last training "
            f"{since_days:.1f} days ago (interval {interval:g} days)",
        }

    def minimum_training_rows(self) -> int:
        """Hours a training window needs so the chronological split leaves enough rows: the
        training part at least ``train_min_rows`` (70 %), the test part at least
        ``retrain_min_comparison_rows`` (20 %), plus the rows the two purge gaps drop."""
        settings = self.settings
        usable = max(
            math.ceil(settings.train_min_rows / SPLIT_FRACTIONS[0]),
            math.ceil(settings.retrain_min_comparison_rows / SPLIT_FRACTIONS[2]),
        )
        return max(settings.retrain_min_samples, usable + 2 * int(PURGE_GAP / HOUR))

    def _data_check(
        self, feature_set: str, model_type: str, now: datetime, performance_degraded: bool
    ) -> dict[str, Any]:
        window = self.training_window(
            feature_set, model_type, now, performance_degraded=performance_degraded
        )
        with self.store.session() as session:
            count = session.scalar(
                select(func.count()).where(
                    FeatureRow.feature_set == feature_set,
                    FeatureRow.feature_version == FEATURE_VERSION,
                    FeatureRow.ts >= window["start"],
                    FeatureRow.ts < now,
                )
            )
        required = self.minimum_training_rows()
        count = int(count or 0)
        return {
            "sufficient_data": count >= required,
            "sample_count": count,
            "min_required": required,
            "window_start": window["start"],
            "window": window["why"],
            "reason": f"{count} {feature_set} feature rows in {window['why']}, {required} "
            f"required (at least {self.settings.retrain_min_samples}, and enough for a "
            "chronological split with two purge gaps)",
        }

    def _cooldown_check(self, last: datetime | None, now: datetime) -> dict[str, Any]:
        hours = self.settings.retrain_cooldown_hours
        if last is None:
            return {"active": False, "cooldown_hours": hours, "last_run_at": None, "reason": ""}
        since = (now - last) / timedelta(hours=1)
        active = since < hours
        return {
            "active": active,
            "cooldown_hours": hours,
            "last_run_at": last,
            "hours_since_last_run": since,
            "reason": f"cooldown: last retraining {since:.1f} h ago (cooldown {hours:g} h)",
        }

    def status(self, model_type: str = DEFAULT_MODEL_TYPE) -> dict[str, Any]:
        """The seed's ``/retrain/status``: the decision per feature set plus the thresholds."""
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
        status["thresholds"] = {
            "accuracy_degradation": self.settings.retrain_accuracy_degradation,
            "drift_severity": self.settings.retrain_drift_severity,
            "min_samples": self.settings.retrain_min_samples,
            "min_predictions": self.settings.retrain_min_predictions,
            "interval_days": self.settings.retrain_interval_days,
            "cooldown_hours": self.settings.retrain_cooldown_hours,
            "min_improvement": self.settings.retrain_min_improvement,
            "window_days": self.settings.retrain_window_days,
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
                outcome = self._train_compare_decide(job)
            outcome["training_duration_seconds"] = time.perf_counter() - started
            self._finish(
                job, outcome, status="succeeded", duration=outcome["training_duration_seconds"]
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
            self._finish(job, failure, status="failed", duration=duration, error=message)
            return failure
        finally:
            job._leases.release(name)

    def _train_compare_decide(self, job: RetrainJob) -> dict[str, Any]:
        settings = self.settings
        now = self.clock.now()
        champion = self.registry.champion(job.feature_set, job.model_type)
        challenger_columns = model_feature_names(job.feature_set)
        columns = list(
            dict.fromkeys(challenger_columns + (champion.feature_names if champion else []))
        )
        degraded = self._performance_check(champion, now)["triggered"]
        window = self.training_window(
            job.feature_set, job.model_type, now, performance_degraded=degraded
        )
        try:
            data = load_training_data(
                self.store,
                job.feature_set,
                clock=self.clock,
                settings=settings,
                start=window["start"],
                columns=columns,
            )
        except InsufficientDataError as exc:
            raise InsufficientDataError(f"training on {window['why']}: {exc}") from exc
        challenger_data = TrainingData(
            data.features[challenger_columns],
            data.targets,
            data.last_hour_direction,
            data.closed_before,
        )
        try:
            challenger = self.train_challenger(
                challenger_data,
                feature_set=job.feature_set,
                model_type=job.model_type,
                settings=settings,
                with_importances=False,
            )
        except InsufficientDataError as exc:
            raise InsufficientDataError(f"training on {window['why']}: {exc}") from exc
        meeting = self._meet(challenger, champion, data)
        deploy, reason = self._decide(challenger, champion, meeting)
        if deploy:
            challenger = with_permutation_importances(challenger, challenger_data)
        registered = self.registry.register(
            challenger,
            created_by=f"retraining:{job.trigger}"[:64],
            reason=f"job {job.job_id}: " + ("; ".join(job.reasons) or job.trigger),
        )
        deployed = False
        if deploy and job.deploy_if_better:
            self.registry.promote(registered.version, actor=job.actor, reason=reason, action=DEPLOY)
            deployed = True
            if self.on_champion_change:
                self.on_champion_change(job.feature_set, job.model_type)
        elif deploy:
            reason = f"{reason}; not deployed because deploy_if_better is false"
        challenger_metrics = meeting["challenger"]
        champion_metrics = meeting.get("champion")
        improvement = (
            None
            if champion_metrics is None
            else challenger_metrics["accuracy"] - champion_metrics["accuracy"]
        )
        return {
            "success": True,
            "job_id": job.job_id,
            "samples_used": int(challenger.split.train_index.size),
            "samples": {
                "train": int(challenger.split.train_index.size),
                "validation": int(challenger.split.validation_index.size),
                "test": int(challenger.split.test_index.size),
                "comparison": meeting["rows"],
            },
            "windows": {
                **challenger.windows(),
                "comparison": meeting["window"],
                "training_window": {"start": window["start"].isoformat(), "why": window["why"]},
            },
            "new_model": {
                "test_accuracy": challenger.test_accuracy,
                "validation_accuracy": challenger.validation.accuracy,
                "model_version": registered.version,
                "test_interval_95": [
                    challenger.test.accuracy_ci_low,
                    challenger.test.accuracy_ci_high,
                ],
            },
            "comparison": {
                "new_is_better": deploy,
                "new_accuracy": challenger_metrics["accuracy"],
                "current_accuracy": None
                if champion_metrics is None
                else champion_metrics["accuracy"],
                "accuracy_improvement": improvement,
                "new_log_loss": challenger_metrics["log_loss"],
                "current_log_loss": None
                if champion_metrics is None
                else champion_metrics["log_loss"],
                "current_version": champion.version if champion else None,
                "majority_accuracy": challenger.baselines["majority_class"].accuracy,
                "last_hour_accuracy": challenger.baselines["last_hour"].accuracy,
                "significance": meeting.get("significance"),
            },
            "deployment": {"deployed": deployed, "reason": reason},
            "_record": {
                "challenger_version": registered.version,
                "champion_version": champion.version if champion else None,
                "challenger_metrics": challenger_metrics,
                "champion_metrics": champion_metrics,
                "significance": meeting.get("significance"),
                "decision": "deployed" if deployed else "kept",
                "decision_reason": reason,
            },
        }

    def training_window(
        self,
        feature_set: str,
        model_type: str,
        now: datetime,
        *,
        performance_degraded: bool = False,
    ) -> dict[str, Any]:
        """Where a challenger's training data starts, and why.

        At most ``retrain_window_days`` back. When the champion's performance has degraded
        (the performance check triggers) *and* the features drifted (severity at or above
        ``retrain_drift_severity``) since the champion took over, only the hours since that
        drift's onset are used: the model failing plus the market changing means the market
        since the change is the one to learn, not an average over two regimes. Drift alone
        (say, a swing in news mood the model copes with) does not shorten the window. The
        onset is the start of the current window of the first drifted check since the
        champion took over, the check at the very instant of its takeover included (a
        challenger deployed because of that drift learned mostly the market before it): the
        first sign that the market left the one the champion learned (later alarms,
        aftershocks of the same change, do not move it). Too few hours since
        the onset block retraining (the data check says so, and the daily check tries again)
        rather than train on a market that is gone.
        """
        default_start = now - timedelta(days=self.settings.retrain_window_days)
        onset = None
        if performance_degraded:
            took_over = self._champion_since(feature_set, model_type)
            onset = self._drift_onset(
                feature_set, max(default_start, took_over or default_start), now
            )
        if onset is None:
            return {
                "start": default_start,
                "why": f"the last {self.settings.retrain_window_days:g} days",
            }
        return {
            "start": onset,
            "why": f"the hours since the features drifted at {onset:%Y-%m-%d %H:%M} UTC",
        }

    def _champion_since(self, feature_set: str, model_type: str) -> datetime | None:
        """When the current champion of the pair took over (its last champion change)."""
        with self.store.session() as session:
            return session.scalar(
                select(ChampionChange.changed_at)
                .where(
                    ChampionChange.feature_set == feature_set,
                    ChampionChange.model_type == model_type,
                )
                .order_by(ChampionChange.id.desc())
                .limit(1)
            )

    def _drift_onset(self, feature_set: str, since: datetime, now: datetime) -> datetime | None:
        """Start of the current window of the first drifted feature check from ``since`` on."""
        threshold = [
            name
            for name, rank in SEVERITY_ORDER.items()
            if rank >= SEVERITY_ORDER[self.settings.retrain_drift_severity]
        ]
        with self.store.session() as session:
            report = session.scalar(
                select(DriftReport.report)
                .where(
                    DriftReport.kind == "feature",
                    DriftReport.feature_set == feature_set,
                    DriftReport.status == "success",
                    DriftReport.severity.in_(threshold),
                    # the check that led to the champion's own deployment counts: a
                    # challenger picked right after a change learned mostly the old market
                    DriftReport.checked_at >= since,
                    DriftReport.checked_at <= now,
                )
                .order_by(DriftReport.checked_at, DriftReport.id)
                .limit(1)
            )
        return None if report is None else parse_utc(report["windows"]["current_start"])

    def _meet(
        self, challenger: TrainedModel, champion: ModelVersionInfo | None, data: TrainingData
    ) -> dict[str, Any]:
        """Score challenger and champion on the same test hours the champion never trained on."""
        hours = challenger.split.test_index
        if champion is not None:
            trained_until = parse_utc(champion.windows["train"]["end"])
            hours = hours[hours > trained_until + PURGE_GAP]
        x, y = data.rows(hours)
        meeting: dict[str, Any] = {
            "rows": len(hours),
            "window": None
            if not len(hours)
            else {
                "start": hours[0].isoformat(),
                "end": hours[-1].isoformat(),
                "rows": len(hours),
            },
            "challenger": _metrics(challenger.test) if not len(hours) else None,
        }
        if not len(hours):
            return meeting
        p_challenger = probability_up(challenger.pipeline, x[list(challenger.feature_names)])
        meeting["challenger"] = _metrics(evaluate_forecast(y, p_challenger))
        meeting["majority_baseline"] = _metrics(challenger.baselines["majority_class"])
        if champion is None:
            return meeting
        pipeline = self.registry.load_pipeline(champion)
        p_champion = probability_up(pipeline, x[champion.feature_names])
        meeting["champion"] = _metrics(evaluate_forecast(y, p_champion))
        challenger_right = (p_challenger > 0.5).astype(int) == y
        champion_right = (p_champion > 0.5).astype(int) == y
        meeting["significance"] = mcnemar_exact(
            only_first_right=int(np.sum(challenger_right & ~champion_right)),
            only_second_right=int(np.sum(champion_right & ~challenger_right)),
        ).as_dict()
        return meeting

    def _decide(
        self,
        challenger: TrainedModel,
        champion: ModelVersionInfo | None,
        meeting: dict[str, Any],
    ) -> tuple[bool, str]:
        settings = self.settings
        if champion is None:
            majority = challenger.baselines["majority_class"].accuracy
            better = challenger.test_accuracy > majority
            return better, (
                f"first champion: test accuracy {challenger.test_accuracy:.3f} "
                f"{'beats' if better else 'does not beat'} the majority-class baseline "
                f"{majority:.3f}"
            )
        if meeting["rows"] < settings.retrain_min_comparison_rows:
            return False, (
                f"kept {champion.version}: only {meeting['rows']} test hours the champion never "
                f"trained on ({settings.retrain_min_comparison_rows} needed for a fair comparison)"
            )
        new, old = meeting["challenger"], meeting["champion"]
        gain = new["accuracy"] - old["accuracy"]
        loss_gap = new["log_loss"] - old["log_loss"]
        significance = meeting["significance"]
        where = f"on the same {meeting['rows']} test hours"
        if gain <= 0 or gain < settings.retrain_min_improvement:
            return False, (
                f"kept {champion.version}: challenger accuracy {new['accuracy']:.3f} vs "
                f"{old['accuracy']:.3f} {where} (needs an improvement above "
                f"{settings.retrain_min_improvement:g}; McNemar p={significance['p_value']:.3g})"
            )
        if loss_gap > settings.retrain_log_loss_tolerance:
            return False, (
                f"kept {champion.version}: challenger is more accurate ({new['accuracy']:.3f} vs "
                f"{old['accuracy']:.3f}) but its log loss is worse by {loss_gap:.4f} "
                f"(tolerance {settings.retrain_log_loss_tolerance:g}) {where}"
            )
        if settings.retrain_require_significance and significance["p_value"] >= SIGNIFICANCE_LEVEL:
            return False, (
                f"kept {champion.version}: challenger better ({new['accuracy']:.3f} vs "
                f"{old['accuracy']:.3f}) but not significantly (McNemar p="
                f"{significance['p_value']:.3g}, required < {SIGNIFICANCE_LEVEL})"
            )
        return True, (
            f"challenger accuracy {new['accuracy']:.3f} beats champion {champion.version} "
            f"{old['accuracy']:.3f} {where} (+{gain:.3f}; log loss {new['log_loss']:.4f} vs "
            f"{old['log_loss']:.4f}; McNemar p={significance['p_value']:.3g})"
        )

    def _finish(
        self,
        job: RetrainJob,
        outcome: dict[str, Any],
        *,
        status: str,
        duration: float,
        error: str | None = None,
    ) -> None:
        record = outcome.pop("_record", {})
        values = {
            "status": status,
            "finished_at": self.clock.now(),
            "duration_seconds": duration,
            "error": error,
            "decision": record.get("decision", "failed" if error else None),
            "decision_reason": record.get("decision_reason")
            or outcome.get("deployment", {}).get("reason"),
            "challenger_version": record.get("challenger_version"),
            "champion_version": record.get("champion_version"),
            "challenger_metrics": json_safe(record.get("challenger_metrics")),
            "champion_metrics": json_safe(record.get("champion_metrics")),
            "significance": json_safe(record.get("significance")),
            "windows": json_safe(outcome.get("windows")),
            "samples": json_safe(outcome.get("samples")),
        }
        with self.store.session() as session:
            session.execute(
                update(RetrainingRun).where(RetrainingRun.job_id == job.job_id).values(**values)
            )

    # =================================================================== auto-rollback
    def check_auto_rollback(
        self, feature_set: str, model_type: str = DEFAULT_MODEL_TYPE
    ) -> dict[str, Any] | None:
        """Judge a freshly deployed champion on its first ``auto_rollback_window`` outcomes.

        Rolls back (action ``auto_rollback``) when its live accuracy over those outcomes is
        significantly below the previous champion's recorded baseline (one-sided
        two-proportion test at ``auto_rollback_alpha``). Champions that arrived by a
        rollback are not judged again, so two models never ping-pong.
        """
        history = self.registry.champion_history(feature_set, model_type)
        if not history:
            return None
        latest = history[-1]
        if latest.action not in (DEPLOY, "promote") or latest.previous_version is None:
            return None
        champion = self.registry.champion(feature_set, model_type)
        if champion is None or champion.version != latest.version:
            return None
        previous = self.registry.get(latest.previous_version)
        window = self.settings.auto_rollback_window
        outcomes = self._first_outcomes(champion.version, latest.changed_at, window)
        verdict: dict[str, Any] = {
            "feature_set": feature_set,
            "model_type": model_type,
            "champion_version": champion.version,
            "previous_version": previous.version,
            "outcomes": len(outcomes),
            "window": window,
            "rolled_back": False,
        }
        if len(outcomes) < window:
            verdict["status"] = "waiting"
            return verdict
        correct = int(sum(outcomes))
        baseline = previous.metrics.get("test", {})
        test = two_proportion_test(int(baseline["correct"]), int(baseline["rows"]), correct, window)
        verdict.update(
            status="judged",
            live_accuracy=correct / window,
            previous_baseline=test.first,
            p_value=test.p_value,
        )
        if test.difference > 0 and test.p_value < self.settings.auto_rollback_alpha:
            reason = (
                f"automatic rollback: {champion.version} scored {correct}/{window} "
                f"({correct / window:.3f}) on its first {window} outcomes, significantly below "
                f"the previous champion's baseline {test.first:.3f} (p={test.p_value:.3g})"
            )
            self.registry.rollback(
                feature_set, model_type, actor="auto-rollback", reason=reason, action=AUTO_ROLLBACK
            )
            if self.on_champion_change:
                self.on_champion_change(feature_set, model_type)
            verdict.update(rolled_back=True, reason=reason)
        return verdict

    def _first_outcomes(self, version: str, since: datetime, limit: int) -> list[bool]:
        with self.store.session() as session:
            rows = session.scalars(
                select(PredictionLog.prediction_correct)
                .where(
                    PredictionLog.model_version == version,
                    PredictionLog.outcome_status == "resolved",
                    PredictionLog.predicted_at >= since,
                )
                .order_by(PredictionLog.target_ts, PredictionLog.id)
                .limit(limit)
            )
            return [bool(value) for value in rows]

    # =================================================================== history
    def history(
        self, feature_set: str | None = None, model_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        query = _newest_first(RetrainingRun, RetrainingRun.started_at, feature_set, model_type)
        with self.store.session() as session:
            return [run_as_dict(run) for run in session.scalars(query.limit(limit))]

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.store.session() as session:
            run = session.scalar(select(RetrainingRun).where(RetrainingRun.job_id == job_id))
            return None if run is None else run_as_dict(run)

    def checks(
        self, feature_set: str | None = None, model_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        query = _newest_first(RetrainCheck, RetrainCheck.checked_at, feature_set, model_type)
        with self.store.session() as session:
            return [
                {**check.decision, "checked_at": check.checked_at.isoformat()}
                for check in session.scalars(query.limit(limit))
            ]


def _newest_first(
    table: type[RetrainingRun] | type[RetrainCheck],
    when: Any,
    feature_set: str | None,
    model_type: str | None,
) -> Select[Any]:
    """Rows of ``table`` for the pair (either part optional), newest ``when`` first."""
    query = select(table).order_by(when.desc(), table.id.desc())
    if feature_set:
        query = query.where(table.feature_set == feature_set)
    if model_type:
        query = query.where(table.model_type == model_type)
    return query


def lease_name(feature_set: str, model_type: str) -> str:
    return f"retrain:{feature_set}:{model_type}"


def run_as_dict(run: RetrainingRun) -> dict[str, Any]:
    return {
        "job_id": run.job_id,
        "feature_set": run.feature_set,
        "model_type": run.model_type,
        "trigger": run.trigger,
        "reasons": run.reasons,
        "status": run.status,
        "decision": run.decision,
        "decision_reason": run.decision_reason,
        "challenger_version": run.challenger_version,
        "champion_version": run.champion_version,
        "challenger_metrics": run.challenger_metrics,
        "champion_metrics": run.champion_metrics,
        "significance": run.significance,
        "windows": run.windows,
        "samples": run.samples,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": run.duration_seconds,
        "error": run.error,
    }


def _metrics(metrics: ClassificationMetrics) -> dict[str, Any]:
    return metrics.as_dict()
