"""The rollback test's paired hours: a newly deployed champion and the champion it replaced,
scored on the same live hours.

:func:`paired_counts` reads every paired hour in one go; :class:`DeploymentPairing` keeps a
deployment's pairs between the hourly checks and reads only what resolved since. Both give
the :class:`~btcmlops.mlops.retraining.promotion.PairedCounts` that ``rollback`` tests.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import select, type_coerce
from sqlalchemy.types import NullType

from btcmlops.db.models import PredictionLog
from btcmlops.db.store import Store
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.promotion import PairedCounts


def paired_counts(
    store: Store, challenger: str, champion: str, since: datetime, until: datetime
) -> PairedCounts:
    """``queries.paired_hours(...).counts()`` without the last hour's direction (the rollback
    test reads the two models only), from one narrow read of both versions.

    The hourly rollback check counts every paired hour since the deployment; the rows are
    paired here in plain Python, without building a frame per version. The pairing is the
    same: the target hours in ``(since, until]`` that both versions predicted and that
    resolved, each version's first logged resolved prediction standing for the hour, and the
    challenger's actual direction.
    """
    query = (
        select(
            PredictionLog.model_version,
            # The hour as the database returns it, only compared with itself: equal hours are
            # equal values, and not converting each one to a datetime halves the read.
            type_coerce(PredictionLog.target_ts, NullType()),
            PredictionLog.actual_direction,
            PredictionLog.probability_up,
        )
        .where(
            PredictionLog.model_version.in_([challenger, champion]),
            PredictionLog.outcome_status == queries.RESOLVED,
            PredictionLog.target_ts > since,
            PredictionLog.target_ts <= until,
        )
        .order_by(PredictionLog.id)
    )
    with store.session() as session:
        rows = session.connection().execute(query).all()
    first: dict[str, dict[object, tuple[int, float]]] = {challenger: {}, champion: {}}
    for version, target_ts, actual, p_up in rows:  # oldest id first: the first one stays
        first[version].setdefault(target_ts, (actual, p_up))
    challenger_hours, champion_hours = first[challenger], first[champion]
    paired = [
        (actual, p_up, champion_hours[hour][1])
        for hour, (actual, p_up) in challenger_hours.items()
        if hour in champion_hours
    ]
    actual, challenger_p_up, champion_p_up = zip(*paired, strict=True) if paired else ((), (), ())
    return PairedCounts.from_outcomes(
        np.array(actual, dtype=int),
        np.array(challenger_p_up, dtype=float),
        np.array(champion_p_up, dtype=float),
        np.full(len(paired), np.nan),
    )


class DeploymentPairing:
    """The rollback test's paired hours of one deployment, kept between hourly checks.

    :func:`paired_counts` reads every paired hour since the deployment at every check, so a
    champion that stays deployed costs more each hour (a year's backtest spent most of its
    time there). A resolved outcome never changes afterwards (the outcomes job only turns
    pending rows into resolved or expired ones), so each check here reads only the rows
    resolved since the previous one (``outcome_recorded_at`` at or after the last seen, ids
    already seen skipped) and updates the pairs they touch. The counts equal
    :func:`paired_counts`'s: the same rows stand for each hour (a version's lowest id among
    its resolved rows of the hour), only the floating-point sum of log losses may differ in
    its last digits (it is summed in another order; the rollback test does not read it).
    """

    def __init__(self, challenger: str, champion: str, since: datetime) -> None:
        self.challenger, self.champion, self.since = challenger, champion, since
        self._first: dict[str, dict[datetime, tuple[int, int, float]]] = {
            challenger: {},
            champion: {},
        }
        # The paired hours as columns (the challenger's actual direction, both P(up)), in
        # arrays that grow by doubling; ``_slot`` gives each paired hour its row.
        self._slot: dict[datetime, int] = {}
        self._columns = np.empty((3, 1024))
        self._seen: set[int] = set()
        self._watermark: datetime | None = None

    def counts(self, store: Store) -> PairedCounts:
        """Read the newly resolved rows, then count every paired hour."""
        versions = PredictionLog.model_version.in_([self.challenger, self.champion])
        query = select(
            PredictionLog.id,
            PredictionLog.model_version,
            PredictionLog.target_ts,
            PredictionLog.actual_direction,
            PredictionLog.probability_up,
            PredictionLog.outcome_status,
            PredictionLog.outcome_recorded_at,
        )
        if self._watermark is None:
            query = query.where(
                versions,
                PredictionLog.outcome_status == queries.RESOLVED,
                PredictionLog.target_ts > self.since,
            )
        else:
            # Only what ix_prediction_logs_version_recorded serves (given more to filter on,
            # SQLite's planner ranges over the status index instead); the rest is checked below.
            query = query.where(versions, PredictionLog.outcome_recorded_at >= self._watermark)
        with store.session() as session:
            rows = session.connection().execute(query.order_by(PredictionLog.id)).all()
        for row_id, version, hour, actual, p_up, status, recorded_at in rows:
            if row_id in self._seen:
                continue
            self._seen.add(row_id)
            if self._watermark is None or recorded_at > self._watermark:
                self._watermark = recorded_at
            if status != queries.RESOLVED or hour <= self.since:
                continue
            standing = self._first[version].get(hour)
            if standing is not None and standing[0] < row_id:
                continue  # an older row already stands for this hour
            self._first[version][hour] = (row_id, actual, p_up)
            self._pair(hour)
        actual, challenger_p_up, champion_p_up = self._columns[:, : len(self._slot)]
        return PairedCounts.from_outcomes(
            actual.astype(int), challenger_p_up, champion_p_up, np.full(actual.size, np.nan)
        )

    def _pair(self, hour: datetime) -> None:
        challenger = self._first[self.challenger].get(hour)
        champion = self._first[self.champion].get(hour)
        if challenger is None or champion is None:
            return
        slot = self._slot.setdefault(hour, len(self._slot))
        if slot == self._columns.shape[1]:
            self._columns = np.concatenate([self._columns, np.empty_like(self._columns)], axis=1)
        # the challenger's actual direction, as paired_counts takes it
        self._columns[:, slot] = (challenger[1], challenger[2], champion[2])
