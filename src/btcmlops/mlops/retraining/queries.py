"""What retraining reads from the store: runs and checks, live outcomes, and paired hours.

Paired hours are the heart of the promotion and rollback rules: two model versions'
resolved predictions of the same target hours, with the last hour's own direction (for the
naive baseline), read in one pass each.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, case, func, select

from btcmlops.clock import HOUR
from btcmlops.db.models import (
    DECISION_ONLY_TRIGGERS,
    SHADOW_SOURCE,
    ChampionChange,
    PredictionLog,
    RetrainCheck,
    RetrainingRun,
)
from btcmlops.db.store import Store
from btcmlops.features.frames import load_closes
from btcmlops.jsonable import jsonable
from btcmlops.mlops.retraining.promotion import PairedCounts
from btcmlops.mlops.retraining.results import RecordedRetrainCheck, RetrainingRunRecord
from btcmlops.modeling.evaluation import last_hour_directions

RESOLVED = "resolved"


@dataclass(frozen=True)
class VersionOutcomes:
    """One model version's resolved predictions, one per target hour, oldest first."""

    target_ts: pd.DatetimeIndex
    actual: np.ndarray
    p_up: np.ndarray

    def __len__(self) -> int:
        return len(self.target_ts)

    def where(self, hours: np.ndarray) -> VersionOutcomes:
        """The outcomes of the hours where the boolean mask ``hours`` is true."""
        return VersionOutcomes(self.target_ts[hours], self.actual[hours], self.p_up[hours])


@dataclass(frozen=True)
class PairedHours:
    """Two versions on the same target hours (``first`` and ``second``) and the baselines'
    inputs: the actual direction and the direction of the hour before each target hour."""

    target_ts: pd.DatetimeIndex
    actual: np.ndarray
    first_p_up: np.ndarray
    second_p_up: np.ndarray
    last_hour: np.ndarray

    def __len__(self) -> int:
        return len(self.target_ts)

    def right(self) -> tuple[np.ndarray, np.ndarray]:
        """Per hour: was ``first`` right, was ``second`` right."""
        first = (self.first_p_up > 0.5).astype(int) == self.actual
        second = (self.second_p_up > 0.5).astype(int) == self.actual
        return first, second

    def counts(self, upto: int | None = None) -> PairedCounts:
        """``first`` as the challenger, ``second`` as the champion, over the first ``upto``."""
        cut = slice(0, upto)
        return PairedCounts.from_outcomes(
            self.actual[cut], self.first_p_up[cut], self.second_p_up[cut], self.last_hour[cut]
        )


def version_outcomes(
    store: Store, version: str, since: datetime, until: datetime
) -> VersionOutcomes:
    """Resolved predictions of ``version`` whose target hour lies in ``(since, until]``.

    Several predictions of one hour (API calls beside the hourly job) say the same thing:
    the first logged one stands for the hour.
    """
    query = (
        select(
            PredictionLog.target_ts, PredictionLog.actual_direction, PredictionLog.probability_up
        )
        .where(
            PredictionLog.model_version == version,
            PredictionLog.outcome_status == RESOLVED,
            PredictionLog.target_ts > since,
            PredictionLog.target_ts <= until,
        )
        .order_by(PredictionLog.target_ts, PredictionLog.id)
    )
    with store.session() as session:
        # Core execution and column arrays: the daily checks read a champion's whole
        # tenure this way several times, and ORM rows into a DataFrame cost more than the read
        rows = session.connection().execute(query).all()
    hours = pd.DatetimeIndex([row[0] for row in rows], name="target_ts")
    hours = hours.tz_localize("UTC") if hours.tz is None else hours.tz_convert("UTC")
    # ordered by hour, then id: the first row of each hour is the one that differs from
    # the row before it
    first = np.ones(len(rows), dtype=bool)
    first[1:] = hours.asi8[1:] != hours.asi8[:-1]
    return VersionOutcomes(
        target_ts=hours[first],
        actual=np.array([row[1] for row in rows], dtype=int)[first],
        p_up=np.array([row[2] for row in rows], dtype=float)[first],
    )


