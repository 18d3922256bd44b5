"""The model registry on every backend: exact round trips, integrity, and the champion pointer."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from btcmlops.cli.registry import app as models_app
from btcmlops.cli.state import CliState
from btcmlops.db.models import ModelVersion
from btcmlops.errors import (
    ArtifactIntegrityError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from btcmlops.jsonable import jsonable
from btcmlops.modeling.artifacts import serialize_pipeline, sha256_hex
from btcmlops.modeling.model_types import MODEL_TYPES
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import ARCHIVED, CANDIDATE, CHAMPION, SHADOW
from btcmlops.modeling.training import train_model

PAIR = ("vader", "random_forest")


def small_market(hours: int = 900, columns: int = 6, seed: int = 2):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC")
    features = pd.DataFrame(
        rng.normal(size=(hours, columns)), index=index, columns=[f"f{i}" for i in range(columns)]
    )
    features.iloc[::9, 1] = np.nan
    targets = ((features["f0"] + rng.normal(size=hours)) > 0).astype(float)
    last_hour = pd.Series(rng.integers(0, 2, hours).astype(float), index=index)
    return features, targets, last_hour


@pytest.fixture(scope="module")
def trained_models():
    """One trained model of each type (trained once; the registry tests only store them)."""
    features, targets, last_hour = small_market()
    return {
        model_type: train_model(
            features,
            targets,
            feature_set="vader",
            model_type=model_type,
            last_hour_direction=last_hour,
            purge_gap=timedelta(hours=6),
            n_jobs=2,
            with_importances=False,  # no test here reads them
        )
        for model_type in MODEL_TYPES
    } | {"features": features}


@pytest.fixture
def registry(store, clock, tmp_path):
    return ModelRegistry(store, tmp_path / "models", clock)


def register_versions(registry, clock, trained, count):
    """Register ``trained`` ``count`` times, an hour apart (distinct versions)."""
    versions = []
    for _ in range(count):
        clock.advance(hours=1)
        versions.append(registry.register(trained, created_by="test", reason="unit test").version)
    return versions


def champions(store):
    with store.session() as session:
        return session.scalars(
            select(ModelVersion.version).where(ModelVersion.status == CHAMPION)
        ).all()


# ------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_saved_then_loaded_pipeline_predicts_exactly_what_the_trained_one_did(
    registry, trained_models, model_type, store, clock, tmp_path
):
    trained = trained_models[model_type]
    features = trained_models["features"]
    info = registry.register(trained, created_by="test", reason="round trip")

    # Loaded as another process would: from the file (the registering one keeps its object).
    loaded = ModelRegistry(store, tmp_path / "models", clock).load_pipeline(info.version)

    assert loaded is not trained.pipeline
    assert np.array_equal(loaded.predict_proba(features), trained.pipeline.predict_proba(features))
    # the schema is written compactly (artifacts.py: _CompactJson), and still loads
    with zipfile.ZipFile(registry.artifact_file(info)) as archive:
        schema = archive.read("schema.json").decode()
    assert "\n" not in schema and json.loads(schema)["__class__"] == "Pipeline"


def test_registering_writes_the_artifact_and_records_how_the_model_was_made(
    registry, trained_models, clock, tmp_path
):
    trained = trained_models["random_forest"]
    info = registry.register(trained, created_by="alice", reason="first model")

    path = tmp_path / "models" / "vader" / "random_forest" / f"{info.version}.skops"
    assert registry.artifact_file(info) == path
    assert info.artifact_sha256 == sha256_hex(path.read_bytes())
    assert info.version.startswith(f"vader-random_forest-{clock.now():%Y%m%dT%H%M%S}-")
    assert info.version.endswith(info.artifact_sha256[:8])
    assert info.status == CANDIDATE
    assert (info.created_by, info.reason, info.created_at) == ("alice", "first model", clock.now())
    assert info.test_accuracy == trained.test.accuracy
    assert info.metrics["validation_accuracy"] == trained.validation.accuracy
    assert info.windows["test"]["rows"] == len(trained.split.test_index)
    assert info.feature_names == list(trained.feature_names)
    assert info.feature_version == trained.feature_version
    assert info.hyperparameters["classifier"] == "RandomForestClassifier"
    assert "scikit-learn" in info.library_versions
    assert registry.get(info.version) == info
    json.dumps(info.as_dict(), allow_nan=False)


def test_json_documents_never_carry_nan():
    document = jsonable({"a": float("nan"), "b": [np.float64("inf"), np.int64(3)], "c": (1.5,)})
    assert document == {"a": None, "b": [None, 3], "c": [1.5]}


def test_listing_filters_by_pair_and_shows_newest_first(registry, trained_models, clock):
    forest = register_versions(registry, clock, trained_models["random_forest"], 2)
    linear = register_versions(registry, clock, trained_models["logistic_regression"], 1)

    assert [info.version for info in registry.list_versions()] == [*linear, *forest[::-1]]
    assert [info.version for info in registry.list_versions(*PAIR)] == forest[::-1]
    assert registry.list_versions("finbert") == []
    assert registry.champion(*PAIR) is None
    with pytest.raises(NotFoundError, match="no model version 'nope'"):
        registry.get("nope")


# ------------------------------------------------------------------------ champion pointer


@pytest.mark.slow
def test_promote_promote_rollback_restores_the_first_champion_with_full_history(
    registry, trained_models, clock, store
):
    v1, v2 = register_versions(registry, clock, trained_models["random_forest"], 2)

    registry.promote(v1, actor="alice", reason="first")
    assert champions(store) == [v1]
    clock.advance(minutes=5)
    registry.promote(v2, actor="bob", reason="better")
    assert champions(store) == [v2]
    clock.advance(minutes=5)
    restored = registry.rollback(*PAIR, actor="carol", reason="v2 misbehaves")

    assert restored.version == v1 and restored.status == CHAMPION
    assert champions(store) == [v1]
    assert registry.get(v2).status == ARCHIVED
    history = registry.champion_history(*PAIR)
    assert [(h.action, h.version, h.previous_version) for h in history] == [
        ("promote", v1, None),
        ("promote", v2, v1),
        ("rollback", v1, v2),
    ]
    assert [(h.actor, h.reason) for h in history] == [
        ("alice", "first"),
        ("bob", "better"),
        ("carol", "v2 misbehaves"),
    ]
    assert history[-1].changed_at == clock.now()


def test_reads_follow_changes_made_elsewhere_and_repeat_without_rereading(
    registry, trained_models, clock, store, tmp_path
):
    """The hot reads are cached per change: another process's promotion is seen at once."""
    v1, v2, v3 = register_versions(registry, clock, trained_models["random_forest"], 3)
    elsewhere = ModelRegistry(store, tmp_path / "models", clock)  # another process's view
    registry.promote(v1, actor="alice", reason="first")
    assert elsewhere.champion(*PAIR).version == v1
    assert elsewhere.champion(*PAIR) is elsewhere.champion(*PAIR)  # nothing moved: no re-read

    registry.set_status(v2, SHADOW)
    assert [m.version for m in elsewhere.shadows(*PAIR)] == [v2]
    assert elsewhere.get(v2).status == SHADOW and elsewhere.get(v3).status == CANDIDATE
    registry.promote(v3, actor="bob", reason="better")
    assert elsewhere.champion(*PAIR).version == v3
    assert elsewhere.champion_pairs() == [PAIR]
    assert [h.version for h in elsewhere.champion_history(*PAIR)] == [v1, v3]
    assert elsewhere.champion_history("finbert") == []
    with store.session() as session:  # a change outside the registry's methods, too
        session.execute(
            update(ModelVersion).where(ModelVersion.version == v2).values(status=ARCHIVED)
        )
    assert elsewhere.shadows(*PAIR) == []
    assert elsewhere.get(v2).status == ARCHIVED


