"""The registry's records: a registered model (``ModelVersionInfo``) and a move of a champion
pointer (``ChampionChangeInfo``) as stored, the statuses a model version can have, a declared
fallback in words, and ``jsonable`` for what goes into the JSON columns.

Separate from ``registry`` because far more code reads these records than changes the
registry: serving, the retraining loop, drift checks, the API and the CLI import them
without needing the artifact and champion-pointer machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from btcmlops.db.models import ModelVersion
from btcmlops.modeling.baselines import RULE_WORDS

CANDIDATE = "candidate"
CHAMPION = "champion"
ARCHIVED = "archived"
SHADOW = "shadow"  # predicts every hour beside the champion, logged, never served


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


def fallback_words(model: ModelVersionInfo) -> str | None:
    """A declared fallback in words (``None`` for a learned model)."""
    rule = model.baseline_rule
    if rule is None:
        return None
    return (
        f"{model.feature_set}/{model.model_type} serves a naive baseline, not a learned "
        f"model: {RULE_WORDS.get(rule, rule)} ({model.version}). {model.reason}"
    )
