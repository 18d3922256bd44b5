"""Training: chronological purged splits, honest scores beside baselines, clear data errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from btcmlops.cli.registry import app as models_app
from btcmlops.cli.registry import train as train_command
from btcmlops.cli.state import CliState
from btcmlops.db.models import FeatureRow
from btcmlops.errors import InsufficientDataError, InvalidInputError
from btcmlops.features.schema import (
    FEATURE_VERSION,
    MAX_LOOKBACK_HOURS,
    feature_names,
    model_feature_names,
)
from btcmlops.ingest.sources import Bar
from btcmlops.ingest.storage import store_bars
from btcmlops.modeling.evaluation import LAST_HOUR, MAJORITY_CLASS
from btcmlops.modeling.model_types import MODEL_TYPES, count_imputed, feature_order, imputer_of
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.splits import PURGE_GAP, chronological_split
from btcmlops.modeling.training import train_from_store, train_model

SMALL_GAP = timedelta(hours=6)


def synthetic_market(hours: int = 2_000, columns: int = 8, signal: float = 1.0, seed: int = 3):
    """Features whose first two columns drive the next hour's direction, plus noise columns."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC")
    features = pd.DataFrame(
        rng.normal(size=(hours, columns)), index=index, columns=[f"x{i}" for i in range(columns)]
    )
    latent = signal * (features["x0"] + 0.5 * features["x1"]) + rng.normal(size=hours)
    targets = (latent > 0).astype(float)
    last_hour = pd.Series(rng.integers(0, 2, hours).astype(float), index=index)
    features.iloc[::11, 2] = np.nan  # some missing values for the imputer
    return features, targets, last_hour


def fit(features, targets, last_hour, model_type="logistic_regression", **options):
    options.setdefault("purge_gap", SMALL_GAP)
    return train_model(
        features,
        targets,
        feature_set="vader",
        model_type=model_type,
        last_hour_direction=last_hour,
        **options,
    )


# ------------------------------------------------------------------------------------ splits


def test_purge_gap_is_the_horizon_plus_the_longest_feature_lookback():
    assert timedelta(hours=1 + MAX_LOOKBACK_HOURS) == PURGE_GAP


def test_split_is_chronological_with_purge_gaps_between_parts():
    rng = np.random.default_rng(0)
    hours = pd.date_range("2024-01-01", periods=3_000, freq="h", tz="UTC")
    kept = hours[rng.random(len(hours)) > 0.05]  # 5 % of hours missing
    split = chronological_split(kept[::-1])  # order of the input does not matter

    train, validation, test = split.train_index, split.validation_index, split.test_index
    assert train.max() < validation.min() and validation.max() < test.min()
    assert validation.min() - train.max() >= PURGE_GAP
    assert test.min() - validation.max() >= PURGE_GAP
    assert test.max() == kept.max() and train.min() == kept.min()
    assert len(train) + len(validation) + len(test) + split.purged_rows == len(kept)
    used = len(train) + len(validation) + len(test)
    assert len(train) / used == pytest.approx(0.7, abs=0.02)
    assert len(validation) / used == pytest.approx(0.1, abs=0.02)
    assert len(test) / used == pytest.approx(0.2, abs=0.02)
    windows = split.as_dict()
    assert windows["test"]["end"] == kept.max().isoformat()
    assert windows["purge_gap_hours"] == MAX_LOOKBACK_HOURS + 1


def test_split_refuses_a_history_shorter_than_its_purge_gaps_with_the_counts():
    hours = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    with pytest.raises(InsufficientDataError, match=r"300 rows span 299 h.*purge gaps of 169 h"):
        chronological_split(hours)


# ---------------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    "model_type",
    # Gradient boosting alone takes over 3 s here.
    [
        pytest.param(m, marks=pytest.mark.slow) if m == "gradient_boosting" else m
        for m in MODEL_TYPES
    ],
)
def test_a_learnable_signal_gives_a_model_that_beats_both_baselines(model_type):
    features, targets, last_hour = synthetic_market()
    model = fit(features, targets, last_hour, model_type=model_type, n_jobs=2)

    for name in (MAJORITY_CLASS, LAST_HOUR):
        baseline = model.baselines[name]
        assert model.test.accuracy > baseline.accuracy_ci_high, name
        assert model.test.log_loss < baseline.log_loss, name
    assert model.test.roc_auc > 0.7
    assert model.validation.accuracy > 0.6
    assert {item.feature for item in model.importances[:2]} == {"x0", "x1"}
    assert model.feature_names == tuple(features.columns)
    assert model.hyperparameters["training"]["threads"] == 2


