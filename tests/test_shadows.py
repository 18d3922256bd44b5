"""Shadow models, the declared baseline fallback and the daily shadow review, on the store:
shadows predict every hour beside the champion, are scored, stay out of what clients see,
and a champion without skill is replaced openly by a naive rule. SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import PredictionLog, RetrainingRun
from btcmlops.db.store import Store
from btcmlops.ingest.world import SimulatedWorld
from btcmlops.mlops.pipeline_jobs import PipelineJobs
from btcmlops.mlops.runtime import Runtime
from btcmlops.modeling.training import load_training_data, train_on
from btcmlops.testing import build_trained_home

from support import clone_database, fresh_database, reopen_home

END = parse_utc("2024-03-01T00:00:00Z")
PAIR = ("vader", "logistic_regression")


@pytest.fixture(scope="module")
def template(backend, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp(f"shadows-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        built = build_trained_home(
            store, settings, END, days=40, signal_strength=0.6, pairs=(PAIR,),
            with_importances=False,  # no test here reads them
        )  # fmt: skip
        SimulatedWorld(built.simulator.config).save(settings.home)
        store.close()
        yield built


@pytest.fixture
def runtime(template, backend, tmp_path, request):
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    url = clone_database(backend, template.settings.effective_database_url, tmp_path, admin)
    shutil.copytree(template.settings.home, tmp_path / "home")
    home = reopen_home(url, tmp_path / "home", template, END)
    context = AppContext(settings=home.settings, clock=home.clock, _store=home.store)
    running = Runtime(context).start()
    running.champion = home.champions[PAIR]
    yield running
    running.close()
    home.store.close()


def challenger(runtime, seed=1):
    data = load_training_data(
        runtime.store, PAIR[0], clock=runtime.clock, settings=runtime.settings
    )
    trained = train_on(
        data,
        feature_set=PAIR[0],
        model_type=PAIR[1],
        settings=runtime.settings,
        seed=seed,
        with_importances=False,
    )
    return runtime.registry.register(trained, created_by="test")


def logged(runtime, *conditions):
    runtime.logger.flush()
    with runtime.store.session() as session:
        return session.scalar(select(func.count()).select_from(PredictionLog).where(*conditions))


@pytest.mark.slow
def test_shadows_predict_every_hour_are_scored_and_never_reach_clients(runtime):
    shadow = challenger(runtime)
    runtime.retraining.shadows.admit(shadow.version)
    assert runtime.registry.get(shadow.version).status == "shadow"
    jobs = PipelineJobs(runtime, model_types=(PAIR[1],))
    for _ in range(4):
        runtime.clock.advance(hours=1)
        jobs.hourly()
    shadow_rows = PredictionLog.model_version == shadow.version
    assert logged(runtime, shadow_rows, PredictionLog.source == "shadow") == 4
    assert logged(runtime, PredictionLog.source == "scheduled") == 4
    # scored by the outcome job like any prediction
    assert logged(runtime, shadow_rows, PredictionLog.outcome_status == "resolved") >= 2
    # left out of everything a client reads
    recent = runtime.predictions.get_recent_predictions(limit=100)
    assert recent and all(row["model_version"] != shadow.version for row in recent)
    accuracy = runtime.predictions.get_model_accuracy(*PAIR, days=1)
    assert accuracy["total_predictions"] + accuracy["pending_predictions"] == 4
    assert runtime.predictions.get_prediction_statistics()["total_predictions"] == 4
    # the report has its live hours paired with the champion's
    report = runtime.retraining.shadow_report(*PAIR)
    (evidence,) = report["shadows"]
    assert evidence["version"] == shadow.version and evidence["role"] == "challenger"
    assert evidence["live_hours"] >= 2
    # the trial looks at midnights: these hours count at the next one
    assert evidence["decision"]["hours"] == 0 and evidence["decision"]["test"]["look"] == 0
    assert [point["at"] for point in evidence["path"]] == [None]


@pytest.mark.slow
def test_the_shadow_set_keeps_at_most_shadow_max_models(runtime):
    versions = [challenger(runtime, seed=seed).version for seed in (1, 2, 3)]
    for version in versions:
        runtime.retraining.shadows.admit(version)
    shadows = runtime.registry.shadows(*PAIR)
    assert len(shadows) == runtime.settings.shadow_max == 2
    dropped = set(versions) - {model.version for model in shadows}
    assert len(dropped) == 1
    assert runtime.registry.get(dropped.pop()).status == "candidate"


def add_pair_outcomes(runtime, version, predictions, actual, start, first_id, source):
    with runtime.store.session() as session:
        for i, (predicted, up) in enumerate(zip(predictions, actual, strict=True)):
            at = start + timedelta(hours=i)
            session.add(
                PredictionLog(
                    id=first_id + i,
                    feature_set=PAIR[0],
                    model_type=PAIR[1],
                    model_version=version,
                    prediction=int(predicted),
                    probability_down=0.35 if predicted else 0.65,
                    probability_up=0.65 if predicted else 0.35,
                    confidence=0.65,
                    feature_ts=at,
                    target_ts=at + timedelta(hours=1),
                    response_time_ms=1.0,
                    cached_features=True,
                    predicted_at=at,
                    source=source,
                    outcome_status="resolved",
                    actual_direction=int(up),
                    prediction_correct=bool(predicted == up),
                )
            )


def champion_live_record(runtime, accuracy, seed, days=14):
    """``days`` of the champion's scheduled predictions after END, right on ``accuracy``."""
    hours = 24 * days
    start = END + timedelta(hours=1)
    runtime.clock.set(start + timedelta(hours=hours + 2))
    rng = np.random.default_rng(seed)
    actual = rng.integers(0, 2, hours)
    right = rng.random(hours) < accuracy
    predictions = np.where(right, actual, 1 - actual)
    add_pair_outcomes(runtime, runtime.champion.version, predictions, actual, start, 1, "scheduled")


