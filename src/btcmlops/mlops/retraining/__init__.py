"""Retraining, promotion, rollback and fallback: the loop's decisions about models.

``policy`` says when to retrain, ``promotion`` is the rule a challenger must pass (pure;
its paired sequential tests are ``paired_tests``'), ``shadows`` keeps the models that
predict beside the champion and their evidence, ``rollback`` holds the paired rollback
(its paired hours: ``deployment_pairing``) and the declared baseline fallback, ``runner`` runs
the jobs (``jobs``: the job and its lease; ``challenger``: train, meet the champion, decide;
``run_records``: the run's row and answer), and ``queries`` reads the store for all of them;
``results`` holds the typed documents they answer with.
"""

from btcmlops.mlops.retraining.jobs import RetrainingInProgressError, RetrainJob, lease_name
from btcmlops.mlops.retraining.runner import AutomatedRetraining

__all__ = ["AutomatedRetraining", "RetrainJob", "RetrainingInProgressError", "lease_name"]
