"""When to retrain a pair: every trigger and blocker, each with its numbers.

1. **performance** — the champion's live accuracy over the last ``retrain_performance_days``
   against a baseline measured on hours it was *not* selected on: its live shadow record
   before it was promoted when that holds at least ``retrain_min_predictions`` outcomes,
   else its validation window (the hours before its test window, which no decision read).
   The test accuracy that won its selection is optimistic (the winner's curse) and would
   make the check fire too often. Triggers on a drop of at least
   ``retrain_accuracy_degradation`` that a one-sided two-proportion test confirms;
2. **drift** — the drift summary's feature severity (its overall severity, model accuracy
   included, with ``retrain_drift_counts_model``) at or above ``retrain_drift_severity``, or
   (with ``retrain_on_sequential_alarm``) an alarm of the feature set's hourly sequential
   detector, latched until the detector is refitted after a retraining;
3. **schedule** — neither the champion nor any retraining of the pair is younger than
   ``retrain_interval_days``;
4. **data** — at least ``retrain_min_samples`` feature rows in the training window, else no
   retraining at all (with the reason);

plus a **cooldown** of ``retrain_cooldown_hours`` after any retraining of the pair, doubled
(``retrain_backoff``) for each further unscheduled retraining that met the same champion
without replacing it, up to ``retrain_interval_days``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from btcmlops.clock import HOUR, Clock, parse_utc
from btcmlops.config import Settings
from btcmlops.db.models import DriftReport, FeatureRow
from btcmlops.db.store import Store
from btcmlops.errors import BtcmlopsError
from btcmlops.features.schema import FEATURE_VERSION
from btcmlops.mlops.drift.results import DriftSummaryReport
from btcmlops.mlops.drift.sequential_status import FITTED, THRESHOLD, SequentialStatus
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.results import (
    CooldownCheck,
    DataCheck,
    DriftCheck,
    PerformanceCheck,
    RetrainDecisionDict,
    ScheduleCheck,
    SequentialCheck,
)
from btcmlops.mlops.significance import two_proportion_test
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import ModelVersionInfo
from btcmlops.modeling.splits import PURGE_GAP, SPLIT_FRACTIONS
from btcmlops.severity import severities_at_least, severity_at_least

SIGNIFICANCE_LEVEL = 0.05

DriftSummary = Callable[[str, str], DriftSummaryReport]
SequentialStatusOf = Callable[[str], SequentialStatus]


@dataclass(frozen=True)
class TrainingWindow:
    """Where a challenger's training data starts, and why."""

    start: datetime
    why: str


@dataclass(frozen=True)
class RetrainDecision:
    """``should_retrain``'s verdict on one pair, every check with its numbers."""

    feature_set: str
    model_type: str
    should_retrain: bool
    reasons: list[str]
    triggers: list[str]
    blocked_by: list[str]
    champion_version: str | None
    performance_check: PerformanceCheck
    drift_check: DriftCheck
    schedule_check: ScheduleCheck
    data_check: DataCheck
    cooldown_check: CooldownCheck
    timestamp: datetime

    def as_dict(self) -> RetrainDecisionDict:
        return RetrainDecisionDict(**self.__dict__)


