"""The model registry: versions, their artifacts, and the champion pointer (DESIGN decision 6).

Every trained model that is kept becomes a ``model_versions`` row (status ``candidate``)
with its artifact's path and sha256, scores, data windows, feature list, hyperparameters
and library versions. Each (feature set, model type) has at most one ``champion``; the
database enforces it with a partial unique index. Promotion and rollback move that pointer
in one transaction (old champion ``archived`` first, then the new one ``champion``, then a
``champion_history`` row saying who, when, why and what was replaced), and only after the
new champion's artifact has passed the integrity checks, so a tampered or missing artifact
never replaces a working champion. Serving loads the champion through this pointer, never
"the newest file in a folder".

Rollback re-points to the champion that the current one replaced when it was *promoted*;
a rollback is not itself something to return to, so rolling back twice walks two steps
back (v1 → v2 → v3, rollback → v2, rollback → v1) instead of toggling between two models.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline
from sqlalchemy import String, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from btcmlops.clock import Clock
from btcmlops.db.models import ChampionChange, ModelVersion
from btcmlops.db.store import Store
from btcmlops.errors import ConflictError, InvalidInputError, NotFoundError
from btcmlops.modeling.artifacts import (
    ARTIFACT_SUFFIX,
    TypeAudit,
    VerifiedPipelines,
    serialize_pipeline,
    sha256_hex,
    write_artifact,
)
from btcmlops.modeling.baselines import RULE_WORDS
from btcmlops.modeling.training import TrainedModel

CANDIDATE = "candidate"
CHAMPION = "champion"
ARCHIVED = "archived"
SHADOW = "shadow"  # predicts every hour beside the champion, logged, never served
PROMOTE = "promote"
ROLLBACK = "rollback"
_NAME_LIMIT = 64  # created_by / actor column width


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model, as stored."""

    id: int
    version: str
    feature_set: str
    model_type: str
    status: str
    artifact_path: str
    artifact_sha256: str
    feature_version: str
    feature_names: list[str]
    metrics: dict[str, Any]
    windows: dict[str, Any]
    hyperparameters: dict[str, Any]
    library_versions: dict[str, Any]
    drift_reference: dict[str, Any] | None
    created_at: datetime
    created_by: str
    reason: str

    @property
    def test_accuracy(self) -> float | None:
        """The accuracy recorded on the test window (the champion's baseline for retraining)."""
        return self.metrics.get("test_accuracy")

    @property
    def baseline_rule(self) -> str | None:
        """The naive rule this version is, for a declared fallback; ``None`` if learned."""
        return self.hyperparameters.get("baseline_rule")

    @property
    def kind(self) -> str:
        return "learned" if self.baseline_rule is None else "baseline"

    @classmethod
    def from_row(cls, row: ModelVersion) -> ModelVersionInfo:
        return cls(
            id=row.id,
            version=row.version,
            feature_set=row.feature_set,
            model_type=row.model_type,
            status=row.status,
            artifact_path=row.artifact_path,
            artifact_sha256=row.artifact_sha256,
            feature_version=row.feature_version,
            feature_names=list(row.feature_names),
            metrics=dict(row.metrics),
            windows=dict(row.windows),
            hyperparameters=dict(row.hyperparameters),
            library_versions=dict(row.library_versions),
            drift_reference=None if row.drift_reference is None else dict(row.drift_reference),
            created_at=row.created_at,
            created_by=row.created_by,
            reason=row.reason,
        )

    def summary(self) -> dict[str, Any]:
        """The fields a listing shows (JSON-safe)."""
        test = self.metrics.get("test", {})
        return {
            "version": self.version,
            "feature_set": self.feature_set,
            "model_type": self.model_type,
            "status": self.status,
            "kind": self.kind,
            "baseline_rule": self.baseline_rule,
            "test_accuracy": self.test_accuracy,
            "test_accuracy_ci": [test.get("accuracy_ci_low"), test.get("accuracy_ci_high")],
            "validation_accuracy": self.metrics.get("validation_accuracy"),
            "feature_version": self.feature_version,
            "features": len(self.feature_names),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "reason": self.reason,
        }

    def as_dict(self) -> dict[str, Any]:
        """Every field (JSON-safe)."""
        return {
            **self.summary(),
            "id": self.id,
            "artifact_path": self.artifact_path,
            "artifact_sha256": self.artifact_sha256,
            "feature_names": self.feature_names,
            "metrics": self.metrics,
            "windows": self.windows,
            "hyperparameters": self.hyperparameters,
            "library_versions": self.library_versions,
        }


