"""The store object every layer receives: an engine plus a session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from btcmlops.db import migrate
from btcmlops.db.engine import check_connection, make_engine, session_scope


class Store:
    """A database connection pool with btcmlops' schema on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, pool_size: int = 5) -> Store:
        """Connect to ``url`` and make sure its schema is this code's schema.

        A fresh or older database is upgraded (``upgrade=True``); a newer one is refused with
        :class:`~btcmlops.errors.SchemaTooNewError`. An unreachable one raises
        :class:`~btcmlops.errors.StoreUnavailableError`.
        """
        engine = make_engine(url, pool_size=pool_size)
        try:
            check_connection(engine)
            if upgrade:
                migrate.upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with session_scope(self._sessions) as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in one transaction, committed when the block ends, rolled back
        if it raises: for the hot paths that run prepared statements and need no ORM session
        (half the overhead of :meth:`session`)."""
        with self.engine.begin() as connection:
            yield connection

    def ping(self) -> None:
        check_connection(self.engine)

    def close(self) -> None:
        self.engine.dispose()
