"""``/models``: the registry as the service sees it; reload, promote and roll back."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from btcmlops.api.deps import ServicesDep, require_api_key, require_read_access
from btcmlops.api.schemas.common import ErrorResponse, FeatureSetName, ModelTypeName
from btcmlops.api.schemas.registry import (
    ChampionHistoryResponse,
    ChampionMoveResponse,
    ModelsResponse,
    ModelVersionsResponse,
    ReloadResponse,
)
from btcmlops.api.services import Services
from btcmlops.features.schema import FEATURE_SETS
from btcmlops.modeling.model_types import MODEL_TYPES
from btcmlops.modeling.registry_records import fallback_words

router = APIRouter(prefix="/models", tags=["models"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 409, 422, 503)}
REASON = Query(
    "",
    max_length=500,
    pattern=r"^[^\x00-\x1f\x7f]*$",  # printable text: no NUL or other control characters
    description="Why; recorded in the champion history.",
)


@router.get(
    "",
    response_model=ModelsResponse,
    dependencies=[Depends(require_read_access)],
    summary="Registered models per feature set: versions, latest and champion",
)
def list_models(services: ServicesDep) -> dict:
    versions = services.registry.list_versions()
    available: dict[str, list[dict]] = {feature_set: [] for feature_set in FEATURE_SETS}
    for feature_set in FEATURE_SETS:
        for model_type in MODEL_TYPES:
            mine = sorted(
                (v for v in versions if (v.feature_set, v.model_type) == (feature_set, model_type)),
                key=lambda v: (v.created_at, v.id),
            )
            if not mine:
                continue
            champion = next((v for v in mine if v.status == "champion"), None)
            available[feature_set].append(
                {
                    "model_type": model_type,
                    "versions": [v.version for v in mine],
                    "latest": mine[-1].version,
                    "champion": champion.version if champion else None,
                    "champion_kind": champion.kind if champion else None,
                    "fallback": fallback_words(champion) if champion else None,
                    "shadows": [v.version for v in mine if v.status == "shadow"],
                }
            )
    return {"success": True, "available_models": available}


@router.get(
    "/versions",
    response_model=ModelVersionsResponse,
    dependencies=[Depends(require_read_access)],
    summary="Every registered version with its metrics (newest first)",
)
def model_versions(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    model_type: ModelTypeName | None = Query(None),
) -> dict:
    found = services.registry.list_versions(feature_set=feature_set, model_type=model_type)
    return {"success": True, "count": len(found), "versions": [v.as_dict() for v in found]}


@router.get(
    "/history",
    response_model=ChampionHistoryResponse,
    dependencies=[Depends(require_read_access)],
    summary="Every move of a champion pointer: who, when, why",
)
def champion_history(
    services: ServicesDep,
    feature_set: FeatureSetName | None = Query(None),
    model_type: ModelTypeName | None = Query(None),
) -> dict:
    changes = services.registry.champion_history(feature_set=feature_set, model_type=model_type)
    return {"success": True, "count": len(changes), "history": [c.as_dict() for c in changes]}


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses=ERRORS,
    dependencies=[Depends(require_api_key)],
    summary="Reload the champion of a pair from the registry pointer",
)
async def reload_model(
    services: ServicesDep,
    feature_set: FeatureSetName = Query(...),
    model_type: ModelTypeName = Query("random_forest"),
) -> dict:
    loaded = await run_in_threadpool(
        lambda: services.predictor.reload(feature_set, model_type, force=True)
    )
    return {
        "success": True,
        "message": f"{feature_set}/{model_type} serves {loaded.info.version}",
        "model_info": {
            "feature_set": feature_set,
            "model_type": model_type,
            "version": loaded.info.version,
            "loaded_at": loaded.loaded_at,
        },
    }


def _moved(services: Services, info, action: str, reason: str) -> dict:  # type: ignore[no-untyped-def]
    services.predictor.reload(info.feature_set, info.model_type)
    change = services.registry.champion_history(
        feature_set=info.feature_set, model_type=info.model_type
    )[-1]  # oldest first: the last entry is the move just made
    return {
        "success": True,
        "message": f"{info.feature_set}/{info.model_type} champion is now {info.version}",
        "champion": {
            "feature_set": info.feature_set,
            "model_type": info.model_type,
            "version": info.version,
            "previous_version": change.previous_version,
            "action": action,
            "reason": reason,
        },
    }


@router.post(
    "/rollback",
    response_model=ChampionMoveResponse,
    responses=ERRORS,
    dependencies=[Depends(require_api_key)],
    summary="Re-point the champion to the one it replaced",
)
def rollback_champion(
    services: ServicesDep,
    feature_set: FeatureSetName = Query(...),
    model_type: ModelTypeName = Query("random_forest"),
    reason: str = REASON,
) -> dict:
    reason = reason or "manual rollback through the API"
    info = services.registry.rollback(feature_set, model_type, actor="api", reason=reason)
    return _moved(services, info, "rollback", reason)


@router.post(
    "/promote",
    response_model=ChampionMoveResponse,
    responses=ERRORS,
    dependencies=[Depends(require_api_key)],
    summary="Make a registered version the champion of its pair",
)
def promote_version(
    services: ServicesDep,
    version: str = Query(..., min_length=1, max_length=96, pattern=r"^[A-Za-z0-9._:-]+$"),
    reason: str = REASON,
) -> dict:
    reason = reason or "manual promotion through the API"
    info = services.retraining.promote_by_hand(version, actor="api", reason=reason)
    return _moved(services, info, "promote", reason)
