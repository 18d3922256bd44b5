"""Outcome resolution: what actually happened, from the price bars, through the one label.

A prediction made on the feature row of bar ``t`` (its ``feature_ts``) is about bar ``t+1h``
(its ``target_ts``): up if ``close(t+1h) > close(t)``, by ``features.target.direction``, the
same function that labels training rows. It can be resolved once bar ``t+1h`` has closed, at
``t+2h``. If either bar is still missing ``outcome_grace_hours`` after that, the prediction is
marked ``expired`` and never retried. Resolution is idempotent: only ``pending`` rows change.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from btcmlops.clock import HOUR, Clock
from btcmlops.db.models import PredictionLog, PriceBar
from btcmlops.db.store import Store
from btcmlops.features.target import direction


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
    pending = PredictionLog.outcome_status == "pending"
    # One unit of work: the hourly job reads a few rows and updates an hour or two.
    with store.session() as session:
        hours = list(
            session.scalars(
                select(PredictionLog.feature_ts)
                .where(pending, PredictionLog.target_ts <= closed_before)
                .distinct()
                .order_by(PredictionLog.feature_ts)
            )
        )
        for start in range(0, len(hours), batch_hours):
            chunk = hours[start : start + batch_hours]
            closes = _closes(session, symbol, chunk)
            _apply(
                session, chunk, closes, now=now, grace=timedelta(hours=grace_hours), summary=summary
            )
        summary.still_pending = int(
            session.scalar(select(func.count()).select_from(PredictionLog).where(pending)) or 0
        )
    return summary


def _closes(session: Session, symbol: str, feature_hours: list[datetime]) -> dict[datetime, float]:
    wanted = set(feature_hours) | {hour + HOUR for hour in feature_hours}
    rows = session.execute(
        select(PriceBar.ts, PriceBar.close).where(
            PriceBar.symbol == symbol,
            PriceBar.ts >= min(wanted),
            PriceBar.ts <= max(wanted),
        )
    )
    return {ts: close for ts, close in rows if ts in wanted}


def _apply(
    session: Session,
    feature_hours: list[datetime],
    closes: dict[datetime, float],
    *,
    now: datetime,
    grace: timedelta,
    summary: OutcomeSummary,
) -> None:
    updates: dict[str, list[dict[str, object]]] = defaultdict(list)
    for hour in feature_hours:
        before, after = closes.get(hour), closes.get(hour + HOUR)
        if before is not None and after is not None:
            updates["resolved"].append({"hour": hour, "before": before, "after": after})
        elif hour + 2 * HOUR + grace <= now:
            updates["expired"].append({"hour": hour})
    for item in updates["resolved"]:
        actual = direction(item["before"], item["after"])  # type: ignore[arg-type]
        result = session.execute(
            update(PredictionLog)
            .where(
                PredictionLog.feature_ts == item["hour"],
                PredictionLog.outcome_status == "pending",
            )
            .values(
                outcome_status="resolved",
                outcome_source="prices",
                actual_direction=actual,
                prediction_correct=PredictionLog.prediction == actual,
                bitcoin_price_at_prediction=item["before"],
                bitcoin_price_1h_later=item["after"],
                price_change_pct=100.0 * (item["after"] / item["before"] - 1.0),  # type: ignore[operator]
                outcome_recorded_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        summary.resolved += result.rowcount or 0
    for item in updates["expired"]:
        result = session.execute(
            update(PredictionLog)
            .where(
                PredictionLog.feature_ts == item["hour"],
                PredictionLog.outcome_status == "pending",
            )
            .values(outcome_status="expired", outcome_recorded_at=now)
            .execution_options(synchronize_session=False)
        )
        summary.expired += result.rowcount or 0
