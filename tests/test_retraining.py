"""Retraining: the decision and its triggers, champion vs challenger on the same hours,
one job per pair, automatic rollback. On SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta

import numpy as np
import pytest

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.db.models import PredictionLog, RetrainCheck, RetrainingRun
from btcmlops.db.store import Store
from btcmlops.mlops.leases import Leases
from btcmlops.mlops.retraining import (
    AutomatedRetraining,
    RetrainingInProgressError,
)
from btcmlops.modeling.training import TrainingData, train_on
from btcmlops.testing import build_trained_home

from support import clone_database, fresh_database, reopen_home

END = parse_utc("2024-03-01T00:00:00Z")
PAIR = ("vader", "logistic_regression")


@pytest.fixture(scope="module")
def template(backend, tmp_path_factory, request):
    """One trained home per backend; every test gets its own copy of it."""
    folder = tmp_path_factory.mktemp(f"retraining-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        # A market with a strong signal, so a good model and a bad one differ clearly.
        built = build_trained_home(
            store, settings, END, days=60, signal_strength=0.6, pairs=(PAIR,),
            with_importances=False,  # no test here reads them
        )  # fmt: skip
        store.close()
        yield built


@pytest.fixture
def home(template, backend, tmp_path, request):
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    url = clone_database(backend, template.settings.effective_database_url, tmp_path, admin)
    shutil.copytree(template.settings.home, tmp_path / "home")
    cloned = reopen_home(url, tmp_path / "home", template, END)
    yield cloned
    cloned.store.close()


def retraining(home, **kwargs):
    return AutomatedRetraining(home.store, home.clock, home.settings, home.registry, **kwargs)


def shuffled_label_trainer(data: TrainingData, *, shuffle_seed: int = 11, **kwargs):
    rng = np.random.default_rng(shuffle_seed)
    targets = data.targets.copy()
    known = targets.notna().to_numpy()
    targets[known] = rng.permutation(targets[known].to_numpy())
    return train_on(
        TrainingData(data.features, targets, data.last_hour_direction, data.closed_before),
        **kwargs,
    )


@pytest.mark.slow
def test_a_challenger_trained_on_shuffled_labels_is_never_deployed(home):
    champion = home.champions[PAIR]
    for shuffle_seed in range(5):
        owner = retraining(
            home,
            train_challenger=lambda data, seed=shuffle_seed, **kw: shuffled_label_trainer(
                data, shuffle_seed=seed, **kw
            ),
        )
        result = owner.retrain_model(*PAIR)
        comparison = result["comparison"]
        assert result["success"] is True
        assert result["deployment"]["deployed"] is False, result["deployment"]["reason"]
        # Worse where it matters: less accurate, or clearly worse probabilities.
        assert (
            comparison["new_accuracy"] <= comparison["current_accuracy"]
            or comparison["new_log_loss"] > comparison["current_log_loss"]
        )
        home.clock.advance(hours=25)  # past the cooldown for the next attempt
    assert home.registry.champion(*PAIR).version == champion.version
    with home.store.session() as session:
        runs = session.query(RetrainingRun).all()
    assert len(runs) == 5
    assert all(run.status == "succeeded" and run.decision == "kept" for run in runs)
    assert all("McNemar" in run.significance["test"] for run in runs)


def test_an_identical_challenger_ties_and_the_champion_stays(home):
    champion = home.champions[PAIR]
    # The same data (a window covering all of it), the same seed: the same model.
    home.settings = home.settings.model_copy(update={"retrain_window_days": 365.0})
    result = retraining(home).retrain_model(*PAIR)
    assert result["comparison"]["accuracy_improvement"] == 0.0
    assert result["comparison"]["significance"]["p_value"] == 1.0
    assert result["deployment"]["deployed"] is False
    assert "kept" in result["deployment"]["reason"]
    assert home.registry.champion(*PAIR).version == champion.version


@pytest.mark.slow
def test_a_better_challenger_is_deployed_and_recorded(home):
    # The champion is replaced by a deliberately bad one first; retraining must fix it.
    bad = shuffled_label_trainer(
        _data(home), feature_set=PAIR[0], model_type=PAIR[1], settings=home.settings
    )
    info = home.registry.register(bad, created_by="test", reason="bad champion")
    home.registry.promote(info.version, actor="test", reason="make a bad champion")
    changed = []
    result = retraining(home, on_champion_change=lambda *pair: changed.append(pair)).retrain_model(
        *PAIR, trigger="performance", reasons=["test"]
    )
    assert result["deployment"]["deployed"] is True, result["deployment"]["reason"]
    assert home.registry.champion(*PAIR).version == result["new_model"]["model_version"]
    assert changed == [PAIR]
    history = home.registry.champion_history(*PAIR)
    assert history[-1].action == "deploy" and history[-1].previous_version == info.version
    with home.store.session() as session:
        run = session.query(RetrainingRun).one()
    assert (run.decision, run.trigger, run.reasons) == ("deployed", "performance", ["test"])


def _data(home):
    from btcmlops.modeling.training import load_training_data

    return load_training_data(home.store, PAIR[0], clock=home.clock, settings=home.settings)


def test_two_simultaneous_executions_exactly_one_trains(home):
    first = retraining(home, leases=Leases(home.store, "worker-1"))
    second = retraining(home, leases=Leases(home.store, "worker-2"))
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def attempt(name, owner):
        barrier.wait()
        try:
            outcomes[name] = owner.begin(*PAIR)
        except RetrainingInProgressError as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=attempt, args=(name, owner))
        for name, owner in (("a", first), ("b", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = [value for value in outcomes.values() if not isinstance(value, Exception)]
    refused = [value for value in outcomes.values() if isinstance(value, Exception)]
    assert len(jobs) == 1 and len(refused) == 1
    assert refused[0].job_id == jobs[0].job_id
    assert refused[0].http_status == 409
    result = jobs[0].run()
    assert result["success"] is True
    # Once it has finished, the pair is free again.
    assert second.begin(*PAIR).job_id != jobs[0].job_id


def test_two_jobs_of_one_process_cannot_share_the_pair(home):
    owner = retraining(home)
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def attempt():
        barrier.wait()
        try:
            outcomes.append(owner.begin(*PAIR))
        except RetrainingInProgressError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = [value for value in outcomes if not isinstance(value, Exception)]
    refused = [value for value in outcomes if isinstance(value, Exception)]
    assert len(jobs) == 1 and len(refused) == 3
    assert {exc.job_id for exc in refused} == {jobs[0].job_id}
    jobs[0].run()


def test_a_failed_retraining_is_recorded_and_releases_the_pair(home):
    def broken_trainer(data, **kwargs):
        raise RuntimeError("disk on fire")

    owner = retraining(home, train_challenger=broken_trainer)
    result = owner.retrain_model(*PAIR)
    assert result["success"] is False and "disk on fire" in result["error"]
    with home.store.session() as session:
        run = session.query(RetrainingRun).one()
    assert run.status == "failed" and "disk on fire" in run.error
    assert owner.begin(*PAIR) is not None


def test_decision_reports_every_check_and_records_it(home):
    decision = retraining(home).should_retrain(*PAIR)
    for check in ("performance_check", "drift_check", "schedule_check", "data_check"):
        assert check in decision
    assert decision["data_check"]["sufficient_data"] is True
    assert decision["schedule_check"]["triggered"] is False
    assert decision["should_retrain"] is False
    with home.store.session() as session:
        assert session.query(RetrainCheck).count() == 1


def test_schedule_triggers_after_the_interval_and_cooldown_blocks(home):
    owner = retraining(home)
    home.clock.advance(days=7, hours=1)
    decision = owner.should_retrain(*PAIR)
    assert decision["schedule_check"]["triggered"] is True
    assert decision["should_retrain"] is True
    owner.retrain_model(*PAIR, trigger="schedule")
    decision = owner.should_retrain(*PAIR)
    assert decision["cooldown_check"]["active"] is True
    assert any("cooldown" in reason for reason in decision["blocked_by"])
    # A retraining resets the schedule even when the champion was kept.
    assert decision["schedule_check"]["triggered"] is False
    assert decision["should_retrain"] is False
    home.clock.advance(hours=25)
    assert owner.should_retrain(*PAIR)["cooldown_check"]["active"] is False
    home.clock.advance(days=7)
    assert owner.should_retrain(*PAIR)["schedule_check"]["triggered"] is True


def test_each_retraining_that_kept_the_champion_doubles_the_cooldown_and_a_new_one_resets(
    home,
):
    owner = retraining(home, train_challenger=shuffled_label_trainer)  # never deployed
    champion = home.champions[PAIR].version
    owner.retrain_model(*PAIR, trigger="schedule")  # a week apart already: not counted
    home.clock.advance(hours=25)
    assert owner.should_retrain(*PAIR)["cooldown_check"]["runs_against_champion"] == 0
    for expected in (24, 48, 96):
        result = owner.retrain_model(*PAIR, trigger="drift")
        assert result["deployment"]["deployed"] is False
        check = owner.should_retrain(*PAIR)["cooldown_check"]
        assert check["active"] is True and check["cooldown_hours"] == expected
        if expected > 24:
            assert "did not replace it" in check["reason"]
        home.clock.advance(hours=expected - 1)
        assert owner.should_retrain(*PAIR)["cooldown_check"]["active"] is True
        home.clock.advance(hours=2)
        assert owner.should_retrain(*PAIR)["cooldown_check"]["active"] is False
    assert home.registry.champion(*PAIR).version == champion

    # Four more would reach 24 × 2⁶ hours; the cooldown stops at the retraining interval.
    capped = owner.policy.cooldown_check(
        home.clock.now(), home.clock.now(), runs_against_champion=9
    )
    assert capped["cooldown_hours"] == 24 * home.settings.retrain_interval_days
    no_backoff = home.settings.model_copy(update={"retrain_backoff": False})
    plain = AutomatedRetraining(home.store, home.clock, no_backoff, home.registry)
    assert plain.should_retrain(*PAIR)["cooldown_check"]["cooldown_hours"] == 24

    newest = home.registry.list_versions(*PAIR)[0].version
    home.registry.promote(newest, actor="test", reason="a new champion")
    check = owner.should_retrain(*PAIR)["cooldown_check"]
    assert check["runs_against_champion"] == 0 and check["cooldown_hours"] == 24


def test_too_little_data_never_retrains_and_says_why(home):
    owner = retraining(home)
    home.clock.advance(days=45)  # 15 days of the 60-day window hold rows: too few to split
    decision = owner.should_retrain(*PAIR)
    assert decision["schedule_check"]["triggered"] is True
    assert decision["data_check"]["sufficient_data"] is False
    assert decision["data_check"]["sample_count"] == 15 * 24
    assert decision["data_check"]["min_required"] == owner.minimum_training_rows() > 100
    assert decision["should_retrain"] is False
    assert any("feature rows" in reason for reason in decision["blocked_by"])


def add_outcomes(
    home, version, count, accuracy, start, first_id, *, source="scheduled", seed=None, up=None
):
    """``count`` resolved hourly predictions of ``version`` from ``start``, right on a share
    ``accuracy`` of them; ``up`` gives the actual directions (default: "up" predicted)."""
    right = np.zeros(count, dtype=bool)
    right[: round(accuracy * count)] = True
    np.random.default_rng(first_id if seed is None else seed).shuffle(right)
    actual = np.ones(count, dtype=int) if up is None else np.asarray(up, dtype=int)
    with home.store.session() as session:
        for i in range(count):
            at = start + timedelta(hours=i)
            predicted = int(actual[i]) if right[i] else 1 - int(actual[i])
            session.add(
                PredictionLog(
                    id=first_id + i,
                    feature_set=PAIR[0],
                    model_type=PAIR[1],
                    model_version=version,
                    prediction=predicted,
                    probability_down=0.4 if predicted else 0.6,
                    probability_up=0.6 if predicted else 0.4,
                    confidence=0.6,
                    feature_ts=at,
                    target_ts=at + timedelta(hours=1),
                    response_time_ms=1.0,
                    cached_features=True,
                    predicted_at=at,
                    source=source,
                    outcome_status="resolved",
                    actual_direction=int(actual[i]),
                    prediction_correct=bool(right[i]),
                )
            )


def test_performance_drop_is_judged_against_hours_the_champion_was_not_selected_on(home):
    champion = home.champions[PAIR]
    validation = champion.metrics["validation"]
    add_outcomes(home, champion.version, 120, max(validation["accuracy"] - 0.25, 0.2), END, 1)
    home.clock.advance(days=5)
    decision = retraining(home).should_retrain(*PAIR)
    check = decision["performance_check"]
    # not the test accuracy that selected it (the winner's curse), but its validation hours
    assert check["baseline_accuracy"] == pytest.approx(validation["accuracy"])
    assert check["baseline_predictions"] == validation["rows"]
    assert "validation" in check["baseline_source"]
    assert check["live_predictions"] == 120
    assert check["triggered"] is True and check["p_value"] < 0.05
    assert "performance" in decision["triggers"]


@pytest.mark.slow
def test_a_champion_with_a_shadow_record_is_judged_against_that_record(home):
    champion = home.champions[PAIR]
    second = home.registry.register(
        train_on(_data(home), feature_set=PAIR[0], model_type=PAIR[1], settings=home.settings),
        created_by="test",
    )
    # 100 live hours in shadow at 0.62, then promoted
    add_outcomes(home, second.version, 100, 0.62, END, 1, source="shadow")
    home.clock.advance(hours=110)
    home.registry.promote(second.version, actor="test", reason="deploy", action="deploy")
    check = retraining(home).should_retrain(*PAIR)["performance_check"]
    assert check["baseline_accuracy"] == pytest.approx(0.62)
    assert check["baseline_predictions"] == 100
    assert "shadow" in check["baseline_source"]
    assert champion.version != second.version


def deploy_second_champion(home):
    """A second champion deployed over the fixture's, which goes to shadow."""
    second = home.registry.register(
        train_on(_data(home), feature_set=PAIR[0], model_type=PAIR[1], settings=home.settings),
        created_by="test",
    )
    home.registry.promote(
        second.version, actor="test", reason="deploy", action="deploy", displaced_status="shadow"
    )
    return home.champions[PAIR], second


