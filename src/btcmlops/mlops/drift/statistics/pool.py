"""The worker threads of the drift statistics: one pool of two threads per process.

Sorting, the KS statistic of large samples and the exact KS p-values split their work into
independent items (blocks of rows, groups of band recursions) and run them here; numpy
releases the GIL in sorts and matrix products, so two threads keep two cores busy.

>>> done = []
>>> run_all(done.append, range(3))
>>> sorted(done)
[0, 1, 2]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TypeVar

from threadpoolctl import ThreadpoolController

Item = TypeVar("Item")

WORKER_THREADS = max(1, min(2, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_BLAS = ThreadpoolController()


def one_blas_thread() -> AbstractContextManager[object]:
    """A context in which BLAS runs on one thread (for code that runs on the worker threads)."""
    return _BLAS.limit(limits=1, user_api="blas")


def run_all(task: Callable[[Item], object], items: Iterable[Item]) -> None:
    """``task(item)`` for every item, on the process's worker threads (two at most).

    One pool for the process, created on first use (starting threads costs about 0.4 ms
    each, more than a small check's whole KS step); a forked child starts a new one.
    """
    global _POOL
    items = list(items)
    if len(items) < 2 or WORKER_THREADS < 2:
        for item in items:
            task(item)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="drift")
    list(_POOL.map(task, items))


def _forget_pool() -> None:
    global _POOL
    _POOL = None  # the parent's threads do not exist in a forked child


os.register_at_fork(after_in_child=_forget_pool)
