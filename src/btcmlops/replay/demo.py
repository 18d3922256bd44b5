"""Replaying a simulated market hour by hour through the live jobs: what ``btcmlops demo`` runs.

1. A world of ``days`` days ending at the current hour is simulated, with a regime change at
   ``regime_change_day`` (the relation of news to returns flips, volatility doubles, news
   volume rises). Its description is saved in the home so ``btcmlops serve`` can continue it.
2. The first ``warm_days`` are loaded at once, scored, turned into features, and the first
   champions are trained on them.
3. The clock then moves one hour at a time to the end, and at every hour the scheduler's own
   jobs run (ingest, sentiment, features, predictions, outcomes), the daily drift and
   retraining checks at midnight, the weekly retraining on Mondays.

Afterwards :func:`summarise` reads the story back from the store: predictions and realised
accuracy before and after the change, drift alarms, retrainings, deployments, and for each
deployment after the change, the new model's realised accuracy against what the old champion
would have scored on the same hours (a shadow evaluation of its artifact on the stored rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select

from btcmlops.clock import HOUR, ManualClock, floor_hour
from btcmlops.db.models import SHADOW_SOURCE, DriftReport, PredictionLog, RetrainingRun
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
from btcmlops.ingest.world import SimulatedWorld
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.evaluation import wilson_interval
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE
from btcmlops.replay.clockwork import run_due_jobs

Progress = Callable[[int, int], None]
Event = Callable[[str, str], None]


@dataclass(frozen=True)
class ReplayPlan:
    days: int = 120
    seed: int = 42
    regime_change_day: int = 75
    warm_days: int = 45
    model_type: str = DEFAULT_MODEL_TYPE
    # A change drift detection can confirm within two days: volatility x2.5, news volume x2,
    # and (the simulator's default) the relation of news to returns flips.
    post_change_volatility: float = 2.5
    post_change_news_rate: float = 2.0


@dataclass
class ReplayResult:
    plan: ReplayPlan
    start: datetime
    change_at: datetime
    end: datetime
    feature_sets: list[str]
    notes: list[str] = field(default_factory=list)


class Replay:
    """Runs a :class:`ReplayPlan` on a runtime whose clock is a :class:`ManualClock`."""

    def __init__(
        self,
        runtime: Runtime,
        plan: ReplayPlan,
        *,
        events: Event | None = None,
    ) -> None:
        if not isinstance(runtime.clock, ManualClock):
            raise TypeError("a replay needs a ManualClock to move")
        self.runtime = runtime
        self.clock: ManualClock = runtime.clock
        self.plan = plan
        self.events = events or (lambda kind, message: None)
        self.jobs = PipelineJobs(runtime, events=self.events, model_types=(plan.model_type,))

    def prepare(self, end: datetime, progress: Progress | None = None) -> ReplayResult:
        """Simulate the world and load, score and build its first ``warm_days``; train."""
        plan, runtime = self.plan, self.runtime
        simulator = MarketSimulator.ending_at(
            end,
            plan.days,
            plan.seed,
            regime_change_day=plan.regime_change_day,
            post_change_volatility=plan.post_change_volatility,
            post_change_news_rate=plan.post_change_news_rate,
        )
        config = simulator.config
        world = SimulatedWorld(config)
        world.save(runtime.settings.home)
        world.use(simulator)
        self.jobs.world = world
        warm_end = config.start + timedelta(days=plan.warm_days)
        self.clock.set(warm_end)
        simulate_into_store(
            runtime.store, self.clock, simulator, config.start, warm_end, runtime.settings.symbol
        )
        self.jobs.runner.run("sentiment", self.jobs.score_sentiment)
        self.jobs.runner.run("features", self.jobs.build_features)
        feature_sets = self.jobs.feature_sets()
        for feature_set in feature_sets:
            result = runtime.retraining.retrain_model(
                feature_set,
                plan.model_type,
                trigger="initial",
                reasons=[f"first champion, trained on the first {plan.warm_days} days"],
                actor="demo",
            )
            if not result.get("success"):
                self.events("kept", f"{feature_set}: no first champion: {result.get('error')}")
                continue
            version = result["new_model"]["model_version"]
            champion = runtime.registry.champion(feature_set, plan.model_type)
            if champion is None:
                words = "no first champion"
            elif champion.version == version:
                words = f"first champion {version}"
            else:
                words = f"first champion is the declared baseline {champion.version}"
            self.events(
                "deployed" if champion is not None else "kept",
                f"{feature_set}/{plan.model_type}: {words}: {result['deployment']['reason']}",
            )
        return ReplayResult(
            plan=plan,
            start=config.start,
            change_at=config.regime_change_at or config.end,
            end=config.end,
            feature_sets=feature_sets,
        )

    def run(self, result: ReplayResult, progress: Progress | None = None) -> ReplayResult:
        """Move the clock hour by hour to the end, running the jobs at every hour."""
        hour = floor_hour(self.clock.now())
        total = int((result.end - hour) / HOUR)
        change_announced = False
        for step in range(1, total + 1):
            hour = hour + HOUR
            self.clock.set(hour)
            if not change_announced and hour >= result.change_at:
                self.events("market", "the market's regime changes now (hidden from the system)")
                change_announced = True
            run_due_jobs(self.jobs, hour)
            if progress is not None:
                progress(step, total)
        self.runtime.logger.flush(timeout=30)
        return result


# ----------------------------------------------------------------------------- summary


def summarise(runtime: Runtime, result: ReplayResult) -> dict[str, Any]:
    """The story of a replay, per feature set, read back from the store."""
    rows = {}
    for feature_set in result.feature_sets:
        pair = (feature_set, result.plan.model_type)
        rows[feature_set] = {
            "predictions": _count_predictions(runtime, pair),
            "before_change": _accuracy(runtime, pair, result.start, result.change_at),
            "after_change": _accuracy(runtime, pair, result.change_at, result.end),
            "drift_alarms": _drift_alarms(runtime, feature_set),
            "retrainings": _retrainings(runtime, pair),
            "deployments_after_change": _deployments_after(runtime, pair, result),
            "decisions": _decisions(runtime, pair),
        }
    return rows


def _decisions(runtime: Runtime, pair: tuple[str, str]) -> list[dict[str, Any]]:
    """Every move of the pair's champion with the evidence it rested on (its reason)."""
    evidence = {}
    with runtime.store.session() as session:
        for version, stored in session.execute(
            select(RetrainingRun.challenger_version, RetrainingRun.evidence).where(
                RetrainingRun.feature_set == pair[0],
                RetrainingRun.model_type == pair[1],
                RetrainingRun.decision.in_(["deployed", "fallback"]),
            )
        ):
            evidence[version] = stored
    return [
        {
            "at": change.changed_at,
            "action": change.action,
            "version": change.version,
            "previous_version": change.previous_version,
            "reason": change.reason,
            "evidence": evidence.get(change.version),
        }
        for change in runtime.registry.champion_history(*pair)
    ]


