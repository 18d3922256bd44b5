"""``GET /``, ``/health``, ``/market`` and ``/scheduler``: the service itself, its price
bars and its jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from btcmlops.api.schemas.common import IsoTime


class RootResponse(BaseModel):
    name: str
    version: str
    status: str
    endpoints: dict[str, str]


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    loaded_models: int
    components: dict[str, Any]


class PriceBar(BaseModel):
    ts: datetime = Field(description="UTC start of the hour.")
    open: float
    high: float
    low: float
    close: float
    volume: float


class PricesResponse(BaseModel):
    success: Literal[True] = True
    symbol: str
    prices: list[PriceBar] = Field(description="Closed hourly bars, oldest first.")


class ScheduledJob(BaseModel):
    """One job of the loop: its next run in this process, its last run in any."""

    name: str
    next_run_at: IsoTime | None = Field(description="Null where this process runs no scheduler.")
    last_started_at: IsoTime | None
    last_status: str | None
    last_duration_seconds: float | None
    last_error: str | None
    # what the last run did, in the job's own words (counts, pairs, ...): each job has its own
    last_detail: dict[str, Any] | None
    consecutive_failures: int


class SchedulerJobsResponse(BaseModel):
    success: Literal[True] = True
    running: bool = Field(description="This process runs the scheduler.")
    leader: bool = Field(description="This process holds the scheduler lease.")
    lease_holder: str | None
    jobs: list[ScheduledJob]