class RetrainPolicy:
    """The checks of one store; pure reads, nothing is written here."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        registry: ModelRegistry,
        drift_summary: DriftSummary | None,
        sequential_status: SequentialStatusOf | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.drift_summary = drift_summary
        self.sequential_status = sequential_status

    def decide(self, feature_set: str, model_type: str) -> RetrainDecision:
        now = self.clock.now()
        champion = self.registry.champion(feature_set, model_type)
        performance = self.performance_check(champion, now)
        drift = self.drift_check(feature_set, model_type)
        last_run = queries.last_run_at(self.store, feature_set, model_type)
        schedule = self.schedule_check(champion, last_run, now)
        data = self.data_check(feature_set, model_type, now, performance["triggered"])
        runs = 0
        if champion is not None:
            runs = queries.runs_against(
                self.store,
                feature_set,
                model_type,
                champion.version,
                self.champion_since(feature_set, model_type),
            )
        cooldown = self.cooldown_check(last_run, now, runs_against_champion=runs)

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
        triggered = [
            name
            for name, check in (
                ("performance", performance),
                ("drift", drift),
                ("schedule", schedule),
            )
            if check["triggered"]
        ]
        return RetrainDecision(
            feature_set=feature_set,
            model_type=model_type,
            should_retrain=bool(reasons) and not blocked,
            reasons=reasons + [f"not retraining: {reason}" for reason in blocked if reasons],
            triggers=triggered + (["no_champion"] if champion is None else []),
            blocked_by=blocked,
            champion_version=champion.version if champion else None,
            performance_check=performance,
            drift_check=drift,
            schedule_check=schedule,
            data_check=data,
            cooldown_check=cooldown,
            timestamp=now,
        )

    # ------------------------------------------------------------------ performance
    def performance_check(
        self, champion: ModelVersionInfo | None, now: datetime
    ) -> PerformanceCheck:
        settings = self.settings
        check: PerformanceCheck = {
            "triggered": False,
            "period_days": settings.retrain_performance_days,
            "threshold": settings.retrain_accuracy_degradation,
            "min_predictions": settings.retrain_min_predictions,
            "live_accuracy": None,
            "live_predictions": 0,
            "baseline_accuracy": None,
            "baseline_source": None,
            "drop": None,
            "p_value": None,
        }
        if champion is None:
            check["reason"] = "no champion to judge"
            return check
        base_correct, base_rows, source = self.unselected_baseline(champion)
        check["baseline_accuracy"] = base_correct / base_rows if base_rows else None
        check["baseline_predictions"] = base_rows
        check["baseline_source"] = source
        check["champion_version"] = champion.version
        since = now - timedelta(days=settings.retrain_performance_days)
        correct, total = queries.live_counts(self.store, champion.version, since, now)
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
        test = two_proportion_test(base_correct, base_rows, correct, total)
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
            f"({source}; drop {test.difference:+.3f}, threshold "
            f"{settings.retrain_accuracy_degradation}, one-sided p={test.p_value:.3g})"
        )
        return check

    def unselected_baseline(self, champion: ModelVersionInfo) -> tuple[int, int, str]:
        """(correct, rows, where from) of the champion on hours it was not selected on."""
        took_over = self.champion_since(champion.feature_set, champion.model_type)
        if took_over is not None:
            correct, rows = queries.live_counts(
                self.store, champion.version, champion.created_at, took_over, shadow=True
            )
            if rows >= self.settings.retrain_min_predictions:
                return correct, rows, f"its {rows} live shadow outcomes before promotion"
        validation = champion.metrics.get("validation") or {}
        rows = int(validation.get("rows") or 0)
        return (
            int(validation.get("correct") or 0),
            rows,
            f"its {rows}-hour validation window (hours no selection read)",
        )

    # ------------------------------------------------------------------------ drift
    def drift_check(self, feature_set: str, model_type: str) -> DriftCheck:
        """The drift summary's severity and, under ``sequential``, the hourly detector; either
        triggers (the detector's alarm only with ``retrain_on_sequential_alarm``)."""
        check = self.batch_drift_check(feature_set, model_type)
        sequential = self.sequential_check(feature_set)
        check["sequential"] = sequential
        if sequential["triggered"]:
            check["reason"] = (
                f"{check['reason']}; {sequential['reason']}"
                if check["triggered"]
                else sequential["reason"]
            )
            check["triggered"] = True
        return check

    def batch_drift_check(self, feature_set: str, model_type: str) -> DriftCheck:
        """The daily drift summary's severity (features; the model's too when configured)."""
        threshold = self.settings.retrain_drift_severity
        check: DriftCheck = {"triggered": False, "threshold": threshold, "severity": None}
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
        triggered = severity_at_least(severity, threshold)
        check["triggered"] = triggered
        detail = ", ".join(check["top_features"][:3])
        check["reason"] = f"drift severity {severity} (threshold {threshold})" + (
            f"; most drifted: {detail}" if detail else ""
        )
        return check

    def sequential_check(self, feature_set: str) -> SequentialCheck:
        """The hourly sequential detector's state; ``triggered`` on an alarm when the settings
        let it trigger retraining."""
        enabled = self.settings.retrain_on_sequential_alarm
        check: SequentialCheck = {
            "status": "not_fitted",
            "alarm": False,
            "triggered": False,
            "retrain_on_alarm": enabled,
        }
        if self.sequential_status is None:
            check["reason"] = "no hourly sequential detector runs beside this policy"
            return check
        try:
            status = self.sequential_status(feature_set)
        except BtcmlopsError as exc:
            check["reason"] = f"sequential detector unavailable: {exc}"
            check["error"] = str(exc)
            return check
        if status.status != FITTED:
            check["reason"] = f"sequential detector not fitted: {status.reason}"
            return check
        check.update(
            status=FITTED,
            alarm=status.alarm,
            statistic=status.statistic,
            threshold=THRESHOLD,
            alarm_at=status.alarm_at,
            change_at=status.change_at,
            fitted_at=status.fitted_at,
            triggered=status.alarm and enabled,
        )
        if status.alarm_at is None:
            check["reason"] = (
                f"sequential drift detector quiet: evidence {status.statistic:.2f} of its threshold"
            )
            return check
        check["reason"] = f"sequential drift detector {status.alarm_words()}"
        if not enabled:
            check["reason"] += "; not a trigger: retrain_on_sequential_alarm is off"
        return check

    # --------------------------------------------------------------------- schedule
    def schedule_check(
        self, champion: ModelVersionInfo | None, last_run: datetime | None, now: datetime
    ) -> ScheduleCheck:
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

    # ------------------------------------------------------------------------- data
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

    def data_check(
        self, feature_set: str, model_type: str, now: datetime, performance_degraded: bool
    ) -> DataCheck:
        window = self.training_window(
            feature_set, model_type, now, performance_degraded=performance_degraded
        )
        with self.store.session() as session:
            count = session.scalar(
                select(func.count()).where(
                    FeatureRow.feature_set == feature_set,
                    FeatureRow.feature_version == FEATURE_VERSION,
                    FeatureRow.ts >= window.start,
                    FeatureRow.ts < now,
                )
            )
        required = self.minimum_training_rows()
        count = int(count or 0)
        return {
            "sufficient_data": count >= required,
            "sample_count": count,
            "min_required": required,
            "window_start": window.start,
            "window": window.why,
            "reason": f"{count} {feature_set} feature rows in {window.why}, {required} "
            f"required (at least {self.settings.retrain_min_samples}, and enough for a "
            "chronological split with two purge gaps)",
        }

    def cooldown_check(
        self, last: datetime | None, now: datetime, *, runs_against_champion: int = 0
    ) -> CooldownCheck:
        """Blocks a retraining started less than the cooldown after the pair's last one.

        With ``retrain_backoff``, every unscheduled retraining (performance, drift, by hand)
        that met the current champion and did not replace it doubles the cooldown (the first
        keeps it), up to the retraining interval: when one more day of data keeps failing to
        beat the champion, training again each day only repeats the attempt. The schedule
        (and so at least one attempt per interval) is never blocked by it, and a new champion
        starts again at the cooldown.
        """
        settings = self.settings
        base = settings.retrain_cooldown_hours
        hours = base
        if settings.retrain_backoff and runs_against_champion > 1:
            longest = max(base, 24.0 * settings.retrain_interval_days)
            hours = min(base * 2.0 ** (runs_against_champion - 1), longest)
        check: CooldownCheck = {
            "active": False,
            "cooldown_hours": hours,
            "last_run_at": last,
            "runs_against_champion": runs_against_champion,
            "reason": "",
        }
        if last is None:
            return check
        since = (now - last) / timedelta(hours=1)
        backed_off = (
            f": {runs_against_champion} retrainings since the champion took over did not replace it"
            if hours > base
            else ""
        )
        check.update(
            active=since < hours,
            hours_since_last_run=since,
            reason=(
                f"cooldown: last retraining {since:.1f} h ago (cooldown {hours:g} h{backed_off})"
            ),
        )
        return check

    # ------------------------------------------------------------------ the window
    def training_window(
        self,
        feature_set: str,
        model_type: str,
        now: datetime,
        *,
        performance_degraded: bool = False,
    ) -> TrainingWindow:
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
            took_over = self.champion_since(feature_set, model_type)
            onset = self.drift_onset(
                feature_set, max(default_start, took_over or default_start), now
            )
        if onset is None:
            return TrainingWindow(
                default_start, f"the last {self.settings.retrain_window_days:g} days"
            )
        return TrainingWindow(
            onset, f"the hours since the features drifted at {onset:%Y-%m-%d %H:%M} UTC"
        )

    def champion_since(self, feature_set: str, model_type: str) -> datetime | None:
        """When the current champion of the pair took over (its last champion change)."""
        return queries.champion_since(self.store, feature_set, model_type)

    def drift_onset(self, feature_set: str, since: datetime, now: datetime) -> datetime | None:
        """Start of the current window of the first drifted feature check from ``since`` on."""
        threshold = severities_at_least(self.settings.retrain_drift_severity)
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
