"""Every route declares the shape of its answer, ``/docs`` documents it, and the declared
shapes keep every field the core returns (a response model silently drops undeclared ones)."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.store import Store
from btcmlops.features.schema import monitored_feature_names
from btcmlops.mlops.predictions.timeline import prediction_timeline
from btcmlops.server import build_app
from btcmlops.testing import build_trained_home

from support import fresh_database

END = parse_utc("2024-03-01T00:00:00Z")

# Routes that answer something other than JSON, so have no response model, and why.
NOT_JSON = {
    "metrics": "Prometheus text exposition (or OpenMetrics), not JSON",
    "dashboard": "the dashboard's HTML page",
    "static_file": "the dashboard's scripts, stylesheet and plotly.js",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The served app (API and dashboard); building it opens no database."""
    folder = tmp_path_factory.mktemp("response-models")
    settings = Settings(
        home=folder / "home", database_url=f"sqlite:///{folder}/unused.db", _env_file=None
    )
    return build_app(AppContext.from_settings(settings))


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(path, route) of every FastAPI route, through the routers the app includes."""
    return [
        (context.path, context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def is_response_model(annotation: Any) -> bool:
    """A pydantic model, or a union of them (not ``dict``, not ``None``)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return all(is_response_model(member) for member in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def has_fields(schema: dict[str, Any], document: dict[str, Any]) -> bool:
    schema = resolve(schema, document)
    if "anyOf" in schema:
        return all(has_fields(member, document) for member in schema["anyOf"])
    return bool(schema.get("properties"))


def test_every_json_route_declares_a_response_model(app):
    routes = api_routes(app)
    assert len(routes) > 30, "the walk found too few routes: did the app factory change?"

    undeclared = sorted(
        f"{sorted(route.methods)} {path} ({route.name})"
        for path, route in routes
        if route.name not in NOT_JSON and not is_response_model(route.response_model)
    )

    assert not undeclared, f"routes without a response model: {undeclared}"


def test_only_routes_kept_out_of_the_schema_are_exempt(app):
    documented = set(app.openapi()["paths"])
    names = {route.name for _, route in api_routes(app)}
    undocumented = {route.name for path, route in api_routes(app) if path not in documented}

    assert set(NOT_JSON) <= names, f"exempt routes that no longer exist: {set(NOT_JSON) - names}"
    assert undocumented == set(NOT_JSON)


def test_the_openapi_schema_gives_every_route_a_200_answer_with_fields(app):
    document = app.openapi()
    empty = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("200", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if not has_fields(schema, document):
                empty.append(f"{method.upper()} {path}")

    assert not empty, f"200 answers documented without fields: {empty}"
    accepted = document["paths"]["/retrain/execute"]["post"]["responses"]["202"]
    assert has_fields(accepted["content"]["application/json"]["schema"], document)


# ------------------------------------------------- the declared shapes keep the core's fields


@pytest.fixture(scope="module")
def home(backend, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp(f"response-models-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        try:
            yield build_trained_home(store, settings, END, with_importances=False)
        finally:
            store.close()


def key_paths(value: Any, path: str = "") -> set[str]:
    """Every key of every object in ``value``, as a dotted path (list items share ``[]``)."""
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            found |= {f"{path}.{key}"} | key_paths(item, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return set().union(*(key_paths(item, f"{path}[]") for item in value))
    return set()


def dropped_fields(served: Any, core: Any) -> list[str]:
    """Fields the core returned that the served answer lacks."""
    return sorted(key_paths(jsonable_encoder(core)) - key_paths(served))


@pytest.mark.slow  # trains a champion and retrains it once
def test_response_models_keep_every_field_the_core_returns(home):
    context = AppContext(settings=home.settings, clock=home.clock, _store=home.store)
    pair = {"feature_set": "vader", "model_type": "random_forest"}
    with TestClient(build_app(context)) as client:
        services = client.app.state.services
        client.post("/predict", params={"feature_set": "vader"})
        retrained = client.post("/retrain/execute", params=pair)
        assert retrained.status_code == 200, retrained.text
        job_id = retrained.json()["job_id"]

        def get(path: str, **params: Any) -> Any:
            answer = client.get(path, params=params)
            assert answer.status_code == 200, f"{path}: {answer.text}"
            return answer.json()

        drift, retraining, registry = services.drift, services.retraining, services.registry
        feature = monitored_feature_names("vader")[0]
        # path -> (the served JSON, what the core returned for the same question)
        answers = {
            "/drift/features": (
                get("/drift/features", feature_set="vader")["drift_analysis"],
                drift.detect_feature_drift("vader", 7, 1, record=False),
            ),
            "/drift/model": (
                get("/drift/model", **pair)["drift_analysis"],
                drift.detect_model_drift("vader", "random_forest", 7, 1, record=False),
            ),
            "/drift/summary": (
                get("/drift/summary", **pair, record=True)["summary"],
                drift.get_drift_summary("vader", "random_forest", 7, 1, record=False),
            ),
            "/drift/history": (get("/drift/history")["reports"], drift.history(None, 30)),
            "/drift/distribution": (
                get("/drift/distribution", feature=feature),
                drift.distribution("vader", feature, 7, 1),
            ),
            "/retrain/check": (
                get("/retrain/check", **pair)["decision"],
                retraining.should_retrain("vader", "random_forest", record=False),
            ),
            "/retrain/status": (get("/retrain/status")["status"], retraining.status()),
            "/retrain/jobs/{job_id}": (
                get(f"/retrain/jobs/{job_id}")["job"],
                retraining.job(job_id),
            ),
            "/retrain/history": (get("/retrain/history")["runs"], retraining.history()),
            "/retrain/checks": (get("/retrain/checks")["checks"], retraining.checks()),
            "/retrain/shadows": (
                get("/retrain/shadows", **pair)["pairs"][0],
                retraining.shadow_report("vader", "random_forest"),
            ),
            "/models/versions": (
                get("/models/versions")["versions"],
                [version.as_dict() for version in registry.list_versions()],
            ),
            "/models/history": (
                get("/models/history")["history"],
                [change.as_dict() for change in registry.champion_history()],
            ),
            "/predictions/timeline": (
                get("/predictions/timeline", **pair)["points"],
                prediction_timeline(
                    services.store, services.clock, "vader", "random_forest", days=30, window=48
                ),
            ),
        }

    dropped = {path: dropped_fields(*answer) for path, answer in answers.items()}
    assert not {path: fields for path, fields in dropped.items() if fields}
