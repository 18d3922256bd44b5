"""``/market``: the stored price bars (for charts)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from btcmlops.api.deps import ServicesDep, require_read_access
from btcmlops.api.schemas.service import PricesResponse
from btcmlops.clock import floor_hour
from btcmlops.db.models import PriceBar

router = APIRouter(prefix="/market", tags=["market"], dependencies=[Depends(require_read_access)])


@router.get(
    "/prices",
    response_model=PricesResponse,
    summary="Closed hourly bars of the last hours, oldest first",
)
def market_prices(
    services: ServicesDep,
    hours: int = Query(720, ge=1, le=24 * 365),
) -> dict:
    end = floor_hour(services.clock.now())
    query = (
        select(PriceBar)
        .where(
            PriceBar.symbol == services.settings.symbol,
            PriceBar.ts >= end - timedelta(hours=hours),
            PriceBar.ts < end,
        )
        .order_by(PriceBar.ts)
    )
    with services.store.session() as session:
        bars = [
            {
                "ts": bar.ts,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": bar.volume,
            }
            for bar in session.scalars(query)
        ]
    return {"success": True, "symbol": services.settings.symbol, "prices": bars}
