"""The backtest's policies side by side on the same hours, read back after the replay.

* ``adaptive``: what the service did, read from its prediction log (scheduled predictions of
  the champion of the pair, whichever version it was at each hour).
* ``static``: the first champion's artifact, never replaced.
* ``weekly``: a challenger trained at ``start`` and every 7 days after it, on the same
  training window length (``BTCMLOPS_RETRAIN_WINDOW_DAYS``), model type and seed as the
  service's retraining, and always deployed.
* baselines ``majority`` and ``last_hour``: the naive rules the service falls back to
  (:mod:`btcmlops.modeling.baselines`), refitted on the same windows at the same moments.

Every policy predicts the hour ``t + 1h`` from the stored feature row of hour ``t``, using
only what was known at the instant the service would have predicted it (training labels and
prices as of the training instant; :func:`load_training_data` enforces that). Accuracy is
scored against the realised direction of each hour (:func:`direction_targets`, the label the
service itself resolves outcomes with).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from btcmlops.clock import HOUR, Clock, ManualClock
from btcmlops.config import Settings
from btcmlops.db.models import DriftReport, PredictionLog, RetrainingRun, SequentialPoint
from btcmlops.db.store import Store
from btcmlops.errors import InsufficientDataError
from btcmlops.features.frames import load_closes, load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION, model_feature_names
from btcmlops.features.target import direction_targets
from btcmlops.mlops.retraining.rollback import AUTO_ROLLBACK, FALLBACK
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.baselines import LAST_HOUR, MAJORITY, baseline_pipeline
from btcmlops.modeling.model_types import probability_up
from btcmlops.modeling.registry import ROLLBACK
from btcmlops.modeling.training import load_training_data, train_on
from btcmlops.replay.backtest import BacktestPlan, BacktestRun
from btcmlops.replay.statistics import PairedTest, Score, paired_test, score

POLICIES = ("adaptive", "static", "weekly")
log = logging.getLogger(__name__)

BASELINES = (MAJORITY, LAST_HOUR)
WEEK = timedelta(days=7)
SEVERITIES = ("low", "medium", "high")


@dataclass
class PolicyPredictions:
    """One policy's P(up) per feature hour (NaN where it made no prediction)."""

    name: str
    p_up: pd.Series
    retrainings: int = 0
    deployments: int = 0
    rollbacks: int = 0
    fallbacks: int = 0

    def predicted(self) -> pd.Series:
        return (self.p_up > 0.5).astype(int).where(self.p_up.notna())


@dataclass
class Evaluation:
    """Everything the report shows: scores, paired tests, alarms and the hour-level data."""

    run: BacktestRun
    actual: pd.Series  # realised direction by feature hour t (of the hour t + 1h)
    closes: pd.Series
    policies: dict[str, PolicyPredictions]
    scores: dict[str, Score]
    paired: dict[str, PairedTest]
    drift_alarms: dict[str, dict[str, int]]
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def right(self, name: str) -> pd.Series:
        """Hit (True) or miss per hour the policy predicted, in time order."""
        predicted = self.policies[name].predicted()
        known = predicted.notna()
        return predicted[known].astype(int) == self.actual[known]


def evaluate(
    runtime: Runtime, run: BacktestRun, weekly_trainer: WeeklyTrainer | None = None
) -> Evaluation:
    """Read the replay back and compute every policy on the same hours (the weekly models
    from ``weekly_trainer`` when the replay fed one, else fitted here)."""
    plan = run.plan
    until = run.evaluated_until
    first_row, end_row = plan.start - HOUR, until - HOUR  # feature hours t, end exclusive
    closes = load_closes(runtime.store, runtime.settings.symbol, start=first_row, end=until)
    actual = direction_targets(closes)
    actual = actual[(actual.index >= first_row) & (actual.index < end_row)].dropna()
    actual = actual.astype(int)
    hours = actual.index

    policies = {
        "adaptive": _adaptive(runtime, run, hours),
        "static": _static(runtime, run, hours, end_row),
    }
    weekly, baselines = _weekly(runtime, run, hours, end_row, weekly_trainer)
    policies["weekly"] = weekly
    policies.update(baselines)

    scores = {}
    for name, policy in policies.items():
        known = policy.p_up.notna()
        scores[name] = score(
            policy.predicted()[known].to_numpy(dtype=int),
            policy.p_up[known].to_numpy(),
            actual[known].to_numpy(),
        )
    timeline = _timeline(runtime, run)
    evaluation = Evaluation(
        run=run,
        actual=actual,
        closes=closes,
        policies=policies,
        scores=scores,
        paired={},
        drift_alarms=_alarms_by_month(timeline),
        timeline=timeline,
    )
    adaptive = policies["adaptive"].predicted()
    for name in POLICIES[1:] + BASELINES:
        other = policies[name].predicted()
        both = adaptive.notna() & other.notna()
        truth = actual[both].to_numpy()
        evaluation.paired[name] = paired_test(
            adaptive[both].to_numpy(dtype=int) == truth, other[both].to_numpy(dtype=int) == truth
        )
    return evaluation


