"""A retraining job and the lease that makes it the only one of its pair.

Separate from ``runner`` because the job is what crosses to the API's worker pool
(``services.submit_job``) and the error is what the API translates to HTTP 409: both are
small, and neither needs the training machinery to be named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from btcmlops.errors import ConflictError
from btcmlops.mlops.leases import Leases

if TYPE_CHECKING:
    from btcmlops.mlops.retraining.results import RetrainResult
    from btcmlops.mlops.retraining.runner import AutomatedRetraining

LEASE_TTL = timedelta(seconds=90)  # renewed every 30 s while a retraining runs


class RetrainingInProgressError(ConflictError):
    """A retraining of the same pair is running; ``job_id`` names it."""

    def __init__(self, message: str, job_id: str | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.extra = {"job_id": job_id}


@dataclass
class RetrainJob:
    """A retraining that holds its pair's lease; ``run()`` does the work and releases it."""

    job_id: str
    feature_set: str
    model_type: str
    deploy_if_better: bool
    trigger: str
    reasons: list[str]
    actor: str
    _owner: AutomatedRetraining = field(repr=False)
    # The job's own lease holder: two jobs of one process must not share the pair's lease.
    _leases: Leases = field(repr=False)
    _done: bool = False

    def run(self) -> RetrainResult:
        if self._done:
            raise RuntimeError(f"job {self.job_id} already ran")
        self._done = True
        return self._owner._execute(self)


def lease_name(feature_set: str, model_type: str) -> str:
    return f"retrain:{feature_set}:{model_type}"
