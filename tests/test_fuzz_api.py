"""Hostile input against a live server: a property-based fuzz run of the OpenAPI schema
(schemathesis) finds no 5xx and no answer its schema does not declare, state-changing
operations refuse callers without the key, and SQL-looking values stay data.

The server is a real ``btcmlops serve`` process over a trained home, on SQLite and (when
``BTCMLOPS_TEST_POSTGRES_URL`` is set) PostgreSQL: the two dialects reject different values
(PostgreSQL refuses NUL characters in text, for instance), so hostile input is tried on both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, inspect, select

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.db.models import Base, ModelVersion, PredictionLog
from btcmlops.db.store import Store
from btcmlops.features.schema import feature_names
from btcmlops.modeling.training import train_from_store
from btcmlops.testing import build_trained_home

from support import free_port, fresh_database

# A real `btcmlops serve` process under a property-based fuzz run.
pytestmark = pytest.mark.e2e

END = parse_utc("2024-03-01T00:00:00Z")
API_KEY = "fuzz-test-key-0123456789"
SEED = 20240301
# Two pairs with champions (random forest is the default model type), so predictions,
# reloads, promotions and retraining have something to act on; 28 days train in seconds.
PAIRS = (("vader", "random_forest"), ("vader", "logistic_regression"))
EXAMPLES = 25  # fuzzing phase, per operation, on top of the examples and coverage phases
# Each example of these trains models (seconds each, and async=true ones pile up in the
# background), so they get few examples and no coverage phase; they are still fuzzed.
EXPENSIVE = {"/retrain/execute": 4, "/retrain/both": 3}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# What the issue names as state-changing (everything else is a read or a prediction).
STATE_CHANGING = {
    ("POST", "/retrain/execute"),
    ("POST", "/retrain/both"),
    ("POST", "/models/reload"),
    ("POST", "/models/rollback"),
    ("POST", "/models/promote"),
    ("POST", "/predictions/{prediction_id}/outcome"),
}


@dataclass
class LiveServer:
    base_url: str
    database_url: str
    backend: str
    process: subprocess.Popen
    log_path: Path
    spare_version: str  # registered for vader/logistic_regression, never promoted
    # (method, path template) -> status codes answered during the fuzz run
    answered: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))


def wait_until_healthy(
    base_url: str, process: subprocess.Popen, log_path: Path, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"server at {base_url} did not answer /health within {timeout} s")


@pytest.fixture(scope="module")
def live_server(backend, tmp_path_factory, request) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp(f"fuzz-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        home = build_trained_home(store, settings, END, pairs=PAIRS)
        spare = home.registry.register(
            train_from_store(
                store, "vader", "logistic_regression", clock=home.clock, settings=settings
            ),
            created_by="test",
            reason="a registered version to promote",
        )
        store.close()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
        env.update(
            BTCMLOPS_HOME=str(settings.home),
            BTCMLOPS_DATABASE_URL=url,
            BTCMLOPS_NOW=END.isoformat(),
            BTCMLOPS_API_KEY=API_KEY,
        )
        log_path = folder / "server.log"
        # No scheduler: its wall-clock jobs would change the store under the fuzzer at random.
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "btcmlops", "serve", "--port", str(port), "--no-scheduler"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base_url, process, log_path)
            yield LiveServer(base_url, url, backend, process, log_path, spare.version)
        finally:
            process.terminate()
            process.wait(timeout=60)


def fuzz_config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"X-API-Key": API_KEY},
            "generation": {
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
                "mode": "all",
            },
            "operations": [
                {
                    "include-path": path,
                    "generation": {"max-examples": examples},
                    "phases": {"coverage": {"enabled": False}},
                }
                for path, examples in EXPENSIVE.items()
            ],
        }
    )


def served_openapi_document() -> dict:
    """The OpenAPI document ``btcmlops serve`` publishes, built without starting anything.

    Schemathesis parametrises tests when the module is collected, before any server runs;
    ``test_the_fuzzed_schema_is_the_one_the_server_publishes`` checks it is the same
    document the live server answers at ``/openapi.json``.
    """
    from btcmlops.context import AppContext
    from btcmlops.server import build_app

    settings = Settings(home=Path("unused-home"), _env_file=None)
    return build_app(AppContext.from_settings(settings)).openapi()


schema = schemathesis.openapi.from_dict(served_openapi_document(), config=fuzz_config())


@schema.parametrize()
def test_fuzzed_requests_get_no_5xx_and_only_declared_answers(case, live_server):
    response = case.call(base_url=live_server.base_url, timeout=120)
    live_server.answered[(case.method.upper(), case.path)].append(response.status_code)
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzed_schema_is_the_one_the_server_publishes(live_server):
    published = httpx.get(f"{live_server.base_url}/openapi.json", timeout=30).json()
    assert published == served_openapi_document()


# Operations whose random inputs all fail a domain check, with why; each is called with a
# valid value instead, so it is still shown to work (and was still fuzzed with hostile text).
NAMED_INPUTS = {
    ("GET", "/drift/distribution"): "feature must name one of the set's features; random "
    "strings never do (422 naming the feature)",
}


def test_the_fuzz_run_reached_every_operation_past_validation(live_server):
    """Every operation of the schema was fuzzed, and at least one request of each got past
    input validation and authentication (a 2xx, or a domain answer such as 404 or 409).

    It reads what the fuzz test above recorded (pytest runs a module's tests in order)."""
    document = httpx.get(f"{live_server.base_url}/openapi.json").json()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations, "the schema lists no operations"
    unreached = sorted(operations - set(live_server.answered))
    assert not unreached, f"never fuzzed: {unreached}"
    only_refused = {
        operation: sorted(set(live_server.answered[operation]))
        for operation in operations - set(NAMED_INPUTS)
        if all(code in (401, 422) for code in live_server.answered[operation])
    }
    assert not only_refused, f"no fuzzed request got past validation: {only_refused}"
    feature = feature_names("vader")[0]
    shown = httpx.get(
        f"{live_server.base_url}/drift/distribution",
        params={"feature": feature, "feature_set": "vader"},
        timeout=60,
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["success"] is True


def test_operation_ids_are_unique(live_server):
    """OpenAPI requires unique operationIds; GET / maps them to paths and would lose some."""
    document = httpx.get(f"{live_server.base_url}/openapi.json").json()
    seen: dict[str, list[str]] = defaultdict(list)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            seen[operation["operationId"]].append(f"{method.upper()} {path}")
    duplicated = {name: where for name, where in seen.items() if len(where) > 1}
    assert not duplicated, f"duplicate operationIds: {duplicated}"


def test_state_changing_operations_refuse_callers_without_the_key(live_server):
    document = httpx.get(f"{live_server.base_url}/openapi.json").json()
    posts = {("POST", path) for path, item in document["paths"].items() if "post" in item}
    # Every POST but the two prediction endpoints and the drift comparison of two tables
    # changes state, and each is guarded.
    reads = {("POST", "/predict"), ("POST", "/predict/both"), ("POST", "/drift/compare")}
    assert posts - reads == STATE_CHANGING
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        for method, path in sorted(STATE_CHANGING):
            url = path.replace("{prediction_id}", "1")
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
                answer = client.request(
                    method, url, params={"feature_set": "vader"}, json={"actual_direction": 1},
                    headers=headers,
                )  # fmt: skip
                assert answer.status_code == 401, (path, headers, answer.text)
                body = answer.json()
                assert body["success"] is False and body["error"] == "AuthenticationError"
        # The right key as a Bearer token is accepted too (reload changes nothing here).
        reload = client.post(
            "/models/reload",
            params={"feature_set": "vader", "model_type": "random_forest"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert reload.status_code == 200, reload.text
        # Reads stay open without a key (BTCMLOPS_PROTECT_READS is not set).
        for path in ("/models", "/predictions/recent", "/retrain/history", "/drift/history"):
            assert client.get(path).status_code == 200, path


SQL_VALUES = (
    "1 OR 1=1",
    "'; DROP TABLE prediction_logs; --",
    "' OR '1'='1",
    "1; DELETE FROM model_versions",
    '" OR ""="',
    "vader' --",
)


def settle(live_server: LiveServer, timeout: float = 180) -> None:
    """Wait until no retraining runs: ``async=true`` examples of the fuzz run left jobs in
    the background, and they register models while they finish."""
    deadline = time.monotonic() + timeout
    while True:
        runs = httpx.get(
            f"{live_server.base_url}/retrain/history", params={"limit": 500}, timeout=60
        ).json()["runs"]
        if all(run["status"] != "running" for run in runs):
            return
        assert time.monotonic() < deadline, "retraining jobs still running"
        time.sleep(0.5)


def table_state(database_url: str) -> dict[str, object]:
    """Row counts and champion pointers, read straight from the database."""
    store = Store.open(database_url, upgrade=False)
    try:
        names = set(inspect(store.engine).get_table_names())
        assert set(Base.metadata.tables) <= names, "a table disappeared"
        with store.session() as session:
            champions = session.execute(
                select(ModelVersion.feature_set, ModelVersion.model_type, ModelVersion.version)
                .where(ModelVersion.status == "champion")
                .order_by(ModelVersion.feature_set, ModelVersion.model_type)
            ).all()
            return {
                "prediction_logs": session.scalar(select(func.count()).select_from(PredictionLog)),
                "model_versions": session.scalar(select(func.count()).select_from(ModelVersion)),
                "champions": [tuple(row) for row in champions],
            }
    finally:
        store.close()


def call(live_server: LiveServer, method: str, path: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    """One request with the API key, on a connection of its own (a 5xx closes the one it
    came on, which would turn the next request into a connection reset)."""
    with httpx.Client(
        base_url=live_server.base_url, headers={"X-API-Key": API_KEY}, timeout=60
    ) as client:
        return client.request(method, path, **kwargs)


def unexpected(answers: list[httpx.Response], allowed: tuple[int, ...]) -> list[str]:
    return [
        f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text[:160]}"
        for answer in answers
        if answer.status_code not in allowed
    ]


def test_sql_looking_path_and_query_values_are_refused_or_treated_as_data(live_server):
    settle(live_server)
    answer = call(live_server, "POST", "/predict", params={"feature_set": "vader"})
    assert answer.is_success
    # The log writer stores predictions in the background: wait for this one, or it could
    # land between the two snapshots below.
    stored_path = f"/predictions/{answer.json()['prediction_id']}"
    deadline = time.monotonic() + 30
    while call(live_server, "GET", stored_path).status_code != 200:
        assert time.monotonic() < deadline, "the prediction was never stored"
        time.sleep(0.1)
    before = table_state(live_server.database_url)
    refused, looked_up, echoed = [], [], []
    for value in SQL_VALUES:
        quoted = quote(value, safe="")
        # Typed values (ids, enums, numbers) are refused before any handler runs.
        refused += [
            call(live_server, "GET", f"/predictions/{quoted}"),
            call(
                live_server, "POST", f"/predictions/{quoted}/outcome", json={"actual_direction": 1}
            ),
            call(live_server, "GET", "/predictions/recent", params={"limit": value}),
            call(live_server, "GET", "/predictions/recent", params={"feature_set": value}),
            call(live_server, "GET", "/models/versions", params={"model_type": value}),
            call(live_server, "GET", "/drift/history", params={"days": value}),
            call(live_server, "POST", "/predict", params={"feature_set": value}),
            call(live_server, "POST", "/retrain/execute", params={"feature_set": value}),
        ]
        # Free text (a job id, a version, a feature name) is looked up as data: not found,
        # and the answer names the value as it was given (or refused by a declared pattern).
        lookups = [
            call(live_server, "GET", f"/retrain/jobs/{quoted}"),
            call(live_server, "POST", "/models/promote", params={"version": value}),
            call(live_server, "GET", "/drift/distribution", params={"feature": value}),
        ]
        looked_up += lookups
        echoed += [
            f"{answer.request.url}: {answer.text[:160]}"
            for answer in lookups
            if answer.status_code == 404 and value not in answer.json()["detail"]
        ]
    after = table_state(live_server.database_url)
    problems = unexpected(refused, (422,)) + unexpected(looked_up, (404, 422)) + echoed
    assert not problems, "\n".join(problems)
    assert all(answer.json()["error"] == "InvalidInputError" for answer in refused)
    assert after == before
    assert before["prediction_logs"] >= 1 and len(before["champions"]) >= len(PAIRS)


def test_nul_and_control_characters_in_text_values_are_refused_or_not_found(live_server):
    """Text values are looked up as data (404) or refused (422), never a 5xx; a NUL is refused
    before it is stored (PostgreSQL cannot store one, SQLite would)."""
    settle(live_server)
    before = table_state(live_server.database_url)
    looked_up = []
    for value in ("nul\x00byte", "\x00", "bell\x07 and escape\x1b[31m"):
        looked_up += [
            call(live_server, "GET", f"/retrain/jobs/{quote(value, safe='')}"),
            call(live_server, "POST", "/models/promote", params={"version": value}),
            call(live_server, "GET", "/drift/distribution", params={"feature": value}),
            call(live_server, "GET", "/predictions/recent", params={"feature_set": value}),
        ]
    stored = call(
        live_server,
        "POST",
        "/models/promote",
        params={"version": live_server.spare_version, "reason": "why\x00not"},
    )
    problems = unexpected(looked_up, (404, 422)) + unexpected([stored], (422,))
    after = table_state(live_server.database_url)
    assert not problems, "\n".join(problems)
    assert after == before  # the same champions: the spare version was not promoted


def test_the_server_logged_no_unhandled_error_and_lost_nothing(live_server):
    """Nothing above reached the catch-all handler (it logs 'unhandled error') or broke a
    background thread (a traceback in the log)."""
    assert live_server.process.poll() is None, "the server died during the fuzz run"
    log = live_server.log_path.read_text(errors="replace")
    assert "unhandled error" not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]
    health = httpx.get(f"{live_server.base_url}/health", timeout=30).json()
    assert health["status"] in ("healthy", "degraded"), health
    assert health["components"]["prediction_logging"]["lost"] == 0