# ----------------------------------------------------------------------------- policies


def _adaptive(runtime: Runtime, run: BacktestRun, hours: pd.DatetimeIndex) -> PolicyPredictions:
    plan = run.plan
    with runtime.store.session() as session:
        rows = session.execute(
            select(PredictionLog.feature_ts, PredictionLog.probability_up)
            .where(
                PredictionLog.feature_set == plan.feature_set,
                PredictionLog.model_type == plan.model_type,
                PredictionLog.source == "scheduled",
                PredictionLog.feature_ts >= plan.start - HOUR,
            )
            .order_by(PredictionLog.feature_ts, PredictionLog.id)
        ).all()
    found = pd.Series(
        [p for _, p in rows], index=pd.DatetimeIndex([ts for ts, _ in rows]), dtype=float
    )
    found = found[~found.index.duplicated(keep="first")]
    policy = PolicyPredictions("adaptive", found.reindex(hours))
    _count_adaptive_actions(runtime, run, policy)
    return policy


def _count_adaptive_actions(runtime: Runtime, run: BacktestRun, policy: PolicyPredictions) -> None:
    """Retraining runs and champion changes during the replay (the first champion's own
    promotion at ``start`` is the warm-up, not a deployment of the policy)."""
    plan = run.plan
    since, until = plan.start, run.evaluated_until
    with runtime.store.session() as session:
        policy.retrainings = len(
            session.scalars(
                select(RetrainingRun.id).where(
                    RetrainingRun.feature_set == plan.feature_set,
                    RetrainingRun.model_type == plan.model_type,
                    RetrainingRun.trigger != "initial",
                    RetrainingRun.started_at >= since,
                    RetrainingRun.started_at <= until,
                )
            ).all()
        )
    actions = Counter(
        change.action
        for change in runtime.registry.champion_history(plan.feature_set, plan.model_type)
        if since <= change.changed_at <= until
        and not (change.version == run.first_champion and change.previous_version is None)
    )
    policy.rollbacks = actions[ROLLBACK] + actions[AUTO_ROLLBACK]
    policy.fallbacks = actions[FALLBACK]
    policy.deployments = sum(actions.values()) - policy.rollbacks - policy.fallbacks


def _static(
    runtime: Runtime, run: BacktestRun, hours: pd.DatetimeIndex, end_row: datetime
) -> PolicyPredictions:
    plan = run.plan
    assert run.first_champion is not None
    champion = runtime.registry.get(run.first_champion)
    pipeline = runtime.registry.load_pipeline(champion)
    frame = load_feature_frame(
        runtime.store,
        plan.feature_set,
        FEATURE_VERSION,
        champion.feature_names,
        start=plan.start - HOUR,
        end=end_row,
    ).reindex(hours)
    p_up = _probabilities(pipeline, frame)
    return PolicyPredictions("static", p_up)


@dataclass(frozen=True)
class WeeklyModels:
    """What the weekly schedule fitted at one instant (``model`` is None if training failed)."""

    instant: datetime
    model: Any | None
    rules: dict[str, Any]