@pytest.mark.slow
def test_automatic_rollback_judges_both_champions_on_the_same_live_hours(home):
    first, second = deploy_second_champion(home)
    owner = retraining(home)
    window = home.settings.auto_rollback_window
    start = END + timedelta(hours=1)
    # the same hours: the previous champion right on 80 %, the new one on 30 %
    add_outcomes(home, first.version, window - 1, 0.8, start, 1, source="shadow", seed=1)
    add_outcomes(home, second.version, window - 1, 0.3, start, 5000, seed=2)
    home.clock.advance(days=3)
    assert owner.check_auto_rollback(*PAIR)["status"] == "waiting"
    add_outcomes(home, first.version, 60, 0.8, start + timedelta(hours=window), 9000, seed=3)
    add_outcomes(home, second.version, 60, 0.3, start + timedelta(hours=window), 9500, seed=4)
    home.clock.advance(days=3)
    verdict = owner.check_auto_rollback(*PAIR)
    assert verdict["rolled_back"] is True, verdict
    assert verdict["evidence"]["e_value"] >= verdict["evidence"]["threshold"] == 20
    assert verdict["outcomes"] == window + 59
    assert home.registry.champion(*PAIR).version == first.version
    last = home.registry.champion_history(*PAIR)[-1]
    assert last.action == "auto_rollback" and "same" in last.reason
    assert owner.check_auto_rollback(*PAIR) is None  # a rolled-back champion is not judged


