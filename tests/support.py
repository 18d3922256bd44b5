"""Building blocks tests share: a small simulated market taken through the real pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from btcmlops.clock import ManualClock
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.features.builder import build_features
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
from btcmlops.modeling.registry import ModelRegistry, ModelVersionInfo
from btcmlops.modeling.training import train_from_store
from btcmlops.sentiment.scoring import score_pending_articles
from btcmlops.sentiment.vader import VaderScorer


@dataclass
class TrainedHome:
    store: Store
    clock: ManualClock
    settings: Settings
    registry: ModelRegistry
    champions: dict[tuple[str, str], ModelVersionInfo]
    simulator: MarketSimulator


def build_trained_home(
    store: Store,
    settings: Settings,
    end: datetime,
    *,
    days: int = 28,
    seed: int = 7,
    pairs: tuple[tuple[str, str], ...] = (("vader", "random_forest"),),
    news_rate_per_hour: float = 1.0,
    **market: object,
) -> TrainedHome:
    """Simulate ``days`` ending at ``end``, score with VADER, build features, train champions."""
    clock = ManualClock(end)
    simulator = MarketSimulator.ending_at(
        end, days, seed, news_rate_per_hour=news_rate_per_hour, **market
    )
    config = simulator.config
    simulate_into_store(store, clock, simulator, config.start, config.end, settings.symbol)
    score_pending_articles(store, VaderScorer(), clock=clock)
    for feature_set in {fs for fs, _ in pairs}:
        build_features(store, feature_set, clock=clock, symbol=settings.symbol)
    registry = ModelRegistry(store, settings.artifacts_dir, clock)
    champions = {}
    for feature_set, model_type in pairs:
        trained = train_from_store(
            store, feature_set, model_type, clock=clock, settings=settings, symbol=settings.symbol
        )
        info = registry.register(trained, created_by="test", reason="fixture")
        champions[(feature_set, model_type)] = registry.promote(
            info.version, actor="test", reason="fixture"
        )
    return TrainedHome(store, clock, settings, registry, champions, simulator)


def reopen_home(url: str, home_dir, template: TrainedHome, end: datetime) -> TrainedHome:
    """A :class:`TrainedHome` over a cloned database and a copied home folder."""
    store = Store.open(url)
    settings = template.settings.model_copy(update={"home": home_dir, "database_url": url})
    clock = ManualClock(end)
    registry = ModelRegistry(store, settings.artifacts_dir, clock)
    champions = {pair: registry.get(info.version) for pair, info in template.champions.items()}
    return TrainedHome(store, clock, settings, registry, champions, template.simulator)