def paired_hours(
    store: Store,
    symbol: str,
    first: str,
    second: str,
    since: datetime,
    until: datetime,
    *,
    with_last_hour: bool = True,
    second_outcomes: VersionOutcomes | None = None,
) -> PairedHours:
    """The hours in ``(since, until]`` that both versions predicted and that have resolved
    (the last hour's direction read too unless ``with_last_hour`` is false: NaN then).

    ``second_outcomes``, when given, are ``second``'s outcomes read up to ``until`` from an
    instant no later than ``since``: their hours in ``(since, until]`` are used instead of
    reading them again.
    """
    a = version_outcomes(store, first, since, until)
    if second_outcomes is None:
        b = version_outcomes(store, second, since, until)
    else:
        hours = second_outcomes.target_ts
        b = second_outcomes.where((hours > since) & (hours <= until))
    _, in_a, in_b = np.intersect1d(
        a.target_ts.as_unit("us").asi8,
        b.target_ts.as_unit("us").asi8,
        assume_unique=True,
        return_indices=True,
    )
    hours = a.target_ts[in_a]
    return PairedHours(
        target_ts=hours,
        actual=a.actual[in_a],
        first_p_up=a.p_up[in_a],
        second_p_up=b.p_up[in_b],
        last_hour=last_hour_before(store, symbol, hours)
        if with_last_hour
        else np.full(len(hours), np.nan),
    )


def last_hour_before(store: Store, symbol: str, target_hours: pd.DatetimeIndex) -> np.ndarray:
    """Direction (1 up, 0 down, NaN unknown) of the bar before each target hour's bar."""
    if len(target_hours) == 0:
        return np.array([], dtype=float)
    feature_hours = target_hours - pd.Timedelta(HOUR)
    closes = load_closes(
        store,
        symbol,
        start=(feature_hours.min() - pd.Timedelta(HOUR)).to_pydatetime(),
        end=(feature_hours.max() + pd.Timedelta(HOUR)).to_pydatetime(),
    )
    return last_hour_directions(closes).reindex(feature_hours).to_numpy(dtype=float)


def live_counts(
    store: Store, version: str, since: datetime, until: datetime, *, shadow: bool = False
) -> tuple[int, int]:
    """(correct, resolved) predictions of ``version`` made in ``[since, until]``: those it
    served as champion, or with ``shadow`` those it made in shadow."""
    served = (
        PredictionLog.source == SHADOW_SOURCE if shadow else PredictionLog.source != SHADOW_SOURCE
    )
    query = select(
        func.coalesce(func.sum(case((PredictionLog.prediction_correct.is_(True), 1), else_=0)), 0),
        func.count(),
    ).where(
        PredictionLog.model_version == version,
        PredictionLog.outcome_status == RESOLVED,
        PredictionLog.predicted_at >= since,
        PredictionLog.predicted_at <= until,
        served,
    )
    with store.session() as session:
        correct, total = session.execute(query).one()
    return int(correct), int(total)


def champion_since(store: Store, feature_set: str, model_type: str) -> datetime | None:
    """When the pair's current champion took over: every champion change moves the pointer
    to the current champion, so it is the pair's latest change."""
    with store.session() as session:
        return session.scalar(
            select(ChampionChange.changed_at)
            .where(
                ChampionChange.feature_set == feature_set,
                ChampionChange.model_type == model_type,
            )
            .order_by(ChampionChange.id.desc())
            .limit(1)
        )


def last_run_at(store: Store, feature_set: str, model_type: str) -> datetime | None:
    """When the pair's latest training run started (decision-only runs do not count)."""
    with store.session() as session:
        return session.scalar(
            select(func.max(RetrainingRun.started_at)).where(
                RetrainingRun.feature_set == feature_set,
                RetrainingRun.model_type == model_type,
                RetrainingRun.trigger.not_in(DECISION_ONLY_TRIGGERS),
            )
        )


SCHEDULE_TRIGGER = "schedule"