@pytest.mark.slow
def test_equally_good_champions_are_not_rolled_back(home):
    first, second = deploy_second_champion(home)
    start = END + timedelta(hours=1)
    # the same outcomes for both: no discordant hour, nothing to judge on
    add_outcomes(home, first.version, 200, 0.55, start, 1, source="shadow", seed=8)
    add_outcomes(home, second.version, 200, 0.55, start, 5000, seed=8)
    home.clock.advance(days=10)
    verdict = retraining(home).check_auto_rollback(*PAIR)
    assert verdict["status"] == "judged" and verdict["rolled_back"] is False
    assert verdict["evidence"]["discordant"] == 0
    assert home.registry.champion(*PAIR).version == second.version


@pytest.mark.slow
def test_a_deployment_whose_previous_champion_left_the_shadow_is_not_judged(home):
    first, _ = deploy_second_champion(home)
    home.registry.set_status(first.version, "archived")
    home.clock.advance(days=3)
    verdict = retraining(home).check_auto_rollback(*PAIR)
    assert verdict["status"] == "not_judged" and "shadow" in verdict["reason"]


def record_feature_drift(home, checked_at, severity):
    from btcmlops.db.models import DriftReport

    with home.store.session() as session:
        session.add(
            DriftReport(
                kind="feature",
                feature_set=PAIR[0],
                model_type=None,
                status="success",
                severity=severity,
                checked_at=checked_at,
                report={"windows": {"current_start": (checked_at - timedelta(days=1)).isoformat()}},
            )
        )