@dataclass(frozen=True)
class ChampionChangeInfo:
    """One move of a champion pointer."""

    id: int
    feature_set: str
    model_type: str
    version: str
    previous_version: str | None
    action: str
    actor: str
    reason: str
    changed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "feature_set": self.feature_set,
            "model_type": self.model_type,
            "version": self.version,
            "previous_version": self.previous_version,
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "changed_at": self.changed_at.isoformat(),
        }


class ModelRegistry:
    """Registered models of every (feature set, model type) and their champion pointers.

    Parameters
    ----------
    store:
        Where the ``model_versions`` and ``champion_history`` rows live.
    artifacts_dir:
        Root folder of the artifacts (``Settings.artifacts_dir``); stored paths are
        relative to it, so the data folder can move.
    clock:
        Source of every recorded instant.
    """

    def __init__(self, store: Store, artifacts_dir: Path, clock: Clock) -> None:
        self._store = store
        self._artifacts_dir = Path(artifacts_dir)
        self._clock = clock
        self._pipelines = VerifiedPipelines()
        self._type_audit = TypeAudit()
        self._live = _LiveModelsCache(store)

    # ------------------------------------------------------------------------- register

    def register(
        self,
        trained: TrainedModel,
        *,
        created_by: str,
        reason: str = "",
        drift_reference: dict[str, Any] | None = None,
    ) -> ModelVersionInfo:
        """Save ``trained``'s pipeline as an artifact and record it as a ``candidate``."""
        _check_name("created_by", created_by)
        data = serialize_pipeline(trained.pipeline, self._type_audit)
        digest = sha256_hex(data)
        created_at = self._clock.now()
        rule = trained.hyperparameters.get("baseline_rule")
        kind = trained.model_type if rule is None else f"{trained.model_type}-baseline-{rule}"
        version = f"{trained.feature_set}-{kind}-{created_at:%Y%m%dT%H%M%S}-{digest[:8]}"
        relative = Path(trained.feature_set, trained.model_type, version + ARTIFACT_SUFFIX)
        path = self._artifacts_dir / relative
        if self._find(version) is not None or path.exists():
            raise ConflictError(f"model version {version} is already registered")

        write_artifact(path, data)
        row = ModelVersion(
            version=version,
            feature_set=trained.feature_set,
            model_type=trained.model_type,
            status=CANDIDATE,
            artifact_path=relative.as_posix(),
            artifact_sha256=digest,
            feature_version=trained.feature_version,
            feature_names=list(trained.feature_names),
            metrics=json_safe(trained.metrics_document()),
            windows=json_safe(trained.windows()),
            hyperparameters=json_safe(trained.hyperparameters),
            library_versions=json_safe(trained.library_versions),
            drift_reference=None if drift_reference is None else json_safe(drift_reference),
            created_at=created_at,
            created_by=created_by,
            reason=reason,
        )
        try:
            with self._store.session() as session:
                session.add(row)
                session.flush()
                info = ModelVersionInfo.from_row(row)
        except IntegrityError as exc:
            path.unlink(missing_ok=True)
            raise ConflictError(f"model version {version} is already registered") from exc
        except BaseException:
            path.unlink(missing_ok=True)  # no row points at it: do not leave an orphan file
            raise
        self._pipelines.remember(
            trained.pipeline,
            sha256=digest,
            model_type=trained.model_type,
            feature_names=trained.feature_names,
        )
        return info

    # ---------------------------------------------------------------------------- reads

    def get(self, version: str) -> ModelVersionInfo:
        """The registered model ``version``, or :class:`NotFoundError`."""
        info = self._find(version)
        if info is None:
            raise NotFoundError(f"no model version {version!r} in the registry")
        return info

    def champion(self, feature_set: str, model_type: str) -> ModelVersionInfo | None:
        """The current champion of the pair, or ``None`` if none has been promoted."""
        for model in self._live.current().models:
            if model.status == CHAMPION and (model.feature_set, model.model_type) == (
                feature_set,
                model_type,
            ):
                return model
        return None

    def list_versions(
        self, feature_set: str | None = None, model_type: str | None = None
    ) -> list[ModelVersionInfo]:
        """Registered models, newest first, optionally of one feature set and/or model type."""
        query = select(ModelVersion)
        if feature_set is not None:
            query = query.where(ModelVersion.feature_set == feature_set)
        if model_type is not None:
            query = query.where(ModelVersion.model_type == model_type)
        query = query.order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        with self._store.session() as session:
            return [ModelVersionInfo.from_row(row) for row in session.scalars(query)]

    def champion_history(
        self, feature_set: str | None = None, model_type: str | None = None
    ) -> list[ChampionChangeInfo]:
        """Every champion change, oldest first, optionally of one feature set and/or type."""
        return [
            change
            for change in self._live.current().history
            if (feature_set is None or change.feature_set == feature_set)
            and (model_type is None or change.model_type == model_type)
        ]

    # -------------------------------------------------------------------------- loading

    def champion_pairs(self) -> list[tuple[str, str]]:
        """Every (feature set, model type) that has a champion, sorted."""
        return sorted(
            (model.feature_set, model.model_type)
            for model in self._live.current().models
            if model.status == CHAMPION
        )

    def shadows(self, feature_set: str, model_type: str) -> list[ModelVersionInfo]:
        """The pair's shadow models, oldest first."""
        return [
            model
            for model in self._live.current().models
            if model.status == SHADOW
            and (model.feature_set, model.model_type) == (feature_set, model_type)
        ]

    def set_status(self, version: str, status: str) -> None:
        """Move a non-champion version between ``candidate``, ``shadow`` and ``archived``."""
        if status not in (CANDIDATE, SHADOW, ARCHIVED):
            raise InvalidInputError(f"cannot set a model's status to {status!r}")
        with self._store.session() as session:
            row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
            if row is None:
                raise NotFoundError(f"no model version {version!r} in the registry")
            if row.status == CHAMPION:
                raise ConflictError(f"{version} is the champion; promote another model instead")
            row.status = status

    def artifact_file(self, info: ModelVersionInfo) -> Path:
        """Where ``info``'s artifact lives on this machine."""
        path = Path(info.artifact_path)
        return path if path.is_absolute() else self._artifacts_dir / path

    def load_pipeline(self, model: ModelVersionInfo | str) -> Pipeline:
        """The fitted pipeline of a registered model, after the integrity checks.

        Raises :class:`~btcmlops.errors.ArtifactIntegrityError` if the artifact is missing,
        its sha256 differs from the registry's, or it contains untrusted types. The file is
        read and checked on every call; bytes deserialised before return the same pipeline
        object (:class:`~btcmlops.modeling.artifacts.VerifiedPipelines`): predict with it,
        never fit it.
        """
        info = self.get(model) if isinstance(model, str) else model
        return self._pipelines.load(
            self.artifact_file(info),
            expected_sha256=info.artifact_sha256,
            model_type=info.model_type,
            feature_names=info.feature_names,
            label=info.version,
        )

    # ------------------------------------------------------------------ champion pointer

    def promote(
        self,
        version: str,
        *,
        actor: str,
        reason: str,
        action: str = PROMOTE,
        displaced_status: str = ARCHIVED,
    ) -> ModelVersionInfo:
        """Make ``version`` the champion of its pair, archiving the current one, atomically.

        Refused, with the current champion left in place, if the artifact fails its
        integrity checks (:class:`~btcmlops.errors.ArtifactIntegrityError`) or if the
        version is already the champion (:class:`ConflictError`).
        """
        _check_name("actor", actor)
        candidate = self.get(version)
        if candidate.status == CHAMPION:
            raise ConflictError(
                f"{version} is already the champion of "
                f"{candidate.feature_set}/{candidate.model_type}"
            )
        self.load_pipeline(candidate)  # verify before the pointer moves
        return self._move_champion(
            candidate,
            action=action,
            actor=actor,
            reason=reason,
            displaced_status=displaced_status,
        )

    def rollback(
        self,
        feature_set: str,
        model_type: str,
        *,
        actor: str,
        reason: str,
        action: str = ROLLBACK,
    ) -> ModelVersionInfo:
        """Re-point the champion to the one the current champion replaced when promoted.

        Raises :class:`NotFoundError` when there is no champion or nothing before it, and
        :class:`~btcmlops.errors.ArtifactIntegrityError` (champion unchanged) when the
        previous champion's artifact fails its checks.
        """
        _check_name("actor", actor)
        current = self.champion(feature_set, model_type)
        if current is None:
            raise NotFoundError(f"{feature_set}/{model_type} has no champion to roll back from")
        with self._store.session() as session:
            previous_id = session.scalar(
                select(ChampionChange.previous_model_version_id)
                .where(
                    ChampionChange.model_version_id == current.id,
                    ChampionChange.action.not_like("%" + ROLLBACK),
                )
                .order_by(ChampionChange.changed_at.desc(), ChampionChange.id.desc())
                .limit(1)
            )
            previous = None if previous_id is None else session.get(ModelVersion, previous_id)
            target = None if previous is None else ModelVersionInfo.from_row(previous)
        if target is None:
            raise NotFoundError(
                f"nothing to roll back to: {current.version} was the first champion of "
                f"{feature_set}/{model_type}"
            )
        self.load_pipeline(target)
        return self._move_champion(
            target, action=action, actor=actor, reason=reason, expected_current=current
        )

    def _move_champion(
        self,
        target: ModelVersionInfo,
        *,
        action: str,
        actor: str,
        reason: str,
        expected_current: ModelVersionInfo | None = None,
        displaced_status: str = ARCHIVED,
    ) -> ModelVersionInfo:
        pair = f"{target.feature_set}/{target.model_type}"
        try:
            with self._store.session() as session:
                current = session.scalar(
                    _champion_query(target.feature_set, target.model_type).with_for_update()
                )
                if expected_current is not None and (
                    current is None or current.id != expected_current.id
                ):
                    raise ConflictError(
                        f"the champion of {pair} changed while rolling back; nothing was changed"
                    )
                row = session.get(ModelVersion, target.id, with_for_update=True)
                if row is None:
                    raise NotFoundError(f"no model version {target.version!r} in the registry")
                if current is not None and current.id == row.id:
                    raise ConflictError(f"{row.version} is already the champion of {pair}")
                if current is not None:
                    current.status = displaced_status
                    # Flushed on its own: the one-champion index must see the demotion first.
                    session.flush()
                row.status = CHAMPION
                session.add(
                    ChampionChange(
                        feature_set=row.feature_set,
                        model_type=row.model_type,
                        model_version_id=row.id,
                        previous_model_version_id=None if current is None else current.id,
                        action=action,
                        actor=actor,
                        reason=reason,
                        changed_at=self._clock.now(),
                    )
                )
                session.flush()
                return ModelVersionInfo.from_row(row)
        except IntegrityError as exc:
            raise ConflictError(
                f"another change to the champion of {pair} happened at the same time; "
                "nothing was changed, try again"
            ) from exc

    def _find(self, version: str) -> ModelVersionInfo | None:
        with self._store.session() as session:
            row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
            return None if row is None else ModelVersionInfo.from_row(row)