def runs_against(
    store: Store, feature_set: str, model_type: str, champion_version: str, since: datetime | None
) -> int:
    """Unscheduled training runs of the pair that met ``champion_version`` since it took over
    (``since``): those a trigger (performance, drift, a person) asked for.

    None of them replaced it, or it would not be the champion. Scheduled runs are left out:
    they are an interval apart already, and a calm month of them must not slow the response
    to the next real trigger.
    """
    query = select(func.count()).where(
        RetrainingRun.feature_set == feature_set,
        RetrainingRun.model_type == model_type,
        RetrainingRun.champion_version == champion_version,
        RetrainingRun.trigger.not_in((*DECISION_ONLY_TRIGGERS, SCHEDULE_TRIGGER)),
    )
    if since is not None:
        query = query.where(RetrainingRun.started_at >= since)
    with store.session() as session:
        return int(session.scalar(query) or 0)


def run_of_challenger(store: Store, version: str) -> RetrainingRun | None:
    """The retraining run that trained ``version`` (its offline comparison evidence)."""
    with store.session() as session:
        return session.scalar(
            select(RetrainingRun)
            .where(RetrainingRun.challenger_version == version, RetrainingRun.status == "succeeded")
            .order_by(RetrainingRun.id.desc())
            .limit(1)
        )


def newest_first(
    table: type[RetrainingRun] | type[RetrainCheck],
    when: Any,
    feature_set: str | None,
    model_type: str | None,
) -> Select[tuple[RetrainingRun]] | Select[tuple[RetrainCheck]]:
    """Rows of ``table`` for the pair (either part optional), newest ``when`` first."""
    query = select(table).order_by(when.desc(), table.id.desc())
    if feature_set:
        query = query.where(table.feature_set == feature_set)
    if model_type:
        query = query.where(table.model_type == model_type)
    return query


def run_history(
    store: Store, feature_set: str | None, model_type: str | None, limit: int
) -> list[RetrainingRunRecord]:
    query = newest_first(RetrainingRun, RetrainingRun.started_at, feature_set, model_type)
    with store.session() as session:
        return [run_as_dict(run) for run in session.scalars(query.limit(limit))]


def run_by_job(store: Store, job_id: str) -> RetrainingRunRecord | None:
    with store.session() as session:
        run = session.scalar(select(RetrainingRun).where(RetrainingRun.job_id == job_id))
        return None if run is None else run_as_dict(run)


def check_history(
    store: Store, feature_set: str | None, model_type: str | None, limit: int
) -> list[RecordedRetrainCheck]:
    query = newest_first(RetrainCheck, RetrainCheck.checked_at, feature_set, model_type)
    with store.session() as session:
        return [
            {**check.decision, "checked_at": check.checked_at.isoformat()}
            for check in session.scalars(query.limit(limit))
        ]


def run_as_dict(run: RetrainingRun) -> RetrainingRunRecord:
    return {
        "job_id": run.job_id,
        "feature_set": run.feature_set,
        "model_type": run.model_type,
        "trigger": run.trigger,
        "reasons": run.reasons,
        "status": run.status,
        "decision": run.decision,
        "decision_reason": run.decision_reason,
        "challenger_version": run.challenger_version,
        "champion_version": run.champion_version,
        "challenger_metrics": run.challenger_metrics,
        "champion_metrics": run.champion_metrics,
        "significance": run.significance,
        "evidence": run.evidence,
        "windows": run.windows,
        "samples": run.samples,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": run.duration_seconds,
        "error": run.error,
    }


def add_decision_run(
    store: Store,
    *,
    feature_set: str,
    model_type: str,
    trigger: str,
    decision: str,
    reason: str,
    challenger_version: str | None,
    champion_version: str | None,
    challenger_metrics: Mapping[str, object] | None,
    champion_metrics: Mapping[str, object] | None,
    evidence: Mapping[str, object],
    at: datetime,
) -> str:
    """Record a decision that trained nothing (a shadow promoted, a fallback) as a run, so
    the retraining history holds every change of champion with its evidence."""
    job_id = str(uuid.uuid4())
    with store.session() as session:
        session.add(
            RetrainingRun(
                job_id=job_id,
                feature_set=feature_set,
                model_type=model_type,
                trigger=trigger,
                reasons=[reason],
                status="succeeded",
                decision=decision,
                decision_reason=reason,
                challenger_version=challenger_version,
                champion_version=champion_version,
                challenger_metrics=jsonable(challenger_metrics),
                champion_metrics=jsonable(champion_metrics),
                evidence=jsonable(evidence),
                started_at=at,
                finished_at=at,
                duration_seconds=0.0,
            )
        )
    return job_id