@pytest.mark.slow
def test_training_is_reproducible_with_a_fixed_seed():
    features, targets, last_hour = synthetic_market(hours=1_200)
    first = fit(features, targets, last_hour, model_type="random_forest", n_jobs=2, seed=5)
    second = fit(features, targets, last_hour, model_type="random_forest", n_jobs=1, seed=5)
    x_test = features.loc[first.split.test_index]
    assert np.array_equal(
        first.pipeline.predict_proba(x_test), second.pipeline.predict_proba(x_test)
    )
    assert first.test == second.test
    assert first.importances == second.importances


def test_a_trained_pipeline_exposes_its_feature_order_and_imputer_for_serving():
    features, targets, last_hour = synthetic_market(hours=1_200)
    model = fit(features, targets, last_hour)
    pipeline = model.pipeline
    assert feature_order(pipeline) == list(features.columns)
    # The imputer learnt its medians from the training window only.
    train_median = np.nanmedian(features.loc[model.split.train_index, "x2"])
    assert imputer_of(pipeline).statistics_[2] == pytest.approx(train_median)
    assert imputer_of(pipeline).statistics_[2] != pytest.approx(np.nanmedian(features["x2"]))
    shuffled = features.iloc[:50][list(reversed(features.columns))]
    assert count_imputed(pipeline, shuffled) == int(features.iloc[:50].isna().sum().sum())


def test_rows_without_a_known_target_are_not_used():
    features, targets, last_hour = synthetic_market(hours=1_500)
    unknown = targets.index[200:260].append(targets.index[-40:])
    targets[unknown] = np.nan
    model = fit(features, targets, last_hour)

    used = model.split.train_index.append(model.split.validation_index).append(
        model.split.test_index
    )
    assert not used.isin(unknown).any()
    assert len(used) + model.split.purged_rows == targets.notna().sum()
    assert model.split.test_index.max() == targets.index[-41]


def test_metrics_document_is_json_safe_and_records_test_and_validation_accuracy():
    features, targets, last_hour = synthetic_market(hours=1_200)
    document = fit(features, targets, last_hour).metrics_document()
    json.dumps(document, allow_nan=False)
    assert document["test_accuracy"] == document["test"]["accuracy"]
    assert document["validation_accuracy"] == document["validation"]["accuracy"]
    assert set(document["baselines"]) == {MAJORITY_CLASS, LAST_HOUR}
    assert len(document["feature_importances"]) == features.shape[1]


def test_too_few_usable_rows_is_an_error_with_the_counts():
    features, targets, last_hour = synthetic_market(hours=150)
    targets.iloc[:60] = np.nan
    with pytest.raises(InsufficientDataError, match=r"only 90 of 150 feature rows .* at least 100"):
        fit(features, targets, last_hour)
    with pytest.raises(InsufficientDataError, match=r"only 90 of 150 .* at least 120"):
        fit(features, targets, last_hour, min_rows=120)


def test_a_single_direction_in_the_training_part_is_an_error_with_the_counts():
    features, targets, last_hour = synthetic_market(hours=1_000)
    targets.iloc[:700] = 1.0
    with pytest.raises(InsufficientDataError, match=r"training part \(\d+ rows.*\d+ up and 0 down"):
        fit(features, targets, last_hour)


def test_a_single_direction_in_the_test_part_is_an_error_with_the_counts():
    features, targets, last_hour = synthetic_market(hours=1_000)
    targets.iloc[-250:] = 0.0
    with pytest.raises(InsufficientDataError, match=r"test part \(\d+ rows.* 0 up and \d+ down"):
        fit(features, targets, last_hour)


def test_unknown_model_type_and_feature_set_name_the_allowed_values():
    features, targets, last_hour = synthetic_market(hours=300)
    with pytest.raises(InvalidInputError, match="random_forest, gradient_boosting"):
        fit(features, targets, last_hour, model_type="xgboost")
    with pytest.raises(InvalidInputError, match="vader, finbert"):
        train_model(
            features,
            targets,
            feature_set="bert",
            model_type="random_forest",
            last_hour_direction=last_hour,
        )


