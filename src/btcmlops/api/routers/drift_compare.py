"""``POST /drift/compare``: the feature-drift check of two tables sent in the request.

What ``btcmlops drift compare`` does with two files, for callers that hold their data in
memory; the answer is the document the command prints with ``--json``. It is the one route
that takes a large body (``LARGE_BODY_BYTES`` in ``api.app``).
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, Depends

from btcmlops.api.deps import ServicesDep, require_read_access
from btcmlops.api.schemas.common import ErrorResponse
from btcmlops.api.schemas.drift_compare import DriftCompareRequest, DriftCompareResponse
from btcmlops.mlops.drift.compare import compare_tables

router = APIRouter(
    prefix="/drift",
    tags=["drift"],
    dependencies=[Depends(require_read_access)],
    responses={code: {"model": ErrorResponse} for code in (413, 422)},
)
T = TypeVar("T", int, float)


@router.post(
    "/compare",
    response_model=DriftCompareResponse,
    summary="KS and PSI of every shared feature of two tables sent in the request",
)
def drift_compare(services: ServicesDep, tables: DriftCompareRequest) -> dict:
    settings = services.settings
    report = compare_tables(
        tables.reference,
        tables.current,
        tables.features,
        history=tables.history,
        bins=_given_or(tables.bins, settings.drift_psi_bins),
        alpha=_given_or(tables.alpha, settings.drift_alpha),
        psi_effect_floor=_given_or(tables.psi_effect_floor, settings.drift_psi_effect_floor),
        min_samples=_given_or(tables.min_samples, settings.drift_min_samples),
    )
    return {"success": True, **report.to_dict()}


def _given_or(value: T | None, default: T) -> T:
    return default if value is None else value
