"""What a finished retraining leaves behind: the ``retraining_runs`` row (``RunRecord``,
written by :func:`finish_run`) and the job's answer (:func:`job_outcome`, the
``/retrain/execute`` contract's shape plus the evidence; :func:`failed_outcome` when it failed).

Separate from ``challenger`` (which decides) because these are documents: their fields are
a contract with the store and the API, read by the dashboard and the tests, not logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from btcmlops.clock import Clock
from btcmlops.db.models import RetrainingRun
from btcmlops.db.store import Store
from btcmlops.jsonable import jsonable
from btcmlops.mlops.retraining.jobs import RetrainJob
from btcmlops.mlops.retraining.results import RetrainFailure, RetrainOutcome, RetrainSamples
from btcmlops.modeling.registry_records import ModelVersionInfo
from btcmlops.modeling.training import TrainedModel

if TYPE_CHECKING:
    from btcmlops.mlops.retraining.challenger import Meeting


@dataclass(frozen=True)
class RunRecord:
    """What the ``retraining_runs`` row keeps of a finished job."""

    decision: str
    decision_reason: str
    challenger_version: str | None = None
    champion_version: str | None = None
    challenger_metrics: dict[str, Any] | None = None
    champion_metrics: dict[str, Any] | None = None
    significance: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    windows: dict[str, Any] | None = None
    samples: RetrainSamples | None = None


def finish_run(
    store: Store,
    clock: Clock,
    job: RetrainJob,
    record: RunRecord,
    *,
    status: str,
    duration: float,
    error: str | None = None,
) -> None:
    """Close the job's ``retraining_runs`` row with its status and the record."""
    values = {
        "status": status,
        "finished_at": clock.now(),
        "duration_seconds": duration,
        "error": error,
        "decision": record.decision,
        "decision_reason": record.decision_reason,
        "challenger_version": record.challenger_version,
        "champion_version": record.champion_version,
        "challenger_metrics": jsonable(record.challenger_metrics),
        "champion_metrics": jsonable(record.champion_metrics),
        "significance": jsonable(record.significance),
        "evidence": jsonable(record.evidence),
        "windows": jsonable(record.windows),
        "samples": jsonable(record.samples),
    }
    with store.session() as session:
        session.execute(
            update(RetrainingRun).where(RetrainingRun.job_id == job.job_id).values(**values)
        )


def failed_outcome(job: RetrainJob, message: str, duration: float) -> RetrainFailure:
    """The answer of a job that failed (nothing was deployed)."""
    return {
        "success": False,
        "job_id": job.job_id,
        "error": message,
        "training_duration_seconds": duration,
        "deployment": {"deployed": False, "reason": f"retraining failed: {message}"},
    }


def job_outcome(
    job: RetrainJob,
    challenger: TrainedModel,
    registered: ModelVersionInfo,
    champion: ModelVersionInfo | None,
    meeting: Meeting,
    record: RunRecord,
    deployed: bool,
    shadowed: bool,
) -> RetrainOutcome:
    """The job's answer (the ``/retrain/execute`` contract's shape plus the evidence)."""
    new, old = meeting.challenger, meeting.champion
    evidence = record.evidence or {}
    return {
        "success": True,
        "job_id": job.job_id,
        "samples_used": int(challenger.split.train_index.size),
        "samples": record.samples,
        "windows": record.windows,
        "new_model": {
            "test_accuracy": challenger.test_accuracy,
            "validation_accuracy": challenger.validation.accuracy,
            "model_version": registered.version,
            "test_interval_95": [challenger.test.accuracy_ci_low, challenger.test.accuracy_ci_high],
        },
        "comparison": {
            "new_is_better": bool(evidence.get("promote")),
            "new_accuracy": new["accuracy"],
            "current_accuracy": None if old is None else old["accuracy"],
            "accuracy_improvement": None if old is None else new["accuracy"] - old["accuracy"],
            "new_log_loss": new["log_loss"],
            "current_log_loss": None if old is None else old["log_loss"],
            "current_version": champion.version if champion else None,
            "majority_accuracy": evidence.get("majority_accuracy"),
            "last_hour_accuracy": evidence.get("last_hour_accuracy"),
            "significance": meeting.significance,
        },
        "evidence": evidence,
        "deployment": {"deployed": deployed, "shadow": shadowed, "reason": record.decision_reason},
    }
