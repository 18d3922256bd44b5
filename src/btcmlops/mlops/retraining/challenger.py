"""One retraining's work: train a challenger, meet the champion on the same test hours,
decide by the promotion rule, and act on the decision (deploy, shadow, or declare a baseline).

Separate from ``runner`` because this is the part with the statistics and the models in it:
``runner`` holds the lease and the job's lifecycle around it, ``run_records`` the documents
it produces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from btcmlops.clock import Clock, parse_utc
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.errors import InsufficientDataError
from btcmlops.features.schema import model_feature_names
from btcmlops.mlops.retraining.jobs import RetrainJob
from btcmlops.mlops.retraining.policy import RetrainPolicy, TrainingWindow
from btcmlops.mlops.retraining.promotion import (
    PairedCounts,
    PromotionDecision,
    decide_promotion,
)
from btcmlops.mlops.retraining.results import OfflineEvidence, RetrainOutcome
from btcmlops.mlops.retraining.rollback import FALLBACK, Safeguards
from btcmlops.mlops.retraining.run_records import RunRecord, job_outcome
from btcmlops.mlops.retraining.shadows import Shadows
from btcmlops.mlops.significance import mcnemar_exact
from btcmlops.modeling.baselines import LAST_HOUR, MAJORITY, RULE_WORDS
from btcmlops.modeling.evaluation import evaluate_forecast
from btcmlops.modeling.feature_cache import FeatureFrameCache
from btcmlops.modeling.model_types import probability_up
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import SHADOW, ModelVersionInfo
from btcmlops.modeling.splits import PURGE_GAP
from btcmlops.modeling.training import (
    TrainedModel,
    TrainingData,
    load_training_data,
    with_permutation_importances,
)

DEPLOY = "deploy"


@dataclass(frozen=True)
class Meeting:
    """Challenger and champion on the same test hours, as counts and as metrics."""

    counts: PairedCounts
    rows: int
    window: dict[str, Any] | None
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    significance: dict[str, Any] | None


class ChallengerTrial:
    """Trains, meets, decides and acts for the jobs of :class:`~runner.AutomatedRetraining`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        registry: ModelRegistry,
        *,
        policy: RetrainPolicy,
        shadows: Shadows,
        safeguards: Safeguards,
        champion_changed: Callable[[str, str], None],
        train_challenger: Callable[..., TrainedModel],
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.policy = policy
        self.shadows = shadows
        self.safeguards = safeguards
        self._champion_changed = champion_changed
        self.train_challenger = train_challenger
        # the training window's rows, decoded once across retrainings of this process
        self.frames = FeatureFrameCache(store)

    def run(self, job: RetrainJob) -> tuple[RetrainOutcome, RunRecord]:
        """Train the job's challenger, meet the champion, decide and act: the job's answer
        and the record its ``retraining_runs`` row keeps."""
        now = self.clock.now()
        champion = self.registry.champion(job.feature_set, job.model_type)
        challenger_columns = model_feature_names(job.feature_set)
        columns = list(
            dict.fromkeys(challenger_columns + (champion.feature_names if champion else []))
        )
        degraded = self.policy.performance_check(champion, now)["triggered"]
        window = self.policy.training_window(
            job.feature_set, job.model_type, now, performance_degraded=degraded
        )
        data, challenger = self._train(job, window, columns, challenger_columns)
        challenger_data = TrainingData(
            data.features[challenger_columns],
            data.targets,
            data.last_hour_direction,
            data.closed_before,
        )
        meeting = self._meet(challenger, champion, data)
        decision = self._decide(challenger, champion, meeting)
        if decision.promote:
            challenger = with_permutation_importances(challenger, challenger_data)
        registered = self.registry.register(
            challenger,
            created_by=f"retraining:{job.trigger}"[:64],
            reason=f"job {job.job_id}: " + ("; ".join(job.reasons) or job.trigger),
        )
        deployed, shadowed, reason = self._act(
            job, champion, registered, challenger, challenger_data, decision
        )
        evidence: OfflineEvidence = {
            **decision.evidence(),
            "offline": True,
            "champion_version": champion.version if champion else None,
        }
        challenger_metrics = {**meeting.challenger, **_rates(meeting.counts)}
        record = RunRecord(
            decision="deployed" if deployed else "kept",
            decision_reason=reason,
            challenger_version=registered.version,
            champion_version=champion.version if champion else None,
            challenger_metrics=challenger_metrics,
            champion_metrics=meeting.champion,
            significance=meeting.significance,
            evidence=evidence,
            windows={
                **challenger.windows(),
                "comparison": meeting.window,
                "training_window": {"start": window.start.isoformat(), "why": window.why},
            },
            samples={
                "train": int(challenger.split.train_index.size),
                "validation": int(challenger.split.validation_index.size),
                "test": int(challenger.split.test_index.size),
                "comparison": meeting.rows,
            },
        )
        return job_outcome(
            job, challenger, registered, champion, meeting, record, deployed, shadowed
        ), record

    def _act(
        self,
        job: RetrainJob,
        champion: ModelVersionInfo | None,
        registered: ModelVersionInfo,
        challenger: TrainedModel,
        data: TrainingData,
        decision: PromotionDecision,
    ) -> tuple[bool, bool, str]:
        """Deploy a challenger that passed; else keep it in shadow (after declaring a naive
        baseline the champion when there was none). Returns (deployed, shadowed, reason)."""
        reason = decision.reason
        if decision.promote and job.deploy_if_better:
            self.registry.promote(
                registered.version,
                actor=job.actor,
                reason=reason,
                action=DEPLOY,
                displaced_status=SHADOW,
            )
            self.shadows.trim(job.feature_set, job.model_type)
            self._champion_changed(job.feature_set, job.model_type)
            return True, False, reason
        if decision.promote:
            reason = f"{reason}; not deployed because deploy_if_better is false"
        elif champion is None and job.deploy_if_better:
            champion = self._first_fallback(job, challenger, data, decision)
            reason = (
                f"{reason}. No learned model has skill yet: the pair serves the naive "
                f"baseline {champion.version} ({champion.baseline_rule}) openly"
            )
        if champion is None or self.settings.shadow_max == 0:
            return False, False, reason
        self.shadows.admit(registered.version)
        shadowed = self.registry.get(registered.version).status == SHADOW
        if shadowed:
            reason = f"{reason}; kept in shadow to gather live evidence"
        return False, shadowed, reason

    def _first_fallback(
        self,
        job: RetrainJob,
        challenger: TrainedModel,
        data: TrainingData,
        decision: PromotionDecision,
    ) -> ModelVersionInfo:
        """No champion and a first challenger without skill: serve the better naive rule on
        its test hours, declared as such (the challenger waits in shadow)."""
        rule = (
            LAST_HOUR
            if (decision.last_hour_accuracy or 0.0) > (decision.majority_accuracy or 0.0)
            else MAJORITY
        )
        reason = (
            f"first champion: the learned challenger failed the promotion rule "
            f"({', '.join(decision.failed)}); serving the baseline '{RULE_WORDS[rule]}'"
        )
        fallback = self.safeguards.register_baseline(
            job.feature_set, job.model_type, list(challenger.feature_names), rule, reason, data
        )
        self.registry.promote(fallback.version, actor=job.actor, reason=reason, action=FALLBACK)
        self._champion_changed(job.feature_set, job.model_type)
        return self.registry.get(fallback.version)

    def _train(
        self,
        job: RetrainJob,
        window: TrainingWindow,
        columns: list[str],
        challenger_columns: list[str],
    ) -> tuple[TrainingData, TrainedModel]:
        try:
            data = load_training_data(
                self.store,
                job.feature_set,
                clock=self.clock,
                settings=self.settings,
                start=window.start,
                columns=columns,
                frames=self.frames,
            )
            challenger = self.train_challenger(
                TrainingData(
                    data.features[challenger_columns],
                    data.targets,
                    data.last_hour_direction,
                    data.closed_before,
                ),
                feature_set=job.feature_set,
                model_type=job.model_type,
                settings=self.settings,
                with_importances=False,
            )
        except InsufficientDataError as exc:
            raise InsufficientDataError(f"training on {window.why}: {exc}") from exc
        return data, challenger

    def _meet(
        self, challenger: TrainedModel, champion: ModelVersionInfo | None, data: TrainingData
    ) -> Meeting:
        """Score challenger and champion on the same test hours the champion never trained on."""
        hours = challenger.split.test_index
        if champion is not None:
            trained_until = parse_utc(champion.windows["train"]["end"])
            hours = hours[hours > trained_until + PURGE_GAP]
        if not len(hours):
            return Meeting(PairedCounts(), 0, None, challenger.test.as_dict(), None, None)
        x, y = data.rows(hours)
        last_hour = data.last_hour_direction.reindex(hours).to_numpy(dtype=float)
        p_challenger = probability_up(challenger.pipeline, x[list(challenger.feature_names)])
        window = {"start": hours[0].isoformat(), "end": hours[-1].isoformat(), "rows": len(hours)}
        challenger_metrics = evaluate_forecast(y, p_challenger).as_dict()
        if champion is None:
            counts = PairedCounts.from_outcomes(y, p_challenger, p_challenger, last_hour)
            return Meeting(counts, len(hours), window, challenger_metrics, None, None)
        pipeline = self.registry.load_pipeline(champion)
        p_champion = probability_up(pipeline, x[champion.feature_names])
        counts = PairedCounts.from_outcomes(y, p_challenger, p_champion, last_hour)
        significance = mcnemar_exact(
            only_first_right=counts.challenger_only, only_second_right=counts.champion_only
        ).as_dict()
        return Meeting(
            counts,
            len(hours),
            window,
            challenger_metrics,
            evaluate_forecast(y, p_champion).as_dict(),
            significance,
        )

    def _decide(
        self, challenger: TrainedModel, champion: ModelVersionInfo | None, meeting: Meeting
    ) -> PromotionDecision:
        alpha = self.settings.promotion_alpha
        trial_looks = self.settings.promotion_trial_days + 1
        if champion is None:
            decision = decide_promotion(
                meeting.counts, alpha=alpha, paired=False, trial_looks=trial_looks
            )
            return _reworded(decision, "first champion: " + decision.reason)
        # the trial's first look: the offline comparison hours
        decision = decide_promotion(meeting.counts, alpha=alpha, trial_looks=trial_looks)
        if meeting.rows < self.settings.retrain_min_comparison_rows:
            return _reworded(
                decision,
                f"kept {champion.version}: only {meeting.rows} test hours the champion never "
                f"trained on ({self.settings.retrain_min_comparison_rows} needed for a fair "
                "comparison)",
                promote=False,
            )
        verb = "deploy over" if decision.promote else "kept"
        return _reworded(decision, f"{verb} {champion.version}: {decision.reason}")


def _reworded(
    decision: PromotionDecision, reason: str, *, promote: bool | None = None
) -> PromotionDecision:
    return replace(
        decision, reason=reason, promote=decision.promote if promote is None else promote
    )


def _rates(counts: PairedCounts) -> dict[str, Any]:
    n = counts.hours
    if not n:
        return {}
    return {
        "actual_up_rate": counts.actual_up / n,
        "predicted_up_rate": counts.challenger_predicted_up / n,
    }
