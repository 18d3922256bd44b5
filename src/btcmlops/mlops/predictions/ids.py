"""Prediction ids a serving process assigns without waiting for the store.

An id is a 53-bit integer (exact in JavaScript and JSON clients)::

    [ 32 bits: seconds since 2024-01-01 UTC | 8 bits: node | 13 bits: sequence ]

Each serving process registers itself in ``worker_nodes`` at start-up and uses its row id
modulo 256 as its node, so several workers never share a node unless 256 processes start
while an older one still runs. Within a process a lock-protected sequence gives 8,192 ids per
second; past that the generator borrows the next second, so ids stay unique and increasing.

The seconds come from the real wall clock on purpose, not the domain clock: ids must be
unique in real time even while the domain clock is pinned or replaying history.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime

from btcmlops.clock import Clock
from btcmlops.db.models import WorkerNode
from btcmlops.db.store import Store

EPOCH = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
NODE_BITS = 8
SEQUENCE_BITS = 13
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_NODE = (1 << NODE_BITS) - 1


class PredictionIdGenerator:
    """Thread-safe generator of unique, increasing 53-bit ids for one process."""

    def __init__(self, node: int, wall_seconds=time.time) -> None:  # type: ignore[no-untyped-def]
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node must be in [0, {MAX_NODE}], got {node}")
        self.node = node
        self._wall_seconds = wall_seconds
        self._lock = threading.Lock()
        self._second = 0
        self._sequence = -1

    def next_id(self) -> int:
        with self._lock:
            now = max(int(self._wall_seconds()) - EPOCH, self._second)
            if now > self._second:
                self._second, self._sequence = now, 0
            elif self._sequence < MAX_SEQUENCE:
                self._sequence += 1
            else:  # 8,192 ids this second already: borrow the next second
                self._second, self._sequence = self._second + 1, 0
            return (
                (self._second << (NODE_BITS + SEQUENCE_BITS))
                | (self.node << SEQUENCE_BITS)
                | self._sequence
            )


def register_node(store: Store, clock: Clock) -> int:
    """Record this process in ``worker_nodes`` and return its node number (0-255)."""
    with store.session() as session:
        row = WorkerNode(
            hostname=socket.gethostname()[:255], pid=os.getpid(), started_at=clock.now()
        )
        session.add(row)
        session.flush()
        return row.id % (MAX_NODE + 1)
