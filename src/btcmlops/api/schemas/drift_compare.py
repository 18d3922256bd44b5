"""``POST /drift/compare``: two tables in, the document ``btcmlops drift compare --json``
prints out."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, Field

from btcmlops.api.schemas.common import KS_PVALUE_ADJUSTED_EXACT, KS_PVALUE_EXACT
from btcmlops.severity import Severity

DriftTable = dict[str, list[float | str | None]]


def _example_values(
    seed: int, rows: int, shift: float = 0.0, words: dict[int, str] | None = None
) -> list[float | str | None]:
    draw = random.Random(seed)
    values: list[float | str | None] = [round(draw.gauss(shift, 1.0), 2) for _ in range(rows)]
    for row, word in (words or {}).items():
        values[row] = word
    return values


# 60 reference rows: fewer (50 for independent rows) cannot support a dependence estimate.
_COMPARE_EXAMPLE = {
    "reference": {
        "return_1h": _example_values(1, 60),
        "volume_z": _example_values(2, 60, words={2: "n/a", 6: "inf"}),
    },
    "current": {
        "return_1h": _example_values(3, 30, shift=1.0),
        "volume_z": _example_values(4, 30),
    },
}


class DriftCompareRequest(BaseModel):
    """Two tables of features, each column's values in time order.

    Values are numbers, null (missing) or strings: "inf", "-inf", "infinity" and "nan" (any
    case) are read as those floats; any other string in a mostly numeric column is a stray
    cell, read as missing and reported in `bad_values`. Options left out take the server's
    settings (`BTCMLOPS_DRIFT_*`).
    """

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [_COMPARE_EXAMPLE]}}

    reference: DriftTable = Field(description="Column name → values of the reference window.")
    current: DriftTable = Field(description="Column name → values of the window to check.")
    features: list[str] | None = Field(
        default=None, min_length=1, description="Columns to compare (default: shared numeric)."
    )
    history: DriftTable | None = Field(
        default=None,
        description="Earlier rows of the same features (at least as many as the reference), "
        "to estimate how dependent the rows are when the reference is too short for it.",
    )
    bins: int | None = Field(default=None, ge=2, le=100, description="PSI bins.")
    alpha: float | None = Field(default=None, gt=0, lt=1, description="FDR level of the KS tests.")
    psi_effect_floor: float | None = Field(
        default=None, ge=0, description="PSI a drifting feature must reach."
    )
    min_samples: int | None = Field(default=None, ge=2, description="Rows needed in each table.")


class StrayCellCount(BaseModel):
    count: int = Field(description="Strings in the column that are not a number.")
    first_row: int = Field(description="0-based row of the first of them.")


class InfinityCount(BaseModel):
    positive: int = Field(alias="+inf")
    negative: int = Field(alias="-inf")


class StrayCellsBySide(BaseModel):
    reference: dict[str, StrayCellCount]
    current: dict[str, StrayCellCount]


class InfinitiesBySide(BaseModel):
    reference: dict[str, InfinityCount]
    current: dict[str, InfinityCount]


class CompareBadValues(BaseModel):
    """Per feature: stray strings (read as missing) and ±inf (kept out of KS and PSI)."""

    non_numeric: StrayCellsBySide
    infinite: InfinitiesBySide


class ComparedFeature(BaseModel):
    """The tests of one feature; statistics are null when it was not tested."""

    feature: str
    tested: bool
    reference_count: int
    current_count: int
    ks_statistic: float | None
    ks_pvalue: float | None
    ks_pvalue_effective: float | None = Field(description="Corrected for autocorrelation.")
    ks_pvalue_adjusted: float | None = Field(description="Benjamini–Hochberg adjusted.")
    ks_pvalue_exact: bool = Field(description=KS_PVALUE_EXACT)
    ks_pvalue_adjusted_exact: bool = Field(description=KS_PVALUE_ADJUSTED_EXACT)
    ks_significant: bool
    psi: float | None
    psi_expected: float | None = Field(description="The PSI expected with no drift.")
    psi_excess: float | None
    drift_detected: bool
    level: Severity
    reference_mean: float | None
    current_mean: float | None
    reference_std: float | None
    current_std: float | None
    autocorrelation: float | None
    autocorrelation_time: float | None
    effective_reference_size: float | None
    effective_current_size: float | None
    bins_used: int


class DriftCompareResponse(BaseModel):
    success: Literal[True] = True
    reference: str
    current: str
    drift: bool = Field(description="True when the severity is above none.")
    notes: list[str] = Field(description="Columns left out, bad values, the history used.")
    bad_values: CompareBadValues
    status: Literal["success", "insufficient_data"]
    reference_samples: int
    current_samples: int
    features_tested: int
    significant_drift_count: int
    ks_significant_count: int
    drift_severity: Severity | None
    alpha: float
    psi_effect_floor: float
    bins: int
    min_samples: int
    message: str
    untested_features: list[str]
    drift_results: list[ComparedFeature] = Field(description="Most drifted first.")
