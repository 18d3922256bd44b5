"""Outcome resolution: what actually happened, from the price bars, through the one label.

A prediction made on the feature row of bar ``t`` (its ``feature_ts``) is about bar ``t+1h``
(its ``target_ts``): up if ``close(t+1h) > close(t)``, by ``features.target.direction``, the
same function that labels training rows. It can be resolved once bar ``t+1h`` has closed, at
``t+2h``. If either bar is still missing ``outcome_grace_hours`` after that, the prediction is
marked ``expired`` and never retried. Resolution is idempotent: only ``pending`` rows change.

An outcome can also be entered by hand (:func:`record_outcome`, behind
``POST /predictions/{id}/outcome``); it overwrites whatever the row held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Float, Integer, bindparam, func, select, update

from btcmlops.clock import HOUR, Clock
from btcmlops.db.models import PredictionLog, PriceBar
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError, NotFoundError
from btcmlops.features.target import direction
from btcmlops.mlops.predictions.records import prediction_as_dict
from btcmlops.mlops.predictions.results import PredictionRecord


@dataclass
class OutcomeSummary:
    resolved: int = 0
    expired: int = 0
    still_pending: int = 0

    def line(self) -> str:
        return (
            f"outcomes resolved {self.resolved}, expired {self.expired}, "
            f"still pending {self.still_pending}"
        )


# The hourly job's statements, built once (building one costs more than running it on a
# few rows). Core, on the tables: no ORM unit of work is needed to update rows by hour.
_LOGS = PredictionLog.__table__
_PENDING = _LOGS.c.outcome_status == "pending"
_PENDING_HOURS = (
    select(_LOGS.c.feature_ts)
    .where(_PENDING, _LOGS.c.target_ts <= bindparam("closed_before"))
    .distinct()
    .order_by(_LOGS.c.feature_ts)
)
_STILL_PENDING = select(func.count()).select_from(_LOGS).where(_PENDING)
_CLOSES = select(PriceBar.__table__.c.ts, PriceBar.__table__.c.close).where(
    PriceBar.__table__.c.symbol == bindparam("symbol"),
    PriceBar.__table__.c.ts >= bindparam("first"),
    PriceBar.__table__.c.ts <= bindparam("last"),
)
_RESOLVE = (
    update(_LOGS)
    .where(_LOGS.c.feature_ts == bindparam("hour"), _PENDING)
    .values(
        outcome_status="resolved",
        outcome_source="prices",
        actual_direction=bindparam("actual", type_=_LOGS.c.actual_direction.type),
        prediction_correct=_LOGS.c.prediction == bindparam("actual", type_=Integer),
        bitcoin_price_at_prediction=bindparam("before", type_=Float),
        bitcoin_price_1h_later=bindparam("after", type_=Float),
        price_change_pct=bindparam("change_pct", type_=Float),
        outcome_recorded_at=bindparam("now", type_=_LOGS.c.outcome_recorded_at.type),
    )
)
_EXPIRE = (
    update(_LOGS)
    .where(_LOGS.c.feature_ts == bindparam("hour"), _PENDING)
    .values(
        outcome_status="expired",
        outcome_recorded_at=bindparam("now", type_=_LOGS.c.outcome_recorded_at.type),
    )
)


def resolve_outcomes(
    store: Store,
    *,
    clock: Clock,
    symbol: str,
    grace_hours: float = 6,
    batch_hours: int = 500,
) -> OutcomeSummary:
    """Fill in outcomes for every pending prediction whose target bar has closed."""
    now = clock.now()
    closed_before = now - HOUR  # bar target_ts has closed when target_ts + 1h <= now
    summary = OutcomeSummary()
    # One unit of work: the hourly job reads a few rows and updates an hour or two.
    with store.session() as session:
        connection = session.connection()
        hours = list(connection.scalars(_PENDING_HOURS, {"closed_before": closed_before}))
        for start in range(0, len(hours), batch_hours):
            chunk = hours[start : start + batch_hours]
            closes = _closes(connection, symbol, chunk)
            _apply(
                connection,
                chunk,
                closes,
                now=now,
                grace=timedelta(hours=grace_hours),
                summary=summary,
            )
        summary.still_pending = int(connection.scalar(_STILL_PENDING) or 0)
    return summary


def _closes(
    connection: Connection, symbol: str, feature_hours: list[datetime]
) -> dict[datetime, float]:
    wanted = set(feature_hours) | {hour + HOUR for hour in feature_hours}
    rows = connection.execute(
        _CLOSES, {"symbol": symbol, "first": min(wanted), "last": max(wanted)}
    )
    return {ts: close for ts, close in rows if ts in wanted}


def _apply(
    connection: Connection,
    feature_hours: list[datetime],
    closes: dict[datetime, float],
    *,
    now: datetime,
    grace: timedelta,
    summary: OutcomeSummary,
) -> None:
    for hour in feature_hours:
        before, after = closes.get(hour), closes.get(hour + HOUR)
        if before is not None and after is not None:
            result = connection.execute(
                _RESOLVE,
                {
                    "hour": hour,
                    "actual": direction(before, after),
                    "before": before,
                    "after": after,
                    "change_pct": 100.0 * (after / before - 1.0),
                    "now": now,
                },
            )
            summary.resolved += result.rowcount or 0
        elif hour + 2 * HOUR + grace <= now:
            result = connection.execute(_EXPIRE, {"hour": hour, "now": now})
            summary.expired += result.rowcount or 0


def check_outcome(actual_direction: int, bitcoin_price_1h_later: float | None) -> None:
    """Refuse an outcome no bar could have produced, with what was expected and what came."""
    if actual_direction not in (0, 1):
        raise InvalidInputError(
            f"actual_direction must be 0 (down) or 1 (up), got {actual_direction!r}"
        )
    if bitcoin_price_1h_later is not None and not (
        math.isfinite(bitcoin_price_1h_later) and bitcoin_price_1h_later > 0
    ):
        raise InvalidInputError(
            f"bitcoin_price_1h_later must be a positive number, got {bitcoin_price_1h_later!r}"
        )


def record_outcome(
    store: Store,
    clock: Clock,
    prediction_id: int,
    actual_direction: int,
    bitcoin_price_1h_later: float | None = None,
    *,
    source: str = "manual",
) -> PredictionRecord:
    """Store what happened for one stored prediction; the prediction in the API's shape.

    A prediction logged a moment ago may still be on the writer's queue: go through
    ``PredictionLogger.update_prediction_outcome``, which flushes first.
    """
    check_outcome(actual_direction, bitcoin_price_1h_later)
    with store.session() as session:
        row = session.get(PredictionLog, prediction_id)
        if row is None:
            raise NotFoundError(f"no prediction with id {prediction_id}")
        row.actual_direction = actual_direction
        row.prediction_correct = row.prediction == actual_direction
        row.outcome_status = "resolved"
        row.outcome_source = source
        row.outcome_recorded_at = clock.now()
        if bitcoin_price_1h_later is not None:
            row.bitcoin_price_1h_later = bitcoin_price_1h_later
            if row.bitcoin_price_at_prediction:
                row.price_change_pct = 100.0 * (
                    bitcoin_price_1h_later / row.bitcoin_price_at_prediction - 1.0
                )
        return prediction_as_dict(row)
