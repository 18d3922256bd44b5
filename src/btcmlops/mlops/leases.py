"""Named, expiring locks in the store: one retraining per pair, one scheduler per deployment.

A lease is a row in ``leases``. Acquiring is one conditional upsert::

    INSERT ... ON CONFLICT (name) DO UPDATE SET holder = ..., expires_at = ...
    WHERE leases.expires_at < now OR leases.holder = me

so it is atomic on SQLite and PostgreSQL alike, across threads and processes. A holder that
dies stops renewing and its lease lapses after ``ttl``; a live holder renews it. Lease time is
real time (a :class:`~btcmlops.clock.SystemClock` by default), never the domain clock: a
replay that jumps the domain clock by hours must not expire a lock held a second ago.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from btcmlops.clock import Clock, SystemClock
from btcmlops.db.models import Lease
from btcmlops.db.store import Store


def process_holder_id() -> str:
    """A holder id unique to this process (and readable in the leases table)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    job_id: str | None
    acquired_at: datetime
    expires_at: datetime


class Leases:
    """Acquire, renew and release named leases for one holder."""

    def __init__(self, store: Store, holder: str | None = None, wall: Clock | None = None):
        self.store = store
        self.holder = holder or process_holder_id()
        self.wall = wall or SystemClock()

    def acquire(self, name: str, ttl: timedelta, *, job_id: str | None = None) -> bool:
        """Take ``name`` if it is free, lapsed or already ours; True when we hold it now."""
        now = self.wall.now()
        values = {
            "name": name,
            "holder": self.holder,
            "job_id": job_id,
            "acquired_at": now,
            "expires_at": now + ttl,
        }
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        insert = dialect.insert(Lease).values(values)
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": insert.excluded.holder,
                "job_id": insert.excluded.job_id,
                "acquired_at": insert.excluded.acquired_at,
                "expires_at": insert.excluded.expires_at,
            },
            where=(Lease.expires_at < now) | (Lease.holder == self.holder),
        )
        with self.store.session() as session:
            session.execute(statement)
            holder = session.scalar(select(Lease.holder).where(Lease.name == name))
        return holder == self.holder

    def renew(self, name: str, ttl: timedelta) -> bool:
        """Extend our lease; False if it is no longer ours (it lapsed and someone took it)."""
        with self.store.session() as session:
            result = session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == self.holder)
                .values(expires_at=self.wall.now() + ttl)
            )
            return bool(result.rowcount)

    def release(self, name: str) -> None:
        with self.store.session() as session:
            session.execute(delete(Lease).where(Lease.name == name, Lease.holder == self.holder))

    def current(self, name: str) -> LeaseInfo | None:
        """The live lease on ``name`` (any holder), or None when free or lapsed."""
        with self.store.session() as session:
            row = session.get(Lease, name)
            if row is None or row.expires_at < self.wall.now():
                return None
            return LeaseInfo(row.name, row.holder, row.job_id, row.acquired_at, row.expires_at)

    @contextmanager
    def held(self, name: str, ttl: timedelta, *, job_id: str | None = None) -> Iterator[bool]:
        """Hold ``name`` for the block, renewing it in the background; yields whether we got it."""
        if not self.acquire(name, ttl, job_id=job_id):
            yield False
            return
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(ttl.total_seconds() / 3):
                try:
                    self.renew(name, ttl)
                except Exception:  # a failed renewal is retried; the lease may lapse
                    continue

        thread = threading.Thread(target=heartbeat, name=f"lease:{name}", daemon=True)
        thread.start()
        try:
            yield True
        finally:
            stop.set()
            thread.join(timeout=5)
            self.release(name)
