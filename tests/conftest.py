"""Shared fixtures. Every test that touches the store runs on SQLite and, when
``BTCMLOPS_TEST_POSTGRES_URL`` is set, on PostgreSQL too (each test in its own schema)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from btcmlops.clock import ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.store import Store

POSTGRES_URL = os.environ.get("BTCMLOPS_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Estimators and BLAS must not fight over the two shared cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


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


@contextmanager
def fresh_database(backend: str, folder: Path, admin_url: str | None) -> Iterator[str]:
    """An empty database of ``backend`` for as long as the block runs (any fixture scope)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'btcmlops.db'}"
        return
    assert admin_url is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def clone_database(backend: str, source_url: str, folder: Path, admin_url: str | None) -> str:
    """A copy of the database at ``source_url`` (schema and rows) in a new database/schema.

    Lets a module build an expensive store once and give every test its own copy.
    """
    if backend == "sqlite":
        target = folder / "btcmlops.db"
        source = Store.open(source_url, upgrade=False)
        try:
            with source.engine.connect() as connection:
                connection.exec_driver_sql(f"VACUUM INTO '{target}'")
        finally:
            source.close()
        return f"sqlite:///{target}"
    assert admin_url is not None
    from btcmlops.db.models import Base

    source_schema = make_url(source_url).query["options"].split("=", 1)[1]
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    _CLONED_SCHEMAS.append(schema)
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    Store.open(url_text).close()  # migrations create the tables and their own sequences
    try:
        with admin.begin() as connection:
            for table in Base.metadata.sorted_tables:
                name = table.name
                connection.execute(
                    text(
                        f'INSERT INTO "{schema}"."{name}" SELECT * FROM "{source_schema}"."{name}"'
                    )
                )
                if "id" in table.c and table.c.id.autoincrement is not False:
                    connection.execute(
                        text(
                            f'SELECT setval(pg_get_serial_sequence(\'"{schema}"."{name}"\', '
                            f'\'id\'), COALESCE((SELECT max(id) FROM "{schema}"."{name}"), 0) + 1, '
                            "false)"
                        )
                    )
    finally:
        admin.dispose()
    return url_text


_CLONED_SCHEMAS: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_cloned_schemas() -> Iterator[None]:
    yield
    if _CLONED_SCHEMAS and POSTGRES_URL:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for schema in _CLONED_SCHEMAS:
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
