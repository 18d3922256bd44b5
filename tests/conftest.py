"""Shared fixtures. Every test that touches the store runs on SQLite and, when
``BTCMLOPS_TEST_POSTGRES_URL`` is set, on PostgreSQL too (each test in its own schema, named
after the xdist worker that made it: workers never touch each other's).

Helpers that tests call directly are in ``support.py``; tests never import this module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.store import Store

# Estimators and BLAS must not fight over the two shared cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# After the limits above: support loads numpy and scikit-learn, which read them once.
from support import BACKENDS, CLONED_SCHEMAS, IN_CI, POSTGRES_URL, fresh_database


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The PostgreSQL URL, after checking the server answers (fail in CI, skip elsewhere)."""
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        message = f"PostgreSQL at {make_url(POSTGRES_URL)!r} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database that each test copies (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    Store.open(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session", autouse=True)
def _drop_cloned_schemas() -> Iterator[None]:
    """Drop the schemas this process cloned (each xdist worker only its own, ``t_gw<N>_...``)."""
    yield
    if CLONED_SCHEMAS and POSTGRES_URL:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for schema in CLONED_SCHEMAS:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A URL to an empty database of the current backend, removed after the test."""
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, tmp_path, admin) as url:
        yield url


@pytest.fixture
def database_url(backend: str, empty_database_url: str, request: pytest.FixtureRequest) -> str:
    """A URL to a database already at the head schema."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, make_url(empty_database_url).database)
    return empty_database_url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def start_time() -> datetime:
    return parse_utc("2024-01-01T00:00:00Z")


@pytest.fixture
def clock(start_time: datetime) -> ManualClock:
    return ManualClock(start_time)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, _env_file=None)


@pytest.fixture
def app_context(settings: Settings, clock: ManualClock, store: Store) -> Iterator[AppContext]:
    context = AppContext(settings=settings, clock=clock, _store=store)
    yield context
