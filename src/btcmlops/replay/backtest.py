"""Replaying real history through the service's own jobs: what ``btcmlops backtest`` runs.

1. **Files in.** The price CSV is read and checked by the importer ``ingest prices`` uses,
   and its bars from the warm-up's feature lookback to ``end`` are stored; a news CSV goes
   through the news importer and is scored with VADER at once (scores are a function of the
   text alone). Without news every sentiment feature takes its "no news" value, so the models
   see prices and the calendar only, and the result says so.
2. **Warm-up.** The clock is pinned at ``start``; the feature rows up to then are built and
   the first champion is trained exactly as the service's retraining trains one, on the
   training window before ``start``.
3. **Replay (the adaptive policy).** The clock moves one hour at a time from ``start`` to
   ``end`` and at every hour the scheduler's jobs run (:func:`run_due_jobs`): features,
   predictions, outcomes, the hourly drift detector, at midnight the drift and retraining
   checks (fallback, shadow promotion, retraining and deployment as configured), on Mondays
   the scheduled retraining; rollbacks happen when the outcomes say so. Every
   ``BTCMLOPS_RETRAIN_*`` and ``BTCMLOPS_DRIFT_*`` setting applies. The store holds the
   whole file from the start, but every read is bounded by the clock (features from closed
   bars, training labels known at the instant, outcomes of closed hours), so nothing later
   leaks into a decision; a test checks that changing later prices leaves earlier
   predictions identical.
4. **The alternatives, on the same hours** (:mod:`btcmlops.replay.policies`): the first
   champion never replaced (``static``), a retraining every 7 days always deployed
   (``weekly``), and the naive rules ``majority`` and ``last_hour`` refitted at the same
   weekly moments. They read the same stored feature rows and prices, as of the same
   instants, with the same seeds.

Ctrl-C during the replay lets the hour's jobs finish and stops before the next hour (a second
Ctrl-C stops at once); the evaluation then covers the hours replayed so far and says it was
interrupted.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from btcmlops.clock import HOUR, ManualClock, floor_hour
from btcmlops.errors import BtcmlopsError, InvalidInputError
from btcmlops.features.schema import FEATURE_SETS, MAX_LOOKBACK_HOURS, SCORER_FOR_SET
from btcmlops.ingest.csv_news import import_news_csv
from btcmlops.ingest.csv_prices import read_importable_prices, store_parsed_prices
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE
from btcmlops.replay.clockwork import run_due_jobs
from btcmlops.sentiment.scorers import make_scorer

Progress = Callable[[int, int], None]
Event = Callable[[str, str], None]

# The warm-up must give the first champion enough history to train and be tested: the
# chronological split drops two purge gaps of a week each (modeling.splits), and what is left
# of four weeks gives about 230 training, 30 validation and 65 test hours.
MIN_WARM_DAYS = 28


@dataclass(frozen=True)
class BacktestPlan:
    """What to replay: ``start`` and ``end`` are UTC hours, ``end`` exclusive."""

    prices: Path
    start: datetime
    end: datetime
    news: Path | None = None
    warm_days: int = 60
    feature_set: str = "vader"
    model_type: str = DEFAULT_MODEL_TYPE

    def __post_init__(self) -> None:
        if self.start != floor_hour(self.start) or self.end != floor_hour(self.end):
            raise InvalidInputError("the backtest's start and end must be whole UTC hours")
        if self.end <= self.start:
            raise InvalidInputError(
                f"the backtest must end after it starts: {self.start:%Y-%m-%d %H:%M} to "
                f"{self.end:%Y-%m-%d %H:%M} UTC is empty"
            )
        if self.warm_days < MIN_WARM_DAYS:
            raise InvalidInputError(
                f"--warm-days {self.warm_days} is too little warm-up: the first champion needs "
                f"at least {MIN_WARM_DAYS} days of history before --start"
            )
        if self.feature_set not in FEATURE_SETS:
            raise InvalidInputError(
                f"unknown feature set {self.feature_set!r}: expected one of "
                f"{', '.join(FEATURE_SETS)}"
            )

    @property
    def warm_start(self) -> datetime:
        return self.start - timedelta(days=self.warm_days)

    @property
    def hours(self) -> int:
        """Target hours in the replayed range (a prediction per hour, made an hour before)."""
        return int((self.end - self.start) / HOUR)


@dataclass
class BacktestRun:
    """What the replay did; :mod:`btcmlops.replay.policies` turns it into the comparison."""

    plan: BacktestPlan
    first_champion: str | None = None
    first_champion_words: str = ""
    reached: datetime | None = None  # the last clock hour whose jobs all ran
    interrupted: bool = False
    with_news: bool = False
    bars_stored: int = 0
    articles_stored: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def evaluated_until(self) -> datetime:
        """Targets before this hour were resolved during the replay (clock reached it)."""
        return self.reached if self.reached is not None else self.plan.start


class Backtest:
    """Runs a :class:`BacktestPlan` on a runtime over a fresh store and a pinned clock."""

    def __init__(self, runtime: Runtime, plan: BacktestPlan, *, events: Event | None = None):
        if not isinstance(runtime.clock, ManualClock):
            raise TypeError("a backtest needs a ManualClock to move")
        if runtime.clock.now() != plan.start:
            raise ValueError("the backtest's clock must start at the plan's start")
        self.runtime = runtime
        self.clock: ManualClock = runtime.clock
        self.plan = plan
        self.events = events or (lambda kind, message: None)
        self.jobs = PipelineJobs(runtime, events=self.events, model_types=(plan.model_type,))
        self.result = BacktestRun(plan=plan)

    # ------------------------------------------------------------------ 1. files in
    def load(self, progress: Progress | None = None) -> BacktestRun:
        """Check and store the files' history the backtest needs; refuse a range they don't
        cover (``InvalidInputError``, nothing replayed)."""
        started = time.perf_counter()
        plan, runtime = self.plan, self.runtime
        self._check_scorer()
        symbol = runtime.settings.symbol
        parsed = read_importable_prices(plan.prices, symbol=symbol)
        span = parsed.span()
        if span is None:
            raise InvalidInputError(f"{plan.prices} holds no sound price bars")
        first, last = span
        if plan.start < first or plan.start > last:
            raise InvalidInputError(
                f"--start {plan.start:%Y-%m-%d %H:%M} is outside the prices in {plan.prices.name} "
                f"({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)"
            )
        if plan.end - HOUR > last:
            raise InvalidInputError(
                f"--end reaches {plan.end - HOUR:%Y-%m-%d %H:%M} but the prices in "
                f"{plan.prices.name} end at {last:%Y-%m-%d %H:%M} UTC; pass an earlier --end"
            )
        if plan.warm_start < first:
            available = (plan.start - first).days
            earliest = first + timedelta(days=plan.warm_days + 1)
            raise InvalidInputError(
                f"too little warm-up: --warm-days {plan.warm_days} needs prices from "
                f"{plan.warm_start:%Y-%m-%d} but {plan.prices.name} begins "
                f"{first:%Y-%m-%d %H:%M} ({available} days before --start); pass --start "
                f"{earliest:%Y-%m-%d} or later"
                + (f", or --warm-days {available}" if available >= MIN_WARM_DAYS else "")
            )
        # The warm-up's first rows get whole feature windows: bars from a lookback before it.
        needed = parsed.between(plan.warm_start - timedelta(hours=MAX_LOOKBACK_HOURS), plan.end)
        summary = store_parsed_prices(
            runtime.store, needed, clock=self.clock, symbol=symbol, progress=progress
        )
        self.result.bars_stored = summary.inserted
        if plan.news is not None:
            news = import_news_csv(runtime.store, plan.news, clock=self.clock)
            self.result.articles_stored = news.inserted
            self.result.with_news = news.inserted > 0
            if not self.result.with_news:
                self.result.notes.append(f"{plan.news.name} held no article that could be stored")
        if not self.result.with_news:
            self.result.notes.append(
                "no news: every sentiment feature takes its 'no news' value, so the models "
                "see prices and the calendar only"
            )
        self.result.seconds["load"] = time.perf_counter() - started
        return self.result

    def _check_scorer(self) -> None:
        """A feature set other than VADER's needs the news and its scorer's model."""
        plan = self.plan
        scorer = SCORER_FOR_SET[plan.feature_set]
        if scorer == "vader":
            return
        if plan.news is None:
            raise InvalidInputError(
                f"--feature-set {plan.feature_set} is built from {scorer} scores of the news: "
                "pass --news FILE (or use --feature-set vader)"
            )
        try:
            make_scorer(scorer, self.runtime.settings)
        except BtcmlopsError as exc:
            raise InvalidInputError(f"--feature-set {plan.feature_set}: {exc}") from exc

    # ------------------------------------------------------------------ 2. warm-up
    def warm_up(self) -> BacktestRun:
        """Score the news, build the feature rows up to ``start`` and train the first champion."""
        started = time.perf_counter()
        plan, runtime = self.plan, self.runtime
        if self.result.with_news:
            self.jobs.runner.run("sentiment", self.jobs.score_sentiment)
        self.jobs.runner.run("features", self.jobs.build_features)
        outcome = runtime.retraining.retrain_model(
            plan.feature_set,
            plan.model_type,
            trigger="initial",
            reasons=[f"first champion, trained on the {plan.warm_days} warm-up days"],
            actor="backtest",
        )
        champion = runtime.registry.champion(plan.feature_set, plan.model_type)
        if champion is None:
            error = outcome.get("error") or outcome.get("deployment", {}).get("reason")
            raise InvalidInputError(
                f"too little warm-up: no first champion could be trained on the "
                f"{plan.warm_days} days before --start ({error}); pass more --warm-days or a "
                "later --start"
            )
        self.result.first_champion = champion.version
        self.result.first_champion_words = outcome.get("deployment", {}).get("reason", "")
        self.events("deployed", f"first champion {champion.version}")
        self.result.seconds["warm_up"] = time.perf_counter() - started
        return self.result

    # ------------------------------------------------------------------ 3. replay
    def replay(
        self, progress: Progress | None = None, after_hour: Callable[[datetime], None] | None = None
    ) -> BacktestRun:
        """Move the clock from ``start`` to ``end`` running the due jobs at every hour;
        ``after_hour(hour)`` is called once every job of the hour has run.

        Ctrl-C (SIGINT, when called from the main thread) lets the hour's jobs finish and
        stops before the next hour; a second Ctrl-C, or a ``KeyboardInterrupt`` raised any
        other way, stops at once. Either way the stop is recorded in the result and the hours
        before it are evaluated as usual.
        """
        started = time.perf_counter()
        plan = self.plan
        steps = plan.hours + 1  # the last step, at ``end``, resolves the last target
        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            # Only a flag: the handler runs between any two bytecodes of the main thread,
            # so it must not print or touch the store.
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, request_stop) if in_main_thread else None
        try:
            for step in range(steps):
                hour = plan.start + step * HOUR
                if hour > self.clock.now():
                    self.clock.set(hour)
                run_due_jobs(self.jobs, hour, skip=("ingest",), daily=hour < plan.end)
                self.result.reached = hour
                if after_hour is not None:
                    after_hour(hour)
                if progress is not None:
                    progress(step + 1, steps)
                if stop.is_set() and step + 1 < steps:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.result.interrupted = True
            self.events("stopped", f"interrupted at {self.clock.now():%Y-%m-%d %H:%M} UTC")
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
            self.runtime.logger.flush(timeout=30)
            self.result.seconds["replay"] = time.perf_counter() - started
        return self.result