def train_weekly(runtime: Runtime, plan: BacktestPlan, instant: datetime) -> WeeklyModels:
    """The weekly policy's model and the naive rules as of ``instant``: the same training
    window length, model type, seed and threads as the service's retraining."""
    return _fit_week(runtime.store, runtime.clock, runtime.settings, plan, instant)


def _fit_week(
    store: Store, clock: Clock, settings: Settings, plan: BacktestPlan, instant: datetime
) -> WeeklyModels:
    columns = model_feature_names(plan.feature_set)
    try:
        data = load_training_data(
            store,
            plan.feature_set,
            clock=clock,
            settings=settings,
            start=instant - timedelta(days=settings.retrain_window_days),
            end=instant,
            columns=columns,
        )
    except InsufficientDataError:
        return WeeklyModels(instant, None, {})
    known = data.targets.notna()
    rules = {}
    if known.any():
        labels = data.targets[known].to_numpy(dtype=int)
        rules = {
            rule: baseline_pipeline(rule, columns).fit(data.features[known], labels)
            for rule in BASELINES
        }
    try:
        trained = train_on(
            data,
            feature_set=plan.feature_set,
            model_type=plan.model_type,
            settings=settings,
            with_importances=False,
        )
    except InsufficientDataError:
        return WeeklyModels(instant, None, rules)
    return WeeklyModels(instant, trained.pipeline, rules)


def _fit_week_in_worker(
    url: str, settings: Settings, plan: BacktestPlan, instant: datetime, now: datetime
) -> WeeklyModels:
    """:func:`_fit_week` in a worker process, reading the replay's store through its own
    connection (the rows it reads, up to ``instant``, are no longer written)."""
    store = Store.open(url, upgrade=False, pool_size=1)
    try:
        return _fit_week(store, ManualClock(now), settings, plan, instant)
    finally:
        store.close()


class WeeklyTrainer:
    """Fits each weekly instant's models in a worker process as soon as the replay's clock
    has passed that instant, so the fits run on the second core beside the replay (in a
    thread they would mostly wait for the replay's GIL: a fit evaluates its model in Python
    too). The models are the same as fitted afterwards: same data as of the same instant,
    same seed. If the worker cannot start or dies, the week is fitted here instead."""

    def __init__(self, runtime: Runtime, plan: BacktestPlan) -> None:
        self.runtime, self.plan = runtime, plan
        self._next = plan.start
        # spawn: the replay process runs threads (the prediction writer), which fork copies
        # badly; the worker starts once and fits every week.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._futures: list[tuple[datetime, Future[WeeklyModels]]] = []

    def passed(self, hour: datetime) -> None:
        """The replay has run every job of ``hour``: fit every instant up to it."""
        settings = self.runtime.settings
        while self._next <= hour and self._next < self.plan.end:
            future = self._pool.submit(
                _fit_week_in_worker,
                settings.effective_database_url,
                settings,
                self.plan,
                self._next,
                self.runtime.clock.now(),
            )
            self._futures.append((self._next, future))
            self._next += WEEK

    def models(self, until: datetime) -> list[WeeklyModels]:
        """Every instant before ``until`` (fitting here what the replay did not reach)."""
        fitted = []
        for instant, future in self._futures:
            if instant >= until:
                continue
            try:
                fitted.append(future.result())
            except Exception as exc:  # the worker could not start or died: fit it here
                log.warning("weekly fit of %s failed in its worker (%s): fitted here", instant, exc)
                fitted.append(train_weekly(self.runtime, self.plan, instant))
        instant = self._next
        while instant < until:
            fitted.append(train_weekly(self.runtime, self.plan, instant))
            instant += WEEK
        return fitted

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _weekly(
    runtime: Runtime,
    run: BacktestRun,
    hours: pd.DatetimeIndex,
    end_row: datetime,
    trainer: WeeklyTrainer | None,
) -> tuple[PolicyPredictions, dict[str, PolicyPredictions]]:
    """The weekly retraining and the two naive rules, refitted at the same instants; each
    predicts the rows from its instant (the row of ``instant - 1h`` is predicted at
    ``instant``) until the next one."""
    plan = run.plan
    frame = load_feature_frame(
        runtime.store,
        plan.feature_set,
        FEATURE_VERSION,
        model_feature_names(plan.feature_set),
        start=plan.start - HOUR,
        end=end_row,
    ).reindex(hours)
    weekly = pd.Series(np.nan, index=hours)
    rules = {rule: pd.Series(np.nan, index=hours) for rule in BASELINES}
    trainer = trainer or WeeklyTrainer(runtime, plan)
    schedule = trainer.models(run.evaluated_until)
    pipeline, fitted_rules, trainings = None, {}, 0
    for models in schedule:
        if models.model is not None:
            pipeline = models.model
            trainings += 1
        fitted_rules.update(models.rules)  # a failed fit keeps the previous week's
        rows = (hours >= models.instant - HOUR) & (hours < models.instant + WEEK - HOUR)
        if not rows.any():
            continue
        if pipeline is not None:
            weekly[rows] = _probabilities(pipeline, frame[rows]).to_numpy()
        for rule, fitted in fitted_rules.items():
            rules[rule][rows] = _probabilities(fitted, frame[rows]).to_numpy()
    policy = PolicyPredictions(
        "weekly", weekly, retrainings=trainings, deployments=max(trainings - 1, 0)
    )
    return policy, {rule: PolicyPredictions(rule, p) for rule, p in rules.items()}


