"""``/models``: the registry as the service sees it, reloads and champion moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from btcmlops.api.schemas.common import IsoTime


class ModelSummary(BaseModel):
    model_type: str
    versions: list[str]
    latest: str | None
    champion: str | None
    champion_kind: Literal["learned", "baseline"] | None = None
    fallback: str | None = Field(
        None, description="In words, when the champion is a declared naive-baseline fallback."
    )
    shadows: list[str] = Field(
        default_factory=list, description="Versions predicting in shadow beside the champion."
    )


class ModelsResponse(BaseModel):
    success: Literal[True] = True
    available_models: dict[str, list[ModelSummary]]


class ReloadedModelInfo(BaseModel):
    feature_set: str
    model_type: str
    version: str
    loaded_at: datetime


class ReloadResponse(BaseModel):
    success: Literal[True] = True
    message: str
    model_info: ReloadedModelInfo


class ChampionMove(BaseModel):
    feature_set: str
    model_type: str
    version: str
    previous_version: str | None
    action: str
    reason: str


class ChampionMoveResponse(BaseModel):
    success: Literal[True] = True
    message: str
    champion: ChampionMove


class ModelVersionRecord(BaseModel):
    """One registered version with everything recorded when it was trained."""

    version: str
    feature_set: str
    model_type: str
    status: str = Field(description="champion, shadow, archived, ...")
    kind: Literal["learned", "baseline"]
    baseline_rule: str | None
    test_accuracy: float | None
    test_accuracy_ci: list[float | None] = Field(description="Wilson 95% interval: low, high.")
    validation_accuracy: float | None
    feature_version: str
    features: int
    created_at: IsoTime
    created_by: str
    reason: str
    id: int
    artifact_path: str
    artifact_sha256: str
    feature_names: list[str]
    # The training record as stored with the version; its keys depend on the kind of model
    # (a learned model's test, validation and baselines metrics and feature importances; a
    # declared baseline's rule) and on the classifier (its hyperparameters).
    metrics: dict[str, Any]
    windows: dict[str, Any]
    hyperparameters: dict[str, Any]
    library_versions: dict[str, str]


class ModelVersionsResponse(BaseModel):
    success: Literal[True] = True
    count: int
    versions: list[ModelVersionRecord] = Field(description="Newest first.")


class ChampionChange(BaseModel):
    """One move of a champion pointer: who, when, why."""

    id: int
    feature_set: str
    model_type: str
    version: str
    previous_version: str | None
    action: str
    actor: str
    reason: str
    changed_at: IsoTime


class ChampionHistoryResponse(BaseModel):
    success: Literal[True] = True
    count: int
    history: list[ChampionChange] = Field(description="Oldest first.")
