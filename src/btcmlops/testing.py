"""Building blocks the tests (``tests/support.py``) and the benchmarks (``bench/``) share.

Nothing in the service imports this module; it lives in the package so that both can import
it without putting one folder on the other's path (benchmarks run as plain scripts):

- :func:`free_port`: a TCP port nobody listens on, for a server the caller starts;
- :func:`scratch_database`: an empty SQLite file or a throwaway PostgreSQL schema;
- :func:`build_trained_home`: a simulated market taken through the real pipeline (stored,
  scored with VADER, turned into features) with a trained, promoted champion per pair.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from btcmlops.clock import ManualClock
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.features.builder import build_features
from btcmlops.ingest.simulator import MarketSimulator, simulate_into_store
from btcmlops.mlops.article_scoring import score_pending_articles
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import ModelVersionInfo
from btcmlops.modeling.training import train_from_store
from btcmlops.sentiment.vader import VaderScorer

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_database(
    folder: Path, postgres_url: str | None = None, *, schema_prefix: str = "scratch_"
) -> Iterator[str]:
    """A URL to an empty database for as long as the block runs.

    Without ``postgres_url``: a SQLite file ``btcmlops.db`` in ``folder``. With it: a new
    schema ``<schema_prefix><random>`` on that server, reached through
    ``?options=-csearch_path=<schema>`` and dropped at the end. No other schema is touched.
    """
    if not postgres_url:
        yield f"sqlite:///{folder / 'btcmlops.db'}"
        return
    schema = f"{schema_prefix}{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


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
    pairs: Sequence[tuple[str, str]] = (("vader", "random_forest"),),
    news_rate_per_hour: float = 1.0,
    actor: str = "test",
    reason: str = "fixture",
    with_importances: bool = True,
    **market: object,
) -> TrainedHome:
    """Simulate ``days`` ending at ``end``, score with VADER, build features, train champions.

    ``market`` holds further :class:`~btcmlops.ingest.simulator_config.SimulationConfig` fields;
    ``actor`` and ``reason`` are recorded with each registration and promotion;
    ``with_importances=False`` skips the permutation importances (the same models, sooner).
    """
    clock = ManualClock(end)
    simulator = MarketSimulator.ending_at(
        end, days, seed, news_rate_per_hour=news_rate_per_hour, **market
    )
    config = simulator.config
    simulate_into_store(store, clock, simulator, config.start, config.end, settings.symbol)
    score_pending_articles(store, VaderScorer(), clock=clock)
    for feature_set in sorted({feature_set for feature_set, _ in pairs}):
        build_features(store, feature_set, clock=clock, symbol=settings.symbol)
    registry = ModelRegistry(store, settings.artifacts_dir, clock)
    champions = {}
    for feature_set, model_type in pairs:
        trained = train_from_store(
            store,
            feature_set,
            model_type,
            clock=clock,
            settings=settings,
            symbol=settings.symbol,
            with_importances=with_importances,
        )
        info = registry.register(trained, created_by=actor, reason=reason)
        champions[(feature_set, model_type)] = registry.promote(
            info.version, actor=actor, reason=reason
        )
    return TrainedHome(store, clock, settings, registry, champions, simulator)
