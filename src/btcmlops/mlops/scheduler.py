"""The MLOps loop on a timetable: ingest, score, build, predict, resolve, check drift, retrain.

:class:`PipelineJobs` holds the jobs as plain methods over a :class:`Runtime`; the live
:class:`Scheduler` (APScheduler) calls them on cron triggers, and the demo calls the very
same methods hour by hour on a replay clock. Every run goes through :class:`JobRunner`, which
records it in ``job_runs`` (start, duration, outcome, numbers) and never lets an exception
escape. A failed job is retried with exponential backoff (1, 2, 4 ... 30 minutes) instead of
waiting for its next slot; it never stops the scheduler.

With several API workers, or a worker and a ``btcmlops scheduler`` process, exactly one runs
the jobs: the one holding the ``scheduler`` lease (``mlops.leases``), renewed every 20
seconds. If it dies, another takes over within a minute.

Timetable (UTC, wall clock): ingest hh:01, sentiment hh:02, features hh:03, predictions hh:04,
outcomes hh:05, the hourly sequential drift detector hh:06 (after outcomes, so a rollback of
hh:05 refits it within the hour), drift check daily 00:10, retraining check daily 00:20,
scheduled retraining Mondays 01:00.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select

from btcmlops.clock import HOUR, SystemClock, floor_hour
from btcmlops.db.models import ArticleSentiment, JobRun, PredictionLog, PriceBar
from btcmlops.errors import BtcmlopsError
from btcmlops.features.builder import build_features
from btcmlops.features.schema import FEATURE_SETS, SCORER_FOR_SET
from btcmlops.ingest.storage import ImportSummary, store_articles, store_bars
from btcmlops.ingest.world import SimulatedWorld
from btcmlops.jsonable import jsonable
from btcmlops.mlops.article_scoring import score_pending_articles
from btcmlops.mlops.predictions.outcomes import resolve_outcomes
from btcmlops.mlops.predictions.serving import log_shadow_predictions, predict_and_log
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE
from btcmlops.sentiment.base import SentimentScorer
from btcmlops.sentiment.scorers import make_scorer

log = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"
LEASE_TTL = timedelta(seconds=60)
HEARTBEAT_SECONDS = 20
BACKOFF_MINUTES = (1, 2, 4, 8, 16, 30)
DEFAULT_LOOKBACK = timedelta(days=7)

Event = Callable[[str, str], None]  # (kind, message): notable things, for the demo's console
# Whether a scorer scored anything: a look into the (scorer, published_at) index, where a
# DISTINCT over every score grows with the store (two hourly jobs ask).
_SCORED_BY = select(exists().where(ArticleSentiment.scorer == bindparam("scorer")))


_INSERT_RUN = insert(JobRun.__table__)  # Core: no ORM bulk-insert machinery per row


@dataclass
class JobState:
    consecutive_failures: int = 0
    last_status: str | None = None
    last_error: str | None = None
    last_started_at: datetime | None = None
    last_duration_seconds: float | None = None


class JobRunner:
    """Runs a job, records it in ``job_runs``, and remembers failures for the backoff."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.states: dict[str, JobState] = {}

    def run(self, name: str, job: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        state = self.states.setdefault(name, JobState())
        started_at = self.runtime.clock.now()
        started = time.perf_counter()
        status, detail, error = "ok", None, None
        try:
            detail = job()
        except Exception as exc:  # a job failure is recorded, never raised
            status = "failed"
            error = str(exc) if isinstance(exc, BtcmlopsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BtcmlopsError):
                log.exception("job %s failed", name)
        duration = time.perf_counter() - started
        state.last_started_at, state.last_duration_seconds = started_at, duration
        state.last_status, state.last_error = status, error
        state.consecutive_failures = 0 if status == "ok" else state.consecutive_failures + 1
        self._record(name, started_at, duration, status, detail, error)
        return detail

    def _record(self, name, started_at, duration, status, detail, error) -> None:  # type: ignore[no-untyped-def]
        try:
            with self.runtime.store.connection() as connection:
                # One prepared INSERT with parameters: a replay records several runs an hour,
                # and building a statement per row (or the ORM's unit of work) costs more
                # than the row.
                connection.execute(
                    _INSERT_RUN,
                    {
                        "job": name,
                        "started_at": started_at,
                        "finished_at": self.runtime.clock.now(),
                        "duration_seconds": duration,
                        "status": status,
                        "detail": jsonable(detail) if detail is not None else None,
                        "error": error,
                    },
                )
        except Exception as exc:  # the store is down: the run still happened
            log.warning("could not record run of %s: %s", name, exc)


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
    def ingest(self) -> dict[str, Any]:
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

    def _ingest_live(self) -> dict[str, Any]:
        from btcmlops.ingest.live import configured_live_sources, ingest_live

        runtime = self.runtime
        settings = runtime.settings
        with configured_live_sources(settings, runtime.clock) as (prices, news):
            report = ingest_live(runtime.store, runtime.clock, prices, news, symbol=settings.symbol)
        total: ImportSummary = report.total()
        detail = {"inserted": total.inserted, "failed_sources": report.error_lines()}
        if not report.ok and total.inserted == 0:
            raise BtcmlopsError("; ".join(report.error_lines()))
        return detail

    def score_sentiment(self) -> dict[str, Any]:
        """Score new articles with VADER, and with FinBERT when its model can be loaded."""
        scored: dict[str, Any] = {}
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

    def build_features(self) -> dict[str, Any]:
        built = {}
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

    def predict(self) -> dict[str, Any]:
        """One logged prediction per champion for the newest feature hour (once per hour)."""
        runtime = self.runtime
        made = {}
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

    def resolve_outcomes(self) -> dict[str, Any]:
        runtime = self.runtime
        runtime.logger.flush(timeout=10)
        summary = resolve_outcomes(
            runtime.store,
            clock=runtime.clock,
            symbol=runtime.settings.symbol,
            grace_hours=runtime.settings.outcome_grace_hours,
        )
        rollbacks = []
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

    def sequential_drift(self) -> dict[str, Any]:
        """Feed each feature set's hourly sequential detector the feature rows built since it
        last ran, fitting or refitting it when due; an alarm going off is an event."""
        results: dict[str, Any] = {}
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
        for name, method, cron in Scheduler.TIMETABLE:
            if set(cron) == {"minute"} and name not in skip:  # a minute alone: every hour
                self.runner.run(name, getattr(self, method))

    # ---------------------------------------------------------------- daily / weekly
    def managed_pairs(self) -> list[tuple[str, str]]:
        """Champion pairs plus the default pairs of every buildable feature set."""
        pairs = set(self.champion_pairs())
        pairs.update((fs, mt) for fs in self.feature_sets() for mt in self.model_types)
        return sorted(pairs)

    def drift_check(self) -> dict[str, Any]:
        results = {}
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

    def retraining_check(self) -> dict[str, Any]:
        """The daily look at every managed pair: fall back to a naive baseline the champion
        is significantly worse than, promote a shadow challenger that the rule accepts, then
        retrain where ``should_retrain`` says so."""
        results = {}
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

    def scheduled_retraining(self) -> dict[str, Any]:
        """The weekly retraining of every champion pair (cooldown and data permitting)."""
        results = {}
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


class Scheduler:
    """APScheduler running :class:`PipelineJobs` while this process holds the lease."""

    def __init__(self, runtime: Runtime, jobs: PipelineJobs | None = None) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runtime = runtime
        self.jobs = jobs or PipelineJobs(runtime)
        self.runner = self.jobs.runner
        self.leader = False
        self._wall = SystemClock()
        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True})
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    TIMETABLE: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("ingest", "ingest", {"minute": 1}),
        ("sentiment", "score_sentiment", {"minute": 2}),
        ("features", "build_features", {"minute": 3}),
        ("predictions", "predict", {"minute": 4}),
        ("outcomes", "resolve_outcomes", {"minute": 5}),
        ("sequential_drift", "sequential_drift", {"minute": 6}),
        ("drift_check", "drift_check", {"hour": 0, "minute": 10}),
        ("retraining_check", "retraining_check", {"hour": 0, "minute": 20}),
        ("scheduled_retraining", "scheduled_retraining", {"day_of_week": "mon", "hour": 1}),
    )

    def start(self) -> Scheduler:
        for name, method, cron in self.TIMETABLE:
            self._scheduler.add_job(
                self._guarded,
                "cron",
                args=[name, method],
                id=name,
                name=name,
                misfire_grace_time=600,
                max_instances=1,
                **cron,
            )
        self._scheduler.start()
        self._claim()
        self._heartbeat = threading.Thread(target=self._beat, name="scheduler-lease", daemon=True)
        self._heartbeat.start()
        return self

    def _claim(self) -> None:
        try:
            held = self.runtime.leases.acquire(SCHEDULER_LEASE, LEASE_TTL)
        except Exception as exc:  # the store is down: do not run jobs we cannot coordinate
            log.warning("scheduler lease check failed: %s", exc)
            held = False
        if held != self.leader:
            log.info("scheduler %s", "leading" if held else "standing by")
        self.leader = held

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._claim()

    def _guarded(self, name: str, method: str, retry: bool = False) -> None:
        if not self.leader:
            return
        self.runner.run(name, getattr(self.jobs, method))
        state = self.runner.states[name]
        if state.last_status == "failed":
            step = min(state.consecutive_failures, len(BACKOFF_MINUTES)) - 1
            when = self._wall.now() + timedelta(minutes=BACKOFF_MINUTES[step])
            self._scheduler.add_job(
                self._guarded,
                "date",
                run_date=when,
                args=[name, method, True],
                id=f"{name}-retry",
                replace_existing=True,
                misfire_grace_time=600,  # a busy process runs it late rather than never
            )

    def shutdown(self) -> None:
        self._stop.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self.leader:
            with contextlib.suppress(Exception):  # if the store is down, the lease lapses
                self.runtime.leases.release(SCHEDULER_LEASE)
        self.leader = False

    def stop(self) -> None:
        """Ask ``run_forever`` to return (safe from a signal handler)."""
        self._stop.set()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.shutdown()

    def describe(self) -> dict[str, Any]:
        jobs = []
        for name, _, _ in self.TIMETABLE:
            job = self._scheduler.get_job(name)
            state = self.runner.states.get(name, JobState())
            jobs.append(
                {
                    "name": name,
                    "next_run_at": job.next_run_time.isoformat()
                    if job and job.next_run_time
                    else None,
                    "last_started_at": state.last_started_at,
                    "last_status": state.last_status,
                    "last_duration_seconds": state.last_duration_seconds,
                    "last_error": state.last_error,
                    "consecutive_failures": state.consecutive_failures,
                }
            )
        holder = None
        try:
            lease = self.runtime.leases.current(SCHEDULER_LEASE)
            holder = lease.holder if lease else None
        except Exception:
            holder = None
        return {"running": True, "leader": self.leader, "lease_holder": holder, "jobs": jobs}


def recent_job_runs(runtime: Runtime, limit_per_job: int = 1) -> dict[str, list[dict[str, Any]]]:
    """The latest runs of every job, from the store (any process)."""
    with runtime.store.session() as session:
        names = list(session.scalars(select(JobRun.job).distinct()))
        runs: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            rows = session.scalars(
                select(JobRun)
                .where(JobRun.job == name)
                .order_by(JobRun.started_at.desc(), JobRun.id.desc())
                .limit(limit_per_job)
            )
            runs[name] = [
                {
                    "started_at": row.started_at.isoformat(),
                    "duration_seconds": row.duration_seconds,
                    "status": row.status,
                    "error": row.error,
                    "detail": row.detail,
                }
                for row in rows
            ]
    return runs
