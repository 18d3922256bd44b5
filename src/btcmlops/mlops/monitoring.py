"""What the MLOps loop tells monitoring, in two kinds of numbers.

**Counted as it happens, in this process**: predictions answered (:func:`count_prediction`),
from a request or from the hourly job alike. prometheus-client keeps such counters in
process-wide metric objects by design; with several worker processes its multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) sums them at scrape time.

**Read from the store when asked** (:func:`read_monitoring_snapshot`): realised and estimated
accuracy, the latest stored drift checks, retraining runs, champions and the scheduler's last
successful runs. Every process shares the store, so these are right whichever process reads
them, and they are never summed over processes. Each figure comes from the function the API
answers with (``PredictionQueries.get_model_accuracy``, ``DriftDetector.detect_model_drift``)
or from one indexed query, so a reading costs a handful of small queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from btcmlops.db.models import DriftReport, JobRun, ModelVersion, RetrainingRun
from btcmlops.features.schema import FEATURE_SETS

if TYPE_CHECKING:
    from btcmlops.mlops.runtime import Runtime

REALISED_ACCURACY_DAYS = 7  # the period of /predictions/accuracy and of /predict's "accuracy"
RETRAINING_OUTCOMES = ("deployed", "kept", "failed")

PREDICTIONS = Counter(
    "btcmlops_predictions_total",
    "Predictions answered, by feature set, model type, source (api or scheduled) and "
    "predicted direction.",
    ("feature_set", "model_type", "source", "direction"),
)


def count_prediction(feature_set: str, model_type: str, source: str, direction: str) -> None:
    """Count one answered prediction (``direction`` is ``"up"`` or ``"down"``)."""
    PREDICTIONS.labels(feature_set, model_type, source, direction).inc()


# ------------------------------------------------------------------------- store readings


@dataclass(frozen=True)
class ChampionReading:
    """One champion pair: its version, its recorded baseline and how it is doing live."""

    feature_set: str
    model_type: str
    version: str
    test_accuracy: float | None  # the baseline retraining compares live accuracy with
    realised_accuracy: float | None  # over the last REALISED_ACCURACY_DAYS, None without outcomes
    realised_outcomes: int
    pending_outcomes: int
    estimated_accuracy: float | None  # label-free, over the drift check's current window
    estimated_predictions: int
    drift_severity: str | None  # overall severity of the latest stored drift summary


@dataclass(frozen=True)
class FeatureDriftReading:
    """The latest stored feature-drift check of one feature set."""

    feature_set: str
    checked_at: datetime
    status: str  # "success" or "insufficient_data" (then severity and share are None)
    severity: str | None
    share_drifted: float | None


@dataclass(frozen=True)
class MonitoringSnapshot:
    champions: list[ChampionReading]
    feature_drift: list[FeatureDriftReading]
    # (feature set, model type, outcome) -> finished runs; outcome is deployed, kept or failed
    retraining_runs: dict[tuple[str, str, str], int]
    retraining_in_progress: dict[tuple[str, str], int]
    last_successful_job_runs: dict[str, datetime]


def read_monitoring_snapshot(runtime: Runtime, job_names: Sequence[str]) -> MonitoringSnapshot:
    """Read every store-derived figure once; raises whatever the store raises when it is down.

    ``job_names`` are the scheduler jobs whose last successful run is looked up (one indexed
    query each, so the cost does not grow with the ``job_runs`` history).
    """
    with runtime.store.session() as session:
        champions = _champion_rows(session)
        feature_drift = [
            reading
            for feature_set in FEATURE_SETS
            if (reading := _latest_feature_drift(session, feature_set)) is not None
        ]
        runs, in_progress = _retraining_counts(session)
        last_ok = {
            name: started_at
            for name in job_names
            if (started_at := _last_successful_run(session, name)) is not None
        }
        severities = {
            (row.feature_set, row.model_type): _latest_summary_severity(
                session, row.feature_set, row.model_type
            )
            for row in champions
        }
    readings = [
        _champion_reading(runtime, row, severities[(row.feature_set, row.model_type)])
        for row in champions
    ]
    for reading in readings:  # a pair with a champion always shows all three outcomes
        for outcome in RETRAINING_OUTCOMES:
            runs.setdefault((reading.feature_set, reading.model_type, outcome), 0)
    return MonitoringSnapshot(readings, feature_drift, runs, in_progress, last_ok)


def _champion_rows(session: Session) -> list[Any]:
    query = (
        select(
            ModelVersion.feature_set,
            ModelVersion.model_type,
            ModelVersion.version,
            ModelVersion.metrics,
        )
        .where(ModelVersion.status == "champion")
        .order_by(ModelVersion.feature_set, ModelVersion.model_type)
    )
    return list(session.execute(query).all())


def _champion_reading(runtime: Runtime, row: Any, drift_severity: str | None) -> ChampionReading:
    accuracy = runtime.predictions.get_model_accuracy(
        row.feature_set, row.model_type, REALISED_ACCURACY_DAYS
    )
    # The daily check's windows (settings); record=False: a scrape never writes drift_reports.
    model_drift = runtime.drift.detect_model_drift(row.feature_set, row.model_type, record=False)
    estimate = model_drift["estimated_accuracy"]
    test_accuracy = (row.metrics or {}).get("test_accuracy")
    return ChampionReading(
        feature_set=row.feature_set,
        model_type=row.model_type,
        version=row.version,
        test_accuracy=float(test_accuracy) if test_accuracy is not None else None,
        realised_accuracy=accuracy["accuracy"],
        realised_outcomes=accuracy["total_predictions"],
        pending_outcomes=accuracy["pending_predictions"],
        estimated_accuracy=estimate["value"],
        estimated_predictions=estimate["predictions"],
        drift_severity=drift_severity,
    )


def _latest_report(session: Session, feature_set: str, kind: str, model_type: str | None = None):  # type: ignore[no-untyped-def]
    # Served by ix_drift_reports_set_kind_time: one index probe however long the history.
    query = select(DriftReport).where(
        DriftReport.feature_set == feature_set, DriftReport.kind == kind
    )
    if model_type is not None:
        query = query.where(DriftReport.model_type == model_type)
    query = query.order_by(DriftReport.checked_at.desc(), DriftReport.id.desc()).limit(1)
    return session.scalar(query)


def _latest_feature_drift(session: Session, feature_set: str) -> FeatureDriftReading | None:
    report = _latest_report(session, feature_set, "feature")
    if report is None:
        return None
    checked = report.status == "success"
    share = (report.report or {}).get("share_drifted") if checked else None
    return FeatureDriftReading(
        feature_set=feature_set,
        checked_at=report.checked_at,
        status=report.status,
        severity=report.severity if checked else None,
        share_drifted=float(share) if share is not None else None,
    )


def _latest_summary_severity(session: Session, feature_set: str, model_type: str) -> str | None:
    report = _latest_report(session, feature_set, "summary", model_type)
    return None if report is None else report.severity


def _retraining_counts(
    session: Session,
) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str], int]]:
    query = select(
        RetrainingRun.feature_set,
        RetrainingRun.model_type,
        RetrainingRun.status,
        RetrainingRun.decision,
        func.count(),
    ).group_by(
        RetrainingRun.feature_set,
        RetrainingRun.model_type,
        RetrainingRun.status,
        RetrainingRun.decision,
    )
    runs: dict[tuple[str, str, str], int] = {}
    in_progress: dict[tuple[str, str], int] = {}
    for feature_set, model_type, status, decision, count in session.execute(query):
        if status == "running":
            in_progress[(feature_set, model_type)] = in_progress.get(
                (feature_set, model_type), 0
            ) + int(count)
            continue
        outcome = "failed" if status == "failed" else (decision or status)
        key = (feature_set, model_type, outcome)
        runs[key] = runs.get(key, 0) + int(count)
    return runs, in_progress


def _last_successful_run(session: Session, job: str) -> datetime | None:
    # Served by ix_job_runs_job_time, newest first; stops at the first successful run.
    query = (
        select(JobRun.started_at)
        .where(JobRun.job == job, JobRun.status == "ok")
        .order_by(JobRun.started_at.desc())
        .limit(1)
    )
    return session.scalar(query)
