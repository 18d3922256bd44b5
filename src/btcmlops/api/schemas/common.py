"""Shapes every router shares: the error body, the names of feature sets and model types,
and how times are typed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from btcmlops.modeling.model_types import MODEL_TYPES

FeatureSetName = Literal["vader", "finbert"]
ModelTypeName = Literal[MODEL_TYPES]  # type: ignore[valid-type]
CheckStatus = Literal["success", "insufficient_data"]

_DATE_TIME = WithJsonSchema({"type": "string", "format": "date-time"})
# A UTC time the core already wrote as ISO 8601 text (``+00:00``): sent as written.
IsoTime = Annotated[str, _DATE_TIME]
# A UTC time that is a datetime in a live answer and ISO text in a stored one (a check read
# back from the store): each is sent as it came, so the two never differ by a reformatting.
Instant = Annotated[datetime | str, _DATE_TIME]


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: str = Field(description="The kind of error, e.g. NotFoundError.")
    detail: str = Field(description="What was wrong and what to do about it.")


# The per-feature flags of a drift check's KS p-values (the feature check's stored rows and
# POST /drift/compare's features say the same).
KS_PVALUE_EXACT = (
    "False when `ks_pvalue` is a certified upper bound, not the exact value "
    "(`ks_pvalue_effective` is then an upper bound too); the verdict is the one the exact "
    "p-value gives."
)
KS_PVALUE_ADJUSTED_EXACT = (
    "False when `ks_pvalue_adjusted` is a certified upper bound: it depends on every "
    "feature's p-value, so another feature's bound can raise it."
)