def _probabilities(pipeline: Any, frame: pd.DataFrame) -> pd.Series:
    if frame.empty:
        return pd.Series(np.nan, index=frame.index)
    return pd.Series(probability_up(pipeline, frame), index=frame.index)


# ----------------------------------------------------------------------------- alarms


def _alarms_by_month(timeline: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per month: the daily drift checks by severity, and the hourly detector's alarms."""
    months: dict[str, dict[str, int]] = {}
    for event in timeline:
        kind = str(event["kind"])
        if event["version"] is not None:
            continue  # a champion change
        counts = months.setdefault(
            f"{event['at']:%Y-%m}", {**{s: 0 for s in SEVERITIES}, "sequential": 0}
        )
        counts["sequential" if kind == "sequential alarm" else kind.removeprefix("drift ")] += 1
    return dict(sorted(months.items()))


def _timeline(runtime: Runtime, run: BacktestRun) -> list[dict[str, Any]]:
    """Champion changes, daily drift checks that found drift, and the hourly detector's
    alarms, in time order (the report's timeline)."""
    plan = run.plan
    until = run.evaluated_until
    events: list[dict[str, Any]] = []
    for change in runtime.registry.champion_history(plan.feature_set, plan.model_type):
        if plan.start <= change.changed_at <= until:
            events.append(
                {
                    "at": change.changed_at,
                    "kind": change.action,
                    "version": change.version,
                    "reason": change.reason,
                }
            )
    with runtime.store.session() as session:
        for checked_at, severity in session.execute(
            select(DriftReport.checked_at, DriftReport.severity).where(
                DriftReport.kind == "summary",
                DriftReport.feature_set == plan.feature_set,
                DriftReport.checked_at >= plan.start,
                DriftReport.checked_at <= until,
                DriftReport.severity.in_(SEVERITIES),
            )
        ):
            events.append({"at": checked_at, "kind": f"drift {severity}", "version": None})
    for hour in _alarm_onsets(runtime, run):
        events.append({"at": hour, "kind": "sequential alarm", "version": None})
    return sorted(events, key=lambda event: event["at"])


def _alarm_onsets(runtime: Runtime, run: BacktestRun) -> list[datetime]:
    """The hours of the replay at which an hourly detector's alarm went on."""
    plan = run.plan
    with runtime.store.session() as session:
        points = session.execute(
            select(SequentialPoint.detector_id, SequentialPoint.hour, SequentialPoint.alarm)
            .where(
                SequentialPoint.feature_set == plan.feature_set,
                SequentialPoint.hour >= plan.start,
                SequentialPoint.hour <= run.evaluated_until,
            )
            .order_by(SequentialPoint.detector_id, SequentialPoint.hour)
        ).all()
    onsets, previous = [], {}
    for detector, hour, alarm in points:
        if alarm and not previous.get(detector, False):
            onsets.append(hour)
        previous[detector] = bool(alarm)
    return onsets