def test_the_model_type_names_import_without_scikit_learn():
    """The command line reads them for its help; ``btcmlops --help`` must not load sklearn."""
    program = (
        "import sys\n"
        "from btcmlops.modeling.model_types import MODEL_TYPES, validate_model_type\n"
        "validate_model_type(MODEL_TYPES[0])\n"
        "print(','.join(m for m in ('sklearn', 'pandas', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


# ------------------------------------------------------------------------------ from the store


def closes_random_walk(hours: int, seed: int = 11) -> np.ndarray:
    steps = np.random.default_rng(seed).normal(0, 0.004, hours)
    return 40_000 * np.exp(np.cumsum(steps))


def seed_prices(store, clock, start, hours: int) -> np.ndarray:
    closes = closes_random_walk(hours)
    bars = [
        Bar(start + timedelta(hours=i), c, c * 1.001, c * 0.999, c, 1.0)
        for i, c in enumerate(closes)
    ]
    store_bars(store, bars, symbol="BTCUSD", source="test", clock=clock)
    return closes


def seed_feature_rows(store, start, hours: int, version: str = FEATURE_VERSION) -> None:
    """``vader`` feature rows with random values, written as the builder would store them."""
    names = feature_names("vader")
    rng = np.random.default_rng(5)
    with store.session() as session:
        for i in range(hours):
            values = dict(zip(names, rng.normal(size=len(names)).tolist(), strict=True))
            values[names[-1]] = None  # a value missing from the row
            session.add(
                FeatureRow(
                    feature_set="vader",
                    feature_version=version,
                    ts=start + timedelta(hours=i),
                    close=1.0,
                    feature_values=values,
                    missing_count=1,
                    built_at=start,
                )
            )


@pytest.mark.slow
def test_train_from_store_uses_only_bars_closed_by_now_and_labels_from_prices(
    store, clock, settings, start_time
):
    closes = seed_prices(store, clock, start_time, 900)
    seed_feature_rows(store, start_time, 880)
    seed_feature_rows(store, start_time + timedelta(hours=880), 20, version="v-old")
    clock.set(start_time + timedelta(hours=700, minutes=30))

    model = train_from_store(store, "vader", "logistic_regression", clock=clock, settings=settings)

    # Bars up to 699:00 have closed by 700:30, so the last hour with a known target is 698:00.
    assert model.split.test_index.max() == start_time + timedelta(hours=698)
    assert model.feature_names == tuple(model_feature_names("vader"))
    assert "close" not in model.feature_names  # levels are not model inputs
    assert model.feature_version == FEATURE_VERSION
    test_hours = [int((ts - start_time) / timedelta(hours=1)) for ts in model.split.test_index]
    expected_up_rate = np.mean([closes[h + 1] > closes[h] for h in test_hours])
    assert model.test.actual_up_rate == pytest.approx(expected_up_rate)
    used = len(model.split.train_index) + len(model.split.validation_index) + len(test_hours)
    assert used + model.split.purged_rows == 699


def test_train_from_store_without_feature_rows_says_how_to_build_them(store, clock, settings):
    with pytest.raises(InsufficientDataError, match="features build --feature-set finbert"):
        train_from_store(store, "finbert", "random_forest", clock=clock, settings=settings)


def test_train_from_store_refuses_to_train_as_of_a_time_after_now(store, clock, settings):
    with pytest.raises(InvalidInputError, match="after now"):
        train_from_store(
            store,
            "vader",
            "random_forest",
            clock=clock,
            settings=settings,
            end=clock.now() + timedelta(hours=1),
        )


# ---------------------------------------------------------------------------------------- CLI


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_command)
    app.add_typer(models_app, name="models")
    return app


@pytest.mark.slow
def test_train_command_registers_a_model_and_prints_its_scores_beside_the_baselines(
    store, clock, app_context, start_time
):
    seed_prices(store, clock, start_time, 900)
    seed_feature_rows(store, start_time, 900)
    clock.set(start_time + timedelta(hours=900))
    runner = CliRunner()
    args = ["train", "--feature-set", "vader", "--model-type", "logistic_regression"]

    as_json = runner.invoke(cli_app(), [*args, "--json"], obj=CliState(_context=app_context))
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["status"] == "candidate"
    assert set(report["metrics"]["baselines"]) == {MAJORITY_CLASS, LAST_HOUR}
    registry = ModelRegistry(store, app_context.settings.artifacts_dir, clock)
    assert registry.get(report["version"]).test_accuracy == report["metrics"]["test_accuracy"]

    clock.advance(minutes=1)
    table = runner.invoke(cli_app(), [*args, "--promote"], obj=CliState(_context=app_context))
    assert table.exit_code == 0, table.output
    assert "majority class" in table.output and "last hour" in table.output
    assert "95% interval (Wilson)" in table.output
    champion = registry.champion("vader", "logistic_regression")
    assert champion is not None and champion.version in table.output


def test_train_command_with_an_unknown_model_type_names_the_allowed_values(app_context):
    result = CliRunner().invoke(
        cli_app(),
        ["train", "--feature-set", "vader", "--model-type", "svm"],
        obj=CliState(_context=app_context),
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "random_forest, gradient_boosting, logistic_regression" in str(result.exception)