def degrade_champion(home, champion=None):
    champion = champion or home.champions[PAIR]
    add_outcomes(home, champion.version, 120, max(champion.test_accuracy - 0.25, 0.2), END, 1)
    home.clock.advance(days=5)


def champion_deployed_at(home, when):
    """A new champion whose takeover happened at ``when`` (trained on the same data)."""
    from btcmlops.clock import ManualClock
    from btcmlops.modeling.registry import ModelRegistry

    earlier = ModelRegistry(home.store, home.settings.artifacts_dir, ManualClock(when))
    trained = train_on(_data(home), feature_set=PAIR[0], model_type=PAIR[1], settings=home.settings)
    info = earlier.register(trained, created_by="test")
    return earlier.promote(info.version, actor="test", reason="deployed earlier", action="deploy")


def test_drift_alone_does_not_shorten_the_training_window(home):
    owner = retraining(home)
    record_feature_drift(home, END - timedelta(days=30), "high")
    window = owner.training_window(*PAIR, END)
    assert window["start"] == END - timedelta(days=60)


@pytest.mark.slow
def test_a_failing_model_after_a_drift_onset_trains_only_on_the_new_market(home):
    champion = champion_deployed_at(home, END - timedelta(days=35))
    owner = retraining(home)
    record_feature_drift(home, END - timedelta(days=40), "high")  # before it took over
    record_feature_drift(home, END - timedelta(days=33), "none")
    record_feature_drift(home, END - timedelta(days=30), "high")  # the first sign: onset
    record_feature_drift(home, END - timedelta(days=29), "medium")
    record_feature_drift(home, END - timedelta(days=20), "high")  # an aftershock: ignored
    degrade_champion(home, champion)
    window = owner.training_window(*PAIR, home.clock.now(), performance_degraded=True)
    assert window["start"] == END - timedelta(days=31)
    assert "drifted" in window["why"]
    result = owner.retrain_model(*PAIR, trigger="performance")
    assert result["success"] is True, result.get("error")
    assert result["windows"]["train"]["start"] >= (END - timedelta(days=31)).isoformat()


