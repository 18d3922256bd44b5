"""The MLOps loop's jobs: ingest, score, build, predict, resolve, check drift, retrain.

:class:`PipelineJobs` holds the jobs as plain methods over a :class:`Runtime`, each returning
the numbers of what it did; the live ``Scheduler`` calls them on the ``timetable``'s cron
triggers, and the demo and the backtest call the very same methods hour by hour on a replay
clock. Every run goes through :class:`~btcmlops.mlops.job_runs.JobRunner`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, func, select

from btcmlops.clock import HOUR, floor_hour
from btcmlops.db.models import ArticleSentiment, PredictionLog, PriceBar
from btcmlops.errors import BtcmlopsError
from btcmlops.features.builder import build_features
from btcmlops.features.schema import FEATURE_SETS, SCORER_FOR_SET
from btcmlops.ingest.storage import ImportSummary, store_articles, store_bars
from btcmlops.ingest.world import SimulatedWorld
from btcmlops.mlops.article_scoring import score_pending_articles
from btcmlops.mlops.drift.sequential_status import AdvancedDetail, NotFittedDetail
from btcmlops.mlops.job_runs import JobRunner
from btcmlops.mlops.predictions.outcomes import resolve_outcomes
from btcmlops.mlops.predictions.serving import log_shadow_predictions, predict_and_log
from btcmlops.mlops.results import (
    IngestSkipped,
    JobError,
    LiveIngest,
    OutcomesRun,
    ScoredArticles,
    ScorerUnavailable,
    SimulatedIngest,
)
from btcmlops.mlops.runtime import Runtime
from btcmlops.mlops.timetable import TIMETABLE, is_hourly
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE
from btcmlops.sentiment.base import SentimentScorer
from btcmlops.sentiment.scorers import make_scorer
from btcmlops.severity import Severity

DEFAULT_LOOKBACK = timedelta(days=7)

Event = Callable[[str, str], None]  # (kind, message): notable things, for the demo's console
# Whether a scorer scored anything: a look into the (scorer, published_at) index, where a
# DISTINCT over every score grows with the store (two hourly jobs ask).
_SCORED_BY = select(exists().where(ArticleSentiment.scorer == bindparam("scorer")))


@dataclass
class PipelineJobs:
    """The loop's jobs, each a method returning the numbers of what it did."""

    runtime: Runtime
    events: Event | None = None
    model_types: tuple[str, ...] = (DEFAULT_MODEL_TYPE,)
    world: SimulatedWorld | None = None
    runner: JobRunner = field(init=False)
    _scorers: dict[str, SentimentScorer | str] = field(default_factory=dict)
    _predicted: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runner = JobRunner(self.runtime)

    def _event(self, kind: str, message: str) -> None:
        if self.events is not None:
            self.events(kind, message)

    # ---------------------------------------------------------------- hourly
    def ingest(self) -> IngestSkipped | SimulatedIngest | LiveIngest:
        """New closed bars and articles from the configured source."""
        runtime = self.runtime
        if runtime.settings.source == "live":
            return self._ingest_live()
        world = self.world or SimulatedWorld.load(runtime.settings.home)
        if world is None:
            return {"skipped": "no simulated world in this home: run `btcmlops ingest "
                    "simulate` first, or set BTCMLOPS_SOURCE=live"}  # fmt: skip
        self.world = world
        now = runtime.clock.now()
        end = floor_hour(now)
        start = self._first_missing_hour(end)
        if start >= end:
            return {"bars": 0, "articles": 0}
        simulator = world.simulator_covering(now)
        bars = store_bars(
            runtime.store,
            simulator.fetch_bars(start, end),
            symbol=runtime.settings.symbol,
            source=simulator.name,
            clock=runtime.clock,
        )
        articles = store_articles(
            runtime.store, simulator.fetch_articles(start, now), clock=runtime.clock
        )
        return {"bars": bars.inserted, "articles": articles.inserted, "from": start}

    def _first_missing_hour(self, end: datetime) -> datetime:
        with self.runtime.store.session() as session:
            last = session.scalar(
                select(func.max(PriceBar.ts)).where(PriceBar.symbol == self.runtime.settings.symbol)
            )
        return last + HOUR if last is not None else end - DEFAULT_LOOKBACK

    def _ingest_live(self) -> LiveIngest:
        from btcmlops.ingest.live import configured_live_sources, ingest_live

        runtime = self.runtime
        settings = runtime.settings
        with configured_live_sources(settings, runtime.clock) as (prices, news):
            report = ingest_live(runtime.store, runtime.clock, prices, news, symbol=settings.symbol)
        total: ImportSummary = report.total()
        detail: LiveIngest = {"inserted": total.inserted, "failed_sources": report.error_lines()}
        if not report.ok and total.inserted == 0:
            raise BtcmlopsError("; ".join(report.error_lines()))
        return detail

    def score_sentiment(self) -> dict[str, ScorerUnavailable | ScoredArticles]:
        """Score new articles with VADER, and with FinBERT when its model can be loaded."""
        scored: dict[str, ScorerUnavailable | ScoredArticles] = {}
        for name in ("vader", "finbert"):
            scorer = self._scorer(name)
            if isinstance(scorer, str):
                scored[name] = {"unavailable": scorer}
                continue
            summary = score_pending_articles(self.runtime.store, scorer, clock=self.runtime.clock)
            scored[name] = {"scored": summary.scored, "failed": summary.failed}
        return scored

    def _scorer(self, name: str) -> SentimentScorer | str:
        """The scorer, built once; a string says why it is unavailable (also asked once)."""
        if name not in self._scorers:
            try:
                self._scorers[name] = make_scorer(name, self.runtime.settings)
            except BtcmlopsError as exc:
                self._scorers[name] = str(exc)
                if name == "finbert":
                    self._event("finbert", "FinBERT unavailable; only VADER scores this run")
        return self._scorers[name]

    def feature_sets(self) -> list[str]:
        """The feature sets that have sentiment scores to build on (VADER always)."""
        with self.runtime.store.session() as session:
            connection = session.connection()
            return [
                fs
                for fs in FEATURE_SETS
                if fs == "vader"
                or connection.execute(_SCORED_BY, {"scorer": SCORER_FOR_SET[fs]}).scalar()
            ]

    def build_features(self) -> dict[str, int]:
        built: dict[str, int] = {}
        for feature_set in self.feature_sets():
            summary = build_features(
                self.runtime.store,
                feature_set,
                clock=self.runtime.clock,
                symbol=self.runtime.settings.symbol,
            )
            built[feature_set] = summary.rows_inserted
            if summary.newest_row is not None:
                self.runtime.predictor.remember_row(feature_set, summary.newest_row)
        self.runtime.predictor.refresh()
        return built

    def champion_pairs(self) -> list[tuple[str, str]]:
        return self.runtime.registry.champion_pairs()

    def predict(self) -> dict[str, str | int]:
        """One logged prediction per champion for the newest feature hour (once per hour)."""
        runtime = self.runtime
        made: dict[str, str | int] = {}
        serving_shadows: set[str] = set()
        for feature_set, model_type in self.champion_pairs():
            pair = (feature_set, model_type)
            shadows = runtime.registry.shadows(feature_set, model_type)
            serving_shadows.update(shadow.version for shadow in shadows)
            hour = runtime.predictor.newest_row_hour(feature_set)
            if self._already_predicted(pair, hour):
                continue
            answer = predict_and_log(
                runtime.predictor,
                runtime.logger,
                runtime.clock,
                feature_set,
                model_type,
                source="scheduled",
            )
            self._predicted[pair] = hour
            made[f"{feature_set}/{model_type}"] = answer["prediction"]["direction"]
            if shadows:
                made[f"{feature_set}/{model_type}/shadows"] = len(
                    log_shadow_predictions(runtime.predictor, runtime.logger, shadows)
                )
        runtime.predictor.forget_shadows(serving_shadows)
        return made

    def _already_predicted(self, pair: tuple[str, str], hour: datetime) -> bool:
        """True when the hourly job already logged a prediction of this pair for this hour
        (in this process, or, after a restart, in the store)."""
        if self._predicted.get(pair) == hour:
            return True
        if pair in self._predicted:
            return False
        self.runtime.logger.flush(timeout=5)
        with self.runtime.store.session() as session:
            found = session.scalar(
                select(func.count()).where(
                    PredictionLog.feature_set == pair[0],
                    PredictionLog.model_type == pair[1],
                    PredictionLog.feature_ts == hour,
                    PredictionLog.source == "scheduled",
                )
            )
        if found:
            self._predicted[pair] = hour
        return bool(found)

    def resolve_outcomes(self) -> OutcomesRun:
        runtime = self.runtime
        runtime.logger.flush(timeout=10)
        summary = resolve_outcomes(
            runtime.store,
            clock=runtime.clock,
            symbol=runtime.settings.symbol,
            grace_hours=runtime.settings.outcome_grace_hours,
        )
        rollbacks: list[str] = []
        for feature_set, model_type in self.champion_pairs():
            verdict = runtime.retraining.check_auto_rollback(feature_set, model_type)
            if verdict and verdict.get("rolled_back"):
                rollbacks.append(verdict["reason"])
                self._event("rollback", verdict["reason"])
        return {
            "resolved": summary.resolved,
            "expired": summary.expired,
            "pending": summary.still_pending,
            "rollbacks": rollbacks,
        }

    def sequential_drift(self) -> dict[str, NotFittedDetail | AdvancedDetail | JobError]:
        """Feed each feature set's hourly sequential detector the feature rows built since it
        last ran, fitting or refitting it when due; an alarm going off is an event."""
        results: dict[str, NotFittedDetail | AdvancedDetail | JobError] = {}
        failures = []
        for feature_set in self.feature_sets():
            try:
                update = self.runtime.sequential.advance(feature_set)
            except BtcmlopsError as exc:  # the other feature sets still run
                results[feature_set] = {"error": str(exc)}
                failures.append(f"{feature_set}: {exc}")
                continue
            results[feature_set] = update.as_detail()
            status = update.status
            if update.alarm_started:
                self._event(
                    "drift",
                    f"{feature_set}: hourly sequential drift detector {status.alarm_words()} "
                    f"(evidence {status.statistic:.2f} of its threshold)",
                )
        if failures:
            raise BtcmlopsError("; ".join(failures))
        return results

    def hourly(self, skip: Collection[str] = ()) -> None:
        """The hourly jobs in order (what the replays run; the scheduler staggers them).

        ``skip`` names jobs to leave out: a backtest stores its files before it starts, so it
        has nothing to ingest."""
        for name, method, cron in TIMETABLE:
            if is_hourly(cron) and name not in skip:
                self.runner.run(name, getattr(self, method))

    # ---------------------------------------------------------------- daily / weekly
    def managed_pairs(self) -> list[tuple[str, str]]:
        """Champion pairs plus the default pairs of every buildable feature set."""
        pairs = set(self.champion_pairs())
        pairs.update((fs, mt) for fs in self.feature_sets() for mt in self.model_types)
        return sorted(pairs)

    def drift_check(self) -> dict[str, Severity | None]:
        results: dict[str, Severity | None] = {}
        for feature_set, model_type in self.champion_pairs():
            summary = self.runtime.drift.get_drift_summary(feature_set, model_type)
            severity = summary["overall_severity"]
            results[f"{feature_set}/{model_type}"] = severity
            if severity in ("medium", "high"):
                features = summary["feature_drift"]
                top = ", ".join(features["top_features"][:3])
                self._event(
                    "drift",
                    f"{feature_set}/{model_type}: drift {severity}: features "
                    f"{features['drift_severity']}" + (f" ({top})" if top else "") + ", model "
                    f"accuracy {summary['model_drift']['drift_severity']}",
                )
        return results

    def retraining_check(self) -> dict[str, str]:
        """The daily look at every managed pair: fall back to a naive baseline the champion
        is significantly worse than, promote a shadow challenger that the rule accepts, then
        retrain where ``should_retrain`` says so."""
        results: dict[str, str] = {}
        for feature_set, model_type in self.managed_pairs():
            pair = f"{feature_set}/{model_type}"
            self._safeguard(feature_set, model_type)
            decision = self.runtime.retraining.should_retrain(feature_set, model_type)
            if not decision["should_retrain"]:
                results[pair] = "no"
                continue
            trigger = decision["triggers"][0] if decision["triggers"] else "check"
            results[pair] = self._retrain(feature_set, model_type, trigger, decision["reasons"])
        return results

    def _safeguard(self, feature_set: str, model_type: str) -> None:
        pair = f"{feature_set}/{model_type}"
        retraining = self.runtime.retraining
        fallback = retraining.check_fallback(feature_set, model_type)
        if fallback is not None and fallback.fell_back_to:
            self._event("fallback", f"{pair}: {fallback.reason}")
        review = retraining.review_shadows(feature_set, model_type)
        if review is not None and review["promoted"]:
            self._event("deployed", f"{pair}: {review['reason']}")
        elif review is not None:
            retired = ", ".join(review["retired"])
            self._event("kept", f"{pair}: trial over without a promotion, out of shadow: {retired}")

    def scheduled_retraining(self) -> dict[str, str]:
        """The weekly retraining of every champion pair (cooldown and data permitting)."""
        results: dict[str, str] = {}
        for feature_set, model_type in self.champion_pairs():
            decision = self.runtime.retraining.should_retrain(feature_set, model_type, record=False)
            pair = f"{feature_set}/{model_type}"
            if decision["blocked_by"]:
                results[pair] = "blocked: " + "; ".join(decision["blocked_by"])
                continue
            results[pair] = self._retrain(
                feature_set, model_type, "schedule", ["weekly scheduled retraining"]
            )
        return results

    def _retrain(self, feature_set: str, model_type: str, trigger: str, reasons: list[str]) -> str:
        pair = f"{feature_set}/{model_type}"
        self._event("retrain", f"{pair}: retraining ({trigger}): {'; '.join(reasons)}")
        try:
            result = self.runtime.retraining.retrain_model(
                feature_set, model_type, trigger=trigger, reasons=reasons, actor="scheduler"
            )
        except BtcmlopsError as exc:  # e.g. already running in another process
            self._event("retrain", f"{pair}: not started: {exc}")
            return f"not started: {exc}"
        if not result.get("success"):
            self._event("retrain", f"{pair}: failed: {result.get('error')}")
            return "failed"
        deployment = result["deployment"]
        self._event(
            "deployed" if deployment["deployed"] else "kept",
            f"{pair}: {deployment['reason']}",
        )
        return "deployed" if deployment["deployed"] else "kept"
