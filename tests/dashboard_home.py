"""A home with history for the dashboard tests and screenshots.

Weeks of simulated market, then the last days replayed hour by hour on a pinned clock through
the scheduler's own jobs (``PipelineJobs``): ingest, sentiment, features, predictions,
outcomes every hour; drift and retraining checks every day. Half-way through, the weekly
retraining runs, and every pair ends with a second champion so rollback has somewhere to go:
a hand-promoted model whose predecessor stays in shadow (judged for rollback), or, for
``fallback_model_type``, a declared last-hour baseline whose displaced learned champion
predicts in shadow as a challenger. Shadows predict every replayed hour after that, so the
dashboard has evidence paths, a fallback notice and shadow rows to draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from btcmlops.clock import HOUR, ManualClock
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.store import Store
from btcmlops.features.builder import build_features
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
from btcmlops.ingest.world import SimulatedWorld
from btcmlops.mlops.article_scoring import score_pending_articles
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.retraining.rollback import FALLBACK
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.baselines import LAST_HOUR
from btcmlops.modeling.registry_records import SHADOW
from btcmlops.modeling.training import train_from_store
from btcmlops.sentiment.vader import VaderScorer

MODEL_TYPES = ("random_forest", "logistic_regression")


@dataclass
class DashboardHome:
    store: Store
    clock: ManualClock
    settings: Settings
    model_types: tuple[str, ...]
    fallback_model_type: str | None = None
    first_champions: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)  # model type -> baseline version
    events: list[tuple[str, str]] = field(default_factory=list)


def build_dashboard_home(
    store: Store,
    settings: Settings,
    end: datetime,
    *,
    days: int = 60,
    replay_days: int = 10,
    regime_change_days_before_end: int = 5,
    seed: int = 11,
    model_types: tuple[str, ...] = MODEL_TYPES,
    fallback_model_type: str | None = MODEL_TYPES[-1],
) -> DashboardHome:
    """Simulate ``days`` before ``end``, train VADER champions of ``model_types`` on all but the
    last ``replay_days``, then replay those days through the scheduler's jobs. Half-way, the
    pair of ``fallback_model_type`` (if any) falls back to a declared last-hour baseline.

    ``settings`` should make FinBERT unavailable (``finbert_model`` pointing nowhere), so the
    replay is VADER-only and independent of what the machine has cached.
    """
    replay_start = end - timedelta(days=replay_days)
    clock = ManualClock(replay_start)
    # One day beyond ``end``: the ingest job's simulator then covers every replayed hour.
    simulator = MarketSimulator.ending_at(
        end + timedelta(days=1),
        days + 1,
        seed,
        regime_change_day=days - regime_change_days_before_end,
        news_rate_per_hour=1.0,
    )
    world = SimulatedWorld(simulator.config)
    world.use(simulator)
    simulate_into_store(
        store, clock, simulator, simulator.config.start, replay_start, settings.symbol
    )
    score_pending_articles(store, VaderScorer(), clock=clock)
    build_features(store, "vader", clock=clock, symbol=settings.symbol)

    home = DashboardHome(store, clock, settings, model_types, fallback_model_type)
    runtime = Runtime(AppContext(settings=settings, clock=clock, _store=store))
    for model_type in model_types:
        home.first_champions[model_type] = _train_and_promote(runtime, model_type, "first champion")
    runtime.start()
    jobs = PipelineJobs(
        runtime,
        events=lambda kind, message: home.events.append((kind, message)),
        model_types=model_types,
        world=world,
    )
    weekly_retraining_at = replay_start + timedelta(days=replay_days // 2)
    try:
        hour = replay_start
        while hour < end:
            hour += HOUR
            clock.set(hour + timedelta(minutes=5))  # the hourly jobs run at hh:01 to hh:05
            jobs.hourly()
            if hour.hour == 0:
                clock.set(hour + timedelta(minutes=10))
                jobs.runner.run("drift_check", jobs.drift_check)
                clock.set(hour + timedelta(minutes=20))
                jobs.runner.run("retraining_check", jobs.retraining_check)
            if hour == weekly_retraining_at:
                clock.set(hour + timedelta(minutes=30))
                jobs.runner.run("scheduled_retraining", jobs.scheduled_retraining)
                for model_type in model_types:
                    if model_type == fallback_model_type:
                        home.fallbacks[model_type] = _declare_fallback(runtime, model_type)
                    else:
                        _second_champion(runtime, model_type)
    finally:
        runtime.close()
    return home


def _train_and_promote(
    runtime: Runtime, model_type: str, reason: str, *, displaced_status: str | None = None
) -> str:
    trained = train_from_store(
        runtime.store,
        "vader",
        model_type,
        clock=runtime.clock,
        settings=runtime.settings,
        symbol=runtime.settings.symbol,
    )
    info = runtime.registry.register(trained, created_by="dashboard-test", reason=reason)
    moved = {} if displaced_status is None else {"displaced_status": displaced_status}
    runtime.registry.promote(info.version, actor="dashboard-test", reason=reason, **moved)
    runtime.retraining.shadows.trim("vader", model_type)
    runtime.champion_changed("vader", model_type)
    return info.version


def _second_champion(runtime: Runtime, model_type: str) -> None:
    """Promote a fresh model if the weekly retraining kept the champion; the one it replaces
    predicts on in shadow, where the rollback check judges the two."""
    if len(runtime.registry.champion_history("vader", model_type)) < 2:
        _train_and_promote(
            runtime, model_type, "weekly retraining, promoted by hand", displaced_status=SHADOW
        )


def _declare_fallback(runtime: Runtime, model_type: str) -> str:
    """Serve the last-hour rule openly, as the loop does when no learned model has skill; the
    learned champion it displaces predicts on in shadow as a challenger."""
    champion = runtime.registry.champion("vader", model_type)
    assert champion is not None, f"vader/{model_type} has no champion to fall back from"
    reason = (
        f"declared for the dashboard tests: {champion.version} gathers live evidence in shadow "
        "while the pair serves the last-hour rule"
    )
    baseline = runtime.retraining.safeguards.register_baseline(
        "vader", model_type, list(champion.feature_names), LAST_HOUR, reason
    )
    runtime.registry.promote(
        baseline.version,
        actor="dashboard-test",
        reason=reason,
        action=FALLBACK,
        displaced_status=SHADOW,
    )
    runtime.retraining.shadows.trim("vader", model_type)
    runtime.champion_changed("vader", model_type)
    return baseline.version
