"""The registry's hot reads (champions, shadows, champion history), decoded once per change.

Separate from ``registry`` because it is a cache with its own invalidation rule (a
fingerprint query), not part of what the registry records or how the pointer moves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Connection, String, func, literal, select
from sqlalchemy.orm import Session, aliased

from btcmlops.db.models import ChampionChange, ModelVersion
from btcmlops.db.store import Store
from btcmlops.modeling.registry_records import (
    CHAMPION,
    SHADOW,
    ChampionChangeInfo,
    ModelVersionInfo,
)


@dataclass(frozen=True)
class LiveModels:
    """The champions and shadows (oldest first) and every champion change, read together."""

    fingerprint: tuple[tuple[int, str], ...]
    models: tuple[ModelVersionInfo, ...]
    history: tuple[ChampionChangeInfo, ...]


# What the cached reads depend on: which versions are champions or shadows, and the newest
# champion change. Version rows never change except their status, and the history is only
# appended to, so an equal fingerprint means equal answers.
_FINGERPRINT = (
    select(ModelVersion.id, ModelVersion.status)
    .where(ModelVersion.status.in_((CHAMPION, SHADOW)))
    .union_all(
        select(func.coalesce(func.max(ChampionChange.id), 0), literal("history", type_=String))
    )
)


class LiveModelsCache:
    """The registry's hot reads, decoded once per change instead of on every call.

    The hourly jobs ask for the champion, its shadows, the champion pairs and the champion
    history several times an hour; each full read decodes every JSON column (the drift
    reference is the large one). Each call here costs one small query, the fingerprint; the
    rows are read again only when it changed, whichever process changed them. The returned
    infos are shared between callers: treat them as read-only.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._live: LiveModels | None = None

    def current(self) -> LiveModels:
        with self._store.connection() as connection:
            fingerprint = _fingerprint(connection)
        cached = self._live
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
        with self._store.session() as session:
            models = tuple(
                ModelVersionInfo.from_row(row)
                for row in session.scalars(
                    select(ModelVersion)
                    .where(ModelVersion.status.in_((CHAMPION, SHADOW)))
                    .order_by(ModelVersion.created_at, ModelVersion.id)
                )
            )
            history = tuple(_history(session))
            # The fingerprint was read before the rows: if anything moved in between, it is
            # older than the rows and the next call reloads.
            live = LiveModels(fingerprint=fingerprint, models=models, history=history)
        with self._lock:
            self._live = live
        return live


def _fingerprint(connection: Connection) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((int(key), str(kind)) for key, kind in connection.execute(_FINGERPRINT)))


def _history(session: Session) -> list[ChampionChangeInfo]:
    new = aliased(ModelVersion)
    previous = aliased(ModelVersion)
    query = (
        select(ChampionChange, new.version, previous.version)
        .join(new, ChampionChange.model_version_id == new.id)
        .outerjoin(previous, ChampionChange.previous_model_version_id == previous.id)
        .order_by(ChampionChange.changed_at, ChampionChange.id)
    )
    return [
        ChampionChangeInfo(
            id=change.id,
            feature_set=change.feature_set,
            model_type=change.model_type,
            version=version,
            previous_version=previous_version,
            action=change.action,
            actor=change.actor,
            reason=change.reason,
            changed_at=change.changed_at,
        )
        for change, version, previous_version in session.execute(query)
    ]
