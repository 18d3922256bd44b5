"""Engines and sessions for SQLite (default, WAL mode) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from btcmlops.config import mask_url
from btcmlops.errors import ConfigurationError, StoreUnavailableError


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create an engine for ``url``, configured for how btcmlops uses each backend."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL {mask_url(url)!r}: {exc}") from exc

    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine

    try:
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args=_connect_args(parsed.get_backend_name()),
        )
    except (ArgumentError, ImportError) as exc:
        raise ConfigurationError(f"unsupported database URL {mask_url(url)!r}: {exc}") from exc


def _connect_args(backend: str) -> dict[str, object]:
    if backend == "postgresql":
        return {"connect_timeout": 5}
    return {}


def _configure_sqlite_connection(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the API) run while the writer (logging, jobs) commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def check_connection(engine: Engine) -> None:
    """Run a trivial query; raise :class:`StoreUnavailableError` naming the (masked) URL."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreUnavailableError(
            f"cannot reach the database at {mask_url(engine.url.render_as_string(False))}: {reason}"
        ) from exc


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        # a dropped connection fails the rollback too: the first error is the one to raise
        with suppress(SQLAlchemyError):
            session.rollback()
        raise
    finally:
        session.close()