@pytest.mark.slow
def test_rolling_back_twice_walks_two_promotions_back_then_says_there_is_nothing_left(
    registry, trained_models, clock
):
    v1, v2, v3 = register_versions(registry, clock, trained_models["random_forest"], 3)
    for version in (v1, v2, v3):
        registry.promote(version, actor="ops", reason="deploy")

    assert registry.rollback(*PAIR, actor="ops", reason="bad").version == v2
    assert registry.rollback(*PAIR, actor="ops", reason="also bad").version == v1
    with pytest.raises(NotFoundError, match=f"nothing to roll back to: {v1} was the first"):
        registry.rollback(*PAIR, actor="ops", reason="again")
    assert registry.champion(*PAIR).version == v1


def test_rollback_without_a_champion_is_a_clear_error(registry):
    with pytest.raises(NotFoundError, match="vader/random_forest has no champion"):
        registry.rollback(*PAIR, actor="ops", reason="panic")


def test_promoting_the_current_champion_is_a_conflict_and_changes_nothing(
    registry, trained_models, clock
):
    (v1,) = register_versions(registry, clock, trained_models["random_forest"], 1)
    registry.promote(v1, actor="ops", reason="deploy")
    with pytest.raises(ConflictError, match="already the champion"):
        registry.promote(v1, actor="ops", reason="again")
    assert len(registry.champion_history()) == 1


