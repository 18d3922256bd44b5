"""``btcmlops backtest``: real jobs over a replayed history, every policy on the same hours,
no look-ahead, a clean stop on Ctrl-C, and one clear line for bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, func, select, text

from btcmlops.cli.app import main
from btcmlops.cli.output import json_leaf
from btcmlops.clock import HOUR, ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import JobRun, PredictionLog
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import FEATURE_VERSION, model_feature_names
from btcmlops.ingest.simulator import MarketSimulator
from btcmlops.mlops.runtime import Runtime
from btcmlops.replay.backtest import Backtest, BacktestPlan
from btcmlops.replay.policies import WeeklyTrainer, evaluate
from btcmlops.replay.report import document
from btcmlops.replay.statistics import paired_test

GEMINI_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "peer" / "gemini_BTCUSD_1hr.csv"
)
SIM_END = parse_utc("2024-03-01T00:00:00Z")
SIM_DAYS = 38
WARM = 28
MODEL = "logistic_regression"  # the fastest learned type keeps these replays short


def write_market(folder: Path, *, seed: int = 7, bump_from=None) -> tuple[Path, Path]:
    """A simulated market as the two CSV files a user would bring. ``bump_from`` raises
    every close from that hour on by 3 % (a different future, the same past)."""
    simulator = MarketSimulator.ending_at(SIM_END, SIM_DAYS, seed)
    start = simulator.config.start
    prices, news = folder / "prices.csv", folder / "news.csv"
    with prices.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for bar in simulator.fetch_bars(start, SIM_END):
            factor = 1.03 if bump_from is not None and bar.ts >= bump_from else 1.0
            writer.writerow(
                [
                    bar.ts.isoformat(),
                    bar.open * factor,
                    bar.high * factor,
                    bar.low * factor,
                    bar.close * factor,
                    bar.volume,
                ]
            )
    with news.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "title", "text"])
        for article in simulator.fetch_articles(start, SIM_END):
            writer.writerow([article.published_at.isoformat(), article.title, article.body])
    return prices, news


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> tuple[Path, Path]:
    return write_market(tmp_path_factory.mktemp("market"))


def plan_for(prices: Path, news: Path | None, *, days: float, warm_days: int = WARM, **extra):
    start = SIM_END - timedelta(days=SIM_DAYS) + timedelta(days=warm_days + 1)
    return BacktestPlan(
        prices=prices,
        news=news,
        start=start,
        end=start + timedelta(days=days),
        warm_days=warm_days,
        model_type=MODEL,
        **extra,
    )


def run_backtest(
    url: str, home: Path, plan: BacktestPlan, progress=None, features=None, weekly_beside=False
):
    settings = Settings(home=home, database_url=url, _env_file=None)
    context = AppContext(settings=settings, clock=ManualClock(plan.start))
    runtime = Runtime(context).start()
    try:
        engine = Backtest(runtime, plan)
        engine.load()
        engine.warm_up()
        trainer = WeeklyTrainer(runtime, plan) if weekly_beside else None
        try:
            run = engine.replay(progress, after_hour=trainer.passed if trainer else None)
            evaluation = evaluate(runtime, run, trainer)
        finally:
            if trainer is not None:
                trainer.close()
        if weekly_beside:  # fitted beside the replay or afterwards: the same models
            afterwards = evaluate(runtime, run)
            for name in ("weekly", "majority", "last_hour"):
                pd.testing.assert_series_equal(
                    evaluation.policies[name].p_up, afterwards.policies[name].p_up
                )
        report = document(evaluation, 1.0)
        with runtime.store.session() as session:
            logged = session.execute(
                select(
                    PredictionLog.feature_ts,
                    PredictionLog.probability_up,
                    PredictionLog.prediction_correct,
                )
                .where(PredictionLog.source == "scheduled")
                .order_by(PredictionLog.feature_ts)
            ).all()
            jobs = dict(
                session.execute(select(JobRun.job, func.count()).group_by(JobRun.job)).all()
            )
        if features is not None:
            features.append(
                load_feature_frame(
                    runtime.store, plan.feature_set, FEATURE_VERSION,
                    model_feature_names(plan.feature_set),
                )
            )  # fmt: skip
        return run, evaluation, report, logged, jobs
    finally:
        runtime.close()
        context.close()


@pytest.mark.slow  # replays hours through the real jobs
def test_a_backtest_runs_the_service_jobs_and_scores_every_policy_on_the_same_hours(
    market, empty_database_url, tmp_path
):
    prices, news = market
    plan = plan_for(prices, news, days=8)
    run, evaluation, report, logged, jobs = run_backtest(
        empty_database_url, tmp_path, plan, weekly_beside=True
    )

    assert not run.interrupted and run.reached == plan.end
    assert report["hours"] == plan.hours == 192
    assert report["models_see"] == "prices, the calendar and news sentiment"
    # The service's own jobs ran at every replayed hour, the daily checks at every midnight.
    steps = plan.hours + 1
    assert jobs["features"] == steps + 1  # and once in the warm-up
    assert jobs["predictions"] == jobs["outcomes"] == jobs["sequential_drift"] == steps
    assert "ingest" not in jobs  # the files were stored before the replay
    assert jobs["drift_check"] == jobs["retraining_check"] == 8

    # Every policy predicted every hour, and all are scored on exactly the same hours.
    for name in ("adaptive", "static", "weekly"):
        row = report["policies"][name]
        assert row["predictions"] == 192 and row["hours_without_prediction"] == 0
        assert 0.0 <= row["accuracy_ci"][0] <= row["accuracy"] <= row["accuracy_ci"][1] <= 1
    for name in ("majority", "last_hour"):
        assert report["baselines"][name]["predictions"] == 192
        assert report["baselines"][name]["adaptive_against_it"]["hours"] == 192
    assert report["policies"]["weekly"]["retrainings"] == 2  # at the start and a week later
    assert report["policies"]["static"]["retrainings"] == 0

    # The adaptive policy's score is the service's own: its logged predictions, resolved by
    # the outcomes job, give the same hits as the backtest's realised directions.
    in_range = [row for row in logged if plan.start - HOUR <= row.feature_ts < plan.end - HOUR]
    assert len(in_range) == 192
    service_hits = sum(bool(row.prediction_correct) for row in in_range)
    assert service_hits == evaluation.scores["adaptive"].correct
    # The static policy is the first champion's artifact on the same stored rows: where the
    # adaptive policy still served that champion, both give the same probabilities.
    adaptive = evaluation.policies["adaptive"].p_up
    static = evaluation.policies["static"].p_up
    if report["policies"]["adaptive"]["deployments"] == 0 and not report["champion_changes"]:
        np.testing.assert_allclose(adaptive.to_numpy(), static.to_numpy(), rtol=1e-12)
    json.dumps(report, default=json_leaf, allow_nan=False)  # the --json document


@pytest.mark.slow  # replays hours through the real jobs
def test_later_prices_never_change_earlier_predictions(tmp_path):
    """The store holds the whole file from the start; every read is bounded by the clock."""
    plan_days = 2
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    original = write_market(tmp_path / "a")[0]
    change = plan_for(original, None, days=plan_days).start + timedelta(hours=30)
    altered = write_market(tmp_path / "b", bump_from=change)[0]
    results, frames = [], []
    for name, prices in (("a", original), ("b", altered)):
        plan = plan_for(prices, None, days=plan_days)
        url = f"sqlite:///{tmp_path / name / 'store.db'}"
        results.append(run_backtest(url, tmp_path / name / "home", plan, features=frames)[3])
    # Every feature row and prediction before the change is identical; the rows built from
    # the changed bars differ (the jump shows in the last hour's return).
    earlier = [frame[frame.index < change] for frame in frames]
    later = [frame[frame.index >= change] for frame in frames]
    pd.testing.assert_frame_equal(earlier[0], earlier[1])
    assert len(later[0]) == len(later[1]) > 0 and not later[0].equals(later[1])
    predictions = [
        [(row.feature_ts, row.probability_up) for row in logged if row.feature_ts < change]
        for logged in results
    ]
    assert len(predictions[0]) == 31 and predictions[0] == predictions[1]


@pytest.mark.slow  # replays hours through the real jobs
def test_an_interrupted_backtest_evaluates_the_hours_it_replayed(
    market, empty_database_url, tmp_path
):
    prices, _ = market
    plan = plan_for(prices, None, days=2)

    def stop_at_hour_20(done: int, total: int) -> None:
        if done == 20:
            raise KeyboardInterrupt

    run, _, report, _, _ = run_backtest(
        empty_database_url, tmp_path / "home", plan, stop_at_hour_20
    )
    assert run.interrupted and run.reached == plan.start + 19 * HOUR
    assert report["interrupted"] is True
    # Targets before the hour reached were resolved: 19 of them, all scored.
    assert report["hours"] == 19 < report["hours_planned"]
    assert report["policies"]["adaptive"]["predictions"] == 19
    assert "no news" in report["notes"][0] and "calendar only" in report["models_see"]


# ----------------------------------------------------------------------------- the command


def cli(*args: str, home: Path, timeout: float = 600, **popen):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
    environment["BTCMLOPS_HOME"] = str(home)
    command = [sys.executable, "-m", "btcmlops", "backtest", *args]
    if popen:
        return subprocess.Popen(command, env=environment, text=True, **popen)
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)


def cli_in_process(*args: str, home: Path, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """``btcmlops backtest`` through the console script's entry point in this process: the
    exit code and stderr :func:`cli` gives, without a new interpreter importing everything."""
    for name in [name for name in os.environ if name.startswith("BTCMLOPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BTCMLOPS_HOME", str(home))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["backtest", *args])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, exited.value.code, captured.out, captured.err)


def dates(plan: BacktestPlan) -> list[str]:
    last = plan.end - timedelta(days=1)
    return ["--start", f"{plan.start:%Y-%m-%d}", "--end", f"{last:%Y-%m-%d}"]


@pytest.mark.slow  # replays hours through the real jobs
def test_the_command_prints_json_and_writes_a_self_contained_html_report(market, tmp_path):
    prices, news = market
    plan = plan_for(prices, news, days=1)
    page = tmp_path / "report.html"
    result = cli(
        "--prices", str(prices), "--news", str(news), *dates(plan), "--warm-days", str(WARM),
        "--model-type", MODEL, "--json", "--html", str(page), home=tmp_path / "home",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["hours"] == 24 and report["interrupted"] is False
    assert set(report["policies"]) == {"adaptive", "static", "weekly"}
    assert set(report["baselines"]) == {"majority", "last_hour"}
    for row in report["policies"].values():
        assert {"accuracy", "accuracy_ci", "predictions", "retrainings", "deployments"} <= set(row)
    assert "drift_alarms" in report and report["seconds"] > 0
    assert "replaying hour by hour" in result.stderr  # the progress bar
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in html
    assert "<script src=" not in html  # plotly.js inlined: opens offline
    assert not (tmp_path / "home" / "btcmlops.db").exists()  # the replay's home was its own


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--start", "2024-01-01", "--end", "2024-01-03"], "outside the prices"),
        (["--start", "2024-02-26", "--end", "2024-03-05"], "pass an earlier --end"),
        (["--start", "2024-02-10", "--end", "2024-02-12"], "too little warm-up"),
        (["--start", "2024-02-20", "--end", "2024-02-19"], "--end 2024-02-19 is before"),
        (["--start", "20/02/2024", "--end", "2024-02-21"], "is not a date"),
        (["--start", "2024-02-20", "--end", "2024-02-21", "--warm-days", "3"], "too little"),
        (["--start", "2024-02-20", "--end", "2024-02-21", "--feature-set", "x"], "feature set"),
        (["--start", "2024-02-25", "--end", "2024-02-26", "--feature-set", "finbert"], "--news"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(market, tmp_path, args, words, monkeypatch, capsys):
    prices, _ = market
    result = cli_in_process(
        "--prices", str(prices), *args, home=tmp_path / "home", monkeypatch=monkeypatch,
        capsys=capsys,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_files_are_refused(market, tmp_path, monkeypatch, capsys):
    prices, news = market
    for args, words in (
        (["--prices", str(tmp_path / "missing.csv")], "no such file"),
        (["--prices", str(news)], "not a price CSV"),
        (["--prices", str(prices), "--news", str(prices)], "not a news CSV"),
    ):
        dates = ["--start", "2024-02-21", "--end", "2024-02-22", "--warm-days", str(WARM)]
        result = cli_in_process(
            *args, *dates, home=tmp_path / "home", monkeypatch=monkeypatch, capsys=capsys
        )
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow  # replays hours through the real jobs
def test_ctrl_c_stops_the_replay_and_prints_what_was_done(market, tmp_path):
    prices, _ = market
    plan = plan_for(prices, None, days=9)  # the longest the market allows: time to interrupt
    home = tmp_path / "kept"
    process = cli(
        "--prices", str(prices), *dates(plan), "--warm-days", str(WARM), "--model-type", MODEL,
        "--json", "--home", str(home), home=tmp_path / "home",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    engine = create_engine(f"sqlite:///{home / 'btcmlops.db'}")
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            try:
                with engine.connect() as connection:
                    made = connection.execute(
                        text("SELECT count(*) FROM job_runs WHERE job = 'predictions'")
                    ).scalar()
            except Exception:  # the store is not created or migrated yet
                continue
            if made and made >= 3:
                process.send_signal(signal.SIGINT)
                break
        stdout, stderr = process.communicate(timeout=300)
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    report = json.loads(stdout)
    assert report["interrupted"] is True
    assert 0 < report["hours"] < plan.hours
    assert report["policies"]["adaptive"]["predictions"] == report["hours"]
    assert "Traceback" not in stderr


# ----------------------------------------------------------------------------- real history


@pytest.mark.slow  # replays hours through the real jobs
@pytest.mark.skipif(not GEMINI_CSV.exists(), reason="../shared/data/peer is not on this machine")
def test_a_slice_of_real_history(empty_database_url, tmp_path):
    plan = BacktestPlan(
        prices=GEMINI_CSV,
        start=parse_utc("2020-03-10T00:00:00Z"),
        end=parse_utc("2020-03-12T00:00:00Z"),
        warm_days=WARM,
        model_type=MODEL,
    )
    _, evaluation, report, logged, _ = run_backtest(empty_database_url, tmp_path / "home", plan)
    assert report["hours"] == 48
    for row in (*report["policies"].values(), *report["baselines"].values()):
        assert row["predictions"] == 48
    in_range = [row for row in logged if plan.start - HOUR <= row.feature_ts < plan.end - HOUR]
    assert sum(bool(row.prediction_correct) for row in in_range) == (
        evaluation.scores["adaptive"].correct
    )


# ----------------------------------------------------------------------------- the paired test


def test_the_paired_test_keeps_its_level_when_hours_are_dependent():
    """Two equally good policies whose disagreements come in episodes of days, and which of
    them is right changes every three days: the test calls them different about 5 % of the
    time (a test that treats hours as independent does so several times as often)."""
    rng = np.random.default_rng(11)
    rejections, naive_rejections, runs = 0, 0, 300
    for _ in range(runs):
        hours = 8784
        base = rng.random(hours) < 0.52
        episodes = (np.cumsum(rng.random(hours) < 1 / 48) % 2) == 1
        disagree = (rng.random(hours) < 0.4) & episodes
        who = np.repeat(rng.random(hours // 72 + 1) < 0.5, 72)[:hours]
        a, b = base.copy(), base.copy()
        a[disagree], b[disagree] = who[disagree], ~who[disagree]
        rejections += paired_test(a, b).p_value < 0.05
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        z = (only_a - only_b) / np.sqrt(only_a + only_b)  # McNemar, hours independent
        naive_rejections += abs(z) > 1.96
    assert rejections / runs <= 0.09
    assert naive_rejections / runs >= 0.2


def test_the_paired_test_finds_a_real_difference():
    rng = np.random.default_rng(12)
    found = sum(
        paired_test(rng.random(8784) < 0.53, rng.random(8784) < 0.50).p_value < 0.05
        for _ in range(100)
    )
    assert found >= 70
    short = paired_test(np.ones(200, bool), np.zeros(200, bool))
    assert short.p_value is None and short.as_dict()["test"].startswith("none")


def test_backtest_plans_refuse_impossible_ranges(tmp_path):
    from btcmlops.errors import InvalidInputError

    start = parse_utc("2024-02-01T00:00:00Z")
    with pytest.raises(InvalidInputError, match="must end after it starts"):
        BacktestPlan(prices=tmp_path, start=start, end=start)
    with pytest.raises(InvalidInputError, match="whole UTC hours"):
        BacktestPlan(prices=tmp_path, start=start + timedelta(minutes=5), end=start + HOUR * 3)
