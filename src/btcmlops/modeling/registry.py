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

The records the registry returns are ``registry_records``'; its hot reads are cached by
``live_models``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from btcmlops.clock import Clock
from btcmlops.db.models import ChampionChange, ModelVersion
from btcmlops.db.store import Store
from btcmlops.errors import ConflictError, InvalidInputError, NotFoundError
from btcmlops.jsonable import jsonable
from btcmlops.modeling.artifacts import (
    ARTIFACT_SUFFIX,
    TypeAudit,
    VerifiedPipelines,
    serialize_pipeline,
    sha256_hex,
    write_artifact,
)
from btcmlops.modeling.live_models import LiveModelsCache
from btcmlops.modeling.registry_records import (
    ARCHIVED,
    CANDIDATE,
    CHAMPION,
    SHADOW,
    ChampionChangeInfo,
    ModelVersionInfo,
)
from btcmlops.modeling.training import TrainedModel

PROMOTE = "promote"
ROLLBACK = "rollback"
_NAME_LIMIT = 64  # created_by / actor column width


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
        self._live = LiveModelsCache(store)

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
            metrics=jsonable(trained.metrics_document()),
            windows=jsonable(trained.windows()),
            hyperparameters=jsonable(trained.hyperparameters),
            library_versions=jsonable(trained.library_versions),
            drift_reference=None if drift_reference is None else jsonable(drift_reference),
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
        for model in self._live.current().models:  # a champion or shadow: already decoded
            if model.version == version:
                return model
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

    def champions(self) -> list[ModelVersionInfo]:
        """The champion of every pair that has one."""
        return [model for model in self._live.current().models if model.status == CHAMPION]

    def champion_pairs(self) -> list[tuple[str, str]]:
        """Every (feature set, model type) that has a champion, sorted."""
        return sorted((model.feature_set, model.model_type) for model in self.champions())

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


def _champion_query(feature_set: str, model_type: str):  # type: ignore[no-untyped-def]
    return select(ModelVersion).where(
        ModelVersion.feature_set == feature_set,
        ModelVersion.model_type == model_type,
        ModelVersion.status == CHAMPION,
    )


def _check_name(field: str, value: str) -> None:
    if not value or len(value) > _NAME_LIMIT:
        raise InvalidInputError(f"{field} must be 1 to {_NAME_LIMIT} characters, got {value!r}")