def test_the_database_refuses_a_second_champion_for_a_pair(registry, trained_models, clock, store):
    v1, v2 = register_versions(registry, clock, trained_models["random_forest"], 2)
    registry.promote(v1, actor="ops", reason="deploy")
    with pytest.raises(IntegrityError), store.session() as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.version == v2).values(status=CHAMPION)
        )
    assert champions(store) == [v1]


def test_champions_of_different_pairs_are_independent(registry, trained_models, clock, store):
    (forest,) = register_versions(registry, clock, trained_models["random_forest"], 1)
    (linear,) = register_versions(registry, clock, trained_models["logistic_regression"], 1)
    registry.promote(forest, actor="ops", reason="deploy")
    registry.promote(linear, actor="ops", reason="deploy")
    assert sorted(champions(store)) == sorted([forest, linear])
    assert registry.champion("vader", "logistic_regression").version == linear


# ------------------------------------------------------------------------------- integrity


def tamper_one_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_tampered_artifact_is_refused_and_the_champion_keeps_serving(
    registry, trained_models, clock
):
    v1, v2 = register_versions(registry, clock, trained_models["random_forest"], 2)
    registry.promote(v1, actor="ops", reason="deploy")
    tamper_one_byte(registry.artifact_file(registry.get(v2)))

    with pytest.raises(ArtifactIntegrityError, match=f"{v2} does not match the registry: sha256"):
        registry.promote(v2, actor="ops", reason="deploy")
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        registry.load_pipeline(v2)

    assert registry.champion(*PAIR).version == v1
    assert registry.get(v2).status == CANDIDATE
    assert len(registry.champion_history(*PAIR)) == 1
    registry.load_pipeline(v1)  # the champion still loads


def test_a_missing_artifact_is_refused_and_the_champion_keeps_serving(
    registry, trained_models, clock
):
    v1, v2 = register_versions(registry, clock, trained_models["random_forest"], 2)
    registry.promote(v1, actor="ops", reason="deploy")
    registry.artifact_file(registry.get(v2)).unlink()

    with pytest.raises(ArtifactIntegrityError, match=f"artifact of model {v2} is missing"):
        registry.promote(v2, actor="ops", reason="deploy")
    assert registry.champion(*PAIR).version == v1


def test_rollback_to_a_tampered_champion_is_refused_and_the_current_one_stays(
    registry, trained_models, clock
):
    v1, v2 = register_versions(registry, clock, trained_models["random_forest"], 2)
    registry.promote(v1, actor="ops", reason="deploy")
    registry.promote(v2, actor="ops", reason="deploy")
    tamper_one_byte(registry.artifact_file(registry.get(v1)))

    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        registry.rollback(*PAIR, actor="ops", reason="bad")
    assert registry.champion(*PAIR).version == v2


def _double(values):
    return values * 2


def replace_artifact(registry, store, version, pipeline):
    """Swap an artifact *and* its registered sha256, as someone with write access could."""
    data = sio.dumps(pipeline)
    registry.artifact_file(registry.get(version)).write_bytes(data)
    with store.session() as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == version)
            .values(artifact_sha256=sha256_hex(data))
        )