def test_a_champion_worse_than_a_naive_baseline_falls_back_to_it_openly(runtime):
    champion = runtime.champion
    # right on only 35 % of the hours: the majority class (and chance) beat it
    champion_live_record(runtime, 0.35, seed=5)
    verdict = runtime.retraining.check_fallback(*PAIR)
    assert verdict is not None and verdict.fell_back_to in ("majority", "last_hour")
    assert verdict.tests[verdict.fell_back_to].rejects
    now_champion = runtime.registry.champion(*PAIR)
    assert now_champion.version == verdict.fallback_version
    assert now_champion.kind == "baseline" and now_champion.baseline_rule == verdict.fell_back_to
    assert runtime.registry.get(champion.version).status == "shadow"  # it keeps predicting
    assert runtime.registry.champion_history(*PAIR)[-1].action == "fallback"
    # served like any model, and said in words where people look
    answer = runtime.predictor.predict(*PAIR)
    assert answer.model.version == now_champion.version
    described = [model.describe() for model in runtime.predictor.loaded_models()]
    assert any("naive baseline" in (model["fallback"] or "") for model in described)
    with runtime.store.session() as session:
        run = session.scalars(select(RetrainingRun)).one()
    assert run.decision == "fallback" and run.evidence["tests"][verdict.fell_back_to]["rejects"]
    for field in ("accuracy", "actual_up_rate", "predicted_up_rate"):
        assert field in run.challenger_metrics and field in run.champion_metrics
    # a declared fallback is not judged for fallback again
    assert runtime.retraining.check_fallback(*PAIR) is None


def test_a_champion_as_good_as_the_baselines_is_kept(runtime):
    champion = runtime.champion
    champion_live_record(runtime, 0.55, seed=6)
    verdict = runtime.retraining.check_fallback(*PAIR)
    assert verdict is not None and verdict.fell_back_to is None
    assert runtime.registry.champion(*PAIR).version == champion.version


def test_the_daily_review_promotes_a_shadow_with_evidence_and_not_a_degenerate_one(runtime):
    champion = runtime.champion
    strong, constant = challenger(runtime, seed=1), challenger(runtime, seed=2)
    for version in (strong.version, constant.version):
        runtime.retraining.shadows.admit(version)
    hours = 24 * 20
    start = END + timedelta(hours=1)
    rng = np.random.default_rng(9)
    actual = rng.integers(0, 2, hours)
    champion_right = rng.random(hours) < 0.50
    strong_right = rng.random(hours) < 0.68
    add_pair_outcomes(
        runtime,
        champion.version,
        np.where(champion_right, actual, 1 - actual),
        actual,
        start,
        1,
        "scheduled",
    )
    add_pair_outcomes(
        runtime,
        strong.version,
        np.where(strong_right, actual, 1 - actual),
        actual,
        start,
        10_000,
        "shadow",
    )
    add_pair_outcomes(runtime, constant.version, np.ones(hours), actual, start, 20_000, "shadow")
    runtime.clock.set(start + timedelta(hours=hours + 2))
    report = {item["version"]: item for item in runtime.retraining.shadow_report(*PAIR)["shadows"]}
    assert "not_degenerate" in report[constant.version]["decision"]["failed"]
    assert report[strong.version]["decision"]["promote"] is True
    assert len(report[strong.version]["path"]) >= 20  # one point per look (a day)
    assert report[strong.version]["margin"] >= 0 > report[constant.version]["margin"] - 1000
    promoted = runtime.retraining.review_shadows(*PAIR)
    assert promoted is not None and promoted["promoted"] == strong.version
    assert runtime.registry.champion(*PAIR).version == strong.version
    assert runtime.registry.get(champion.version).status == "shadow"  # for the rollback check
    history = runtime.retraining.history(*PAIR)
    assert history[0]["trigger"] == "shadow" and history[0]["decision"] == "deployed"
    test = history[0]["evidence"]["test"]
    assert test["rejects"] and test["wins"] >= test["threshold"] and test["look"] >= 1
    assert history[0]["challenger_metrics"]["accuracy"] > history[0]["champion_metrics"]["accuracy"]


def test_a_promotion_by_hand_keeps_the_displaced_champion_in_shadow_for_rollback(runtime):
    champion = runtime.champion
    newer = challenger(runtime, seed=4)
    runtime.retraining.promote_by_hand(newer.version, actor="test", reason="by hand")
    assert runtime.registry.get(champion.version).status == "shadow"
    assert runtime.predictor.predict(*PAIR).model.version == newer.version
    hours = 24 * 5
    start = END + timedelta(hours=1)
    actual = np.random.default_rng(2).integers(0, 2, hours)
    add_pair_outcomes(runtime, champion.version, actual, actual, start, 1, "shadow")
    add_pair_outcomes(runtime, newer.version, 1 - actual, actual, start, 10_000, "scheduled")
    runtime.clock.set(start + timedelta(hours=hours + 2))
    verdict = runtime.retraining.check_auto_rollback(*PAIR)
    assert verdict["status"] == "judged" and verdict["rolled_back"] is True
    assert runtime.registry.champion(*PAIR).version == champion.version