@pytest.mark.slow
def test_too_few_hours_since_the_drift_onset_block_retraining(home):
    champion = champion_deployed_at(home, END - timedelta(days=6))
    owner = retraining(home)
    record_feature_drift(home, END - timedelta(days=3), "high")
    degrade_champion(home, champion)
    decision = owner.should_retrain(*PAIR)
    assert "performance" in decision["triggers"]
    assert decision["should_retrain"] is False
    assert "since the features drifted" in decision["data_check"]["reason"]
    result = owner.retrain_model(*PAIR, trigger="performance")  # forced anyway: refused
    assert result["success"] is False and "since the features drifted" in result["error"]
    assert home.registry.champion(*PAIR).version == champion.version


@pytest.mark.slow
def test_the_drift_check_that_led_to_a_deployment_sets_the_onset(home):
    takeover = END - timedelta(days=30)
    champion = champion_deployed_at(home, takeover)
    # the check at the takeover instant: it retrained, and its challenger was deployed
    record_feature_drift(home, takeover, "medium")
    degrade_champion(home, champion)
    owner = retraining(home)
    window = owner.training_window(*PAIR, home.clock.now(), performance_degraded=True)
    assert window["start"] == takeover - timedelta(days=1)


@pytest.mark.slow
def test_model_accuracy_alarms_trigger_the_drift_check_only_when_configured(home):
    from btcmlops.mlops.drift.monitor import DriftDetector

    version = champion_deployed_at(home, END - timedelta(days=10)).version
    add_outcomes(home, version, 168, 0.75, END - timedelta(days=9), 1)  # the reference week
    add_outcomes(home, version, 48, 0.30, END - timedelta(days=2), 1_000)  # the last two days

    def decide(settings):
        detector = DriftDetector(home.store, home.clock, settings)
        owner = AutomatedRetraining(
            home.store,
            home.clock,
            settings,
            home.registry,
            drift_summary=detector.get_drift_summary,
        )
        return owner.should_retrain(*PAIR)["drift_check"]

    check = decide(home.settings)
    assert check["model_severity"] == "high"
    assert check["feature_severity"] in ("none", "low")
    assert check["severity"] == check["feature_severity"]
    assert check["triggered"] is False
    counting = decide(home.settings.model_copy(update={"retrain_drift_counts_model": True}))
    assert counting["severity"] == "high"
    assert counting["triggered"] is True