def test_an_artifact_with_untrusted_types_is_refused_even_with_a_matching_sha256(
    registry, trained_models, clock, store
):
    (version,) = register_versions(registry, clock, trained_models["random_forest"], 1)
    features = trained_models["features"]
    smuggled = Pipeline([("imputer", FunctionTransformer(_double))]).fit(features)
    replace_artifact(registry, store, version, smuggled)

    with pytest.raises(ArtifactIntegrityError, match=r"outside the trusted list.*_double"):
        registry.load_pipeline(version)
    with pytest.raises(ArtifactIntegrityError):
        registry.promote(version, actor="ops", reason="deploy")
    assert registry.champion(*PAIR) is None


def test_an_artifact_of_another_shape_is_refused(registry, trained_models, clock, store):
    (version,) = register_versions(registry, clock, trained_models["random_forest"], 1)
    features = trained_models["features"]
    targets = (features["f0"] > 0).astype(int)
    other = Pipeline(
        [
            ("imputer", SimpleImputer()),
            ("scaler", StandardScaler()),
            ("classifier", LogisticRegression()),
        ]
    ).fit(features, targets)
    replace_artifact(registry, store, version, other)

    with pytest.raises(ArtifactIntegrityError, match="not an imputer → scaler → RandomForest"):
        registry.load_pipeline(version)


def test_a_pipeline_the_loader_would_refuse_cannot_be_registered(trained_models):
    smuggled = Pipeline([("step", FunctionTransformer(_double))]).fit(trained_models["features"])
    with pytest.raises(InvalidInputError, match=r"does not trust.*_double"):
        serialize_pipeline(smuggled)


# ---------------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_models_commands_promote_list_and_roll_back(trained_models, clock, app_context):
    cli_registry = ModelRegistry(app_context.store, app_context.settings.artifacts_dir, clock)
    v1, v2 = register_versions(cli_registry, clock, trained_models["random_forest"], 2)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(models_app, list(args), obj=CliState(_context=app_context))
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    promoted = json.loads(run("promote", v1, "--json"))
    assert promoted == {"champion": cli_registry.get(v1).summary(), "previous_champion": None}
    assert f"replacing {v1}" in run("promote", v2, "--reason", "newer")
    listing = json.loads(run("list", "--feature-set", "vader", "--json"))
    # the displaced champion keeps predicting in shadow, so the rollback check can judge
    assert [(m["version"], m["status"]) for m in listing["models"]] == [
        (v2, CHAMPION),
        (v1, SHADOW),
    ]
    rolled = json.loads(
        run("rollback", "--feature-set", "vader", "--model-type", "random_forest", "--json")
    )
    assert (rolled["champion"]["version"], rolled["previous_champion"]) == (v1, v2)
    history = json.loads(run("history", "--json"))
    assert [c["action"] for c in history["changes"]] == ["promote", "promote", "rollback"]
    assert cli_registry.champion(*PAIR).version == v1


def test_models_rollback_with_an_unknown_feature_set_names_the_choices(app_context):
    result = CliRunner().invoke(
        models_app,
        ["rollback", "--feature-set", "bert", "--model-type", "random_forest"],
        obj=CliState(_context=app_context),
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "vader, finbert" in str(result.exception)


def test_a_just_registered_model_loads_without_deserialising_yet_its_file_is_still_checked(
    registry, trained_models, clock, store, tmp_path
):
    trained = trained_models["random_forest"]
    (version,) = register_versions(registry, clock, trained, 1)
    assert registry.load_pipeline(version) is trained.pipeline  # the bytes it just wrote

    elsewhere = ModelRegistry(store, tmp_path / "models", clock)  # another process reads the file
    loaded = elsewhere.load_pipeline(version)
    assert loaded is not trained.pipeline
    features = trained_models["features"]
    assert np.array_equal(loaded.predict_proba(features), trained.pipeline.predict_proba(features))

    tamper_one_byte(registry.artifact_file(registry.get(version)))
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        registry.load_pipeline(version)