def _count_predictions(runtime: Runtime, pair: tuple[str, str]) -> int:
    with runtime.store.session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    PredictionLog.feature_set == pair[0],
                    PredictionLog.model_type == pair[1],
                    PredictionLog.source != SHADOW_SOURCE,
                )
            )
            or 0
        )


def _accuracy(
    runtime: Runtime, pair: tuple[str, str], since: datetime, until: datetime
) -> dict[str, Any]:
    with runtime.store.session() as session:
        outcomes = list(
            session.scalars(
                select(PredictionLog.prediction_correct).where(
                    PredictionLog.feature_set == pair[0],
                    PredictionLog.model_type == pair[1],
                    PredictionLog.outcome_status == "resolved",
                    PredictionLog.source != SHADOW_SOURCE,
                    PredictionLog.target_ts >= since,
                    PredictionLog.target_ts < until,
                )
            )
        )
    return _rate(sum(1 for right in outcomes if right), len(outcomes))


def _rate(correct: int, total: int) -> dict[str, Any]:
    if not total:
        return {"accuracy": None, "n": 0, "interval": None}
    return {
        "accuracy": correct / total,
        "n": total,
        "interval": list(wilson_interval(correct, total)),
    }


def _drift_alarms(runtime: Runtime, feature_set: str) -> int:
    with runtime.store.session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    DriftReport.kind == "summary",
                    DriftReport.feature_set == feature_set,
                    DriftReport.severity.in_(["medium", "high"]),
                )
            )
            or 0
        )


def _retrainings(runtime: Runtime, pair: tuple[str, str]) -> dict[str, int]:
    with runtime.store.session() as session:
        runs = session.execute(
            select(RetrainingRun.trigger, RetrainingRun.decision).where(
                RetrainingRun.feature_set == pair[0], RetrainingRun.model_type == pair[1]
            )
        ).all()
    return {
        "runs": sum(1 for trigger, _ in runs if trigger != "initial"),
        "deployed": sum(1 for trigger, d in runs if trigger != "initial" and d == "deployed"),
    }


def _deployments_after(
    runtime: Runtime, pair: tuple[str, str], result: ReplayResult
) -> list[dict[str, Any]]:
    """Each deployment after the change: the new model's realised accuracy from then on,
    and the replaced champion's accuracy on exactly the same hours (shadow evaluation)."""
    registry = runtime.registry
    found = []
    changes = [
        change
        for change in registry.champion_history(*pair)
        if change.changed_at >= result.change_at and change.action in ("deploy", "fallback")
    ]
    for change in changes:
        if change.previous_version is None:
            continue
        with runtime.store.session() as session:
            predictions = session.execute(
                select(
                    PredictionLog.feature_ts,
                    PredictionLog.actual_direction,
                    PredictionLog.prediction,
                )
                .where(
                    PredictionLog.model_version == change.version,
                    PredictionLog.outcome_status == "resolved",
                    PredictionLog.source == "scheduled",
                )
                .order_by(PredictionLog.feature_ts)
            ).all()
        if not predictions:
            continue
        hours = [row.feature_ts for row in predictions]
        actual = np.array([row.actual_direction for row in predictions])
        new_right = int(np.sum(np.array([row.prediction for row in predictions]) == actual))
        old = registry.get(change.previous_version)
        frame = load_feature_frame(
            runtime.store,
            pair[0],
            FEATURE_VERSION,
            old.feature_names,
            start=hours[0],
            end=hours[-1] + HOUR,
        ).loc[hours]
        pipeline = registry.load_pipeline(old)
        old_predictions = pipeline.predict(frame)
        old_right = int(np.sum(old_predictions == actual))
        found.append(
            {
                "deployed_at": change.changed_at,
                "new_version": change.version,
                "old_version": old.version,
                "hours": len(hours),
                "new_model": _rate(new_right, len(hours)),
                "old_champion_same_hours": _rate(old_right, len(hours)),
            }
        )
    return found