def fallback_words(model: ModelVersionInfo) -> str | None:
    """A declared fallback in words (``None`` for a learned model)."""
    rule = model.baseline_rule
    if rule is None:
        return None
    return (
        f"{model.feature_set}/{model.model_type} serves a naive baseline, not a learned "
        f"model: {RULE_WORDS.get(rule, rule)} ({model.version}). {model.reason}"
    )


@dataclass(frozen=True)
class _LiveModels:
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


class _LiveModelsCache:
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
        self._live: _LiveModels | None = None

    def current(self) -> _LiveModels:
        with self._store.session() as session:
            fingerprint = _fingerprint(session)
            cached = self._live
            if cached is not None and cached.fingerprint == fingerprint:
                return cached
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
            live = _LiveModels(fingerprint=fingerprint, models=models, history=history)
        with self._lock:
            self._live = live
        return live


def _fingerprint(session: Session) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((int(key), str(kind)) for key, kind in session.execute(_FINGERPRINT)))


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


def _champion_query(feature_set: str, model_type: str):  # type: ignore[no-untyped-def]
    return select(ModelVersion).where(
        ModelVersion.feature_set == feature_set,
        ModelVersion.model_type == model_type,
        ModelVersion.status == CHAMPION,
    )


def _check_name(field: str, value: str) -> None:
    if not value or len(value) > _NAME_LIMIT:
        raise InvalidInputError(f"{field} must be 1 to {_NAME_LIMIT} characters, got {value!r}")


def json_safe(value: Any) -> Any:
    """``value`` with NaN/infinity as ``None``, numpy scalars as Python, instants as ISO text.

    PostgreSQL's JSONB rejects NaN, so nothing non-finite may reach a JSON column.
    """
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a JSON column: {value!r}")
