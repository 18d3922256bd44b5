"""Helpers the serving and logging benchmarks share.

A temporary store (a SQLite file, or a dedicated PostgreSQL schema that is dropped
afterwards), the zero-loss check of logged predictions, percentiles, CPU accounting from
``/proc`` and the JSON results under ``bench/out/`` (git-ignored). The trained home and the
free port come from :mod:`btcmlops.testing`, the building blocks the tests use too.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import distinct, func, select
from sqlalchemy.engine import make_url

from btcmlops.clock import parse_utc
from btcmlops.db.models import PredictionLog
from btcmlops.db.store import Store
from btcmlops.testing import scratch_database

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
# Fixed, so every run simulates, trains and serves the same world.
END = parse_utc("2024-03-01T00:00:00Z")
# SQLite refuses statements with more than 32,766 bound parameters; stay well below.
_IDS_PER_QUERY = 5_000


# ------------------------------------------------------------------------------ stores


def temporary_database(
    folder: Path, postgres_url: str | None = None
) -> AbstractContextManager[str]:
    """A URL to an empty database for as long as the block runs: a SQLite file in
    ``folder``, or a schema ``bench_<random>`` on ``postgres_url``, dropped at the end."""
    return scratch_database(folder, postgres_url, schema_prefix="bench_")


def backend_name(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


# --------------------------------------------------------------------- zero-loss check


@dataclass(frozen=True)
class ZeroLossCheck:
    """Returned prediction ids against the rows stored under those ids.

    ``duplicated`` counts ids handed out more than once (two answers sharing an id: the
    second record would be dropped by the primary key) plus stored rows beyond one per id.
    """

    returned: int
    stored: int
    missing: int
    duplicated: int

    @property
    def passed(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.stored == self.returned

    def line(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"zero-loss check: {self.returned} returned, {self.stored} stored, "
            f"{self.missing} missing, {self.duplicated} duplicated ({verdict})"
        )


def stored_prediction_counts(store: Store, ids: Iterable[int]) -> tuple[int, int]:
    """``count(*)`` and ``count(DISTINCT id)`` of the prediction rows with these ids."""
    unique = sorted(set(ids))
    total = distinct_total = 0
    with store.session() as session:
        for start in range(0, len(unique), _IDS_PER_QUERY):
            chunk = unique[start : start + _IDS_PER_QUERY]
            rows, distinct_rows = session.execute(
                select(func.count(), func.count(distinct(PredictionLog.id))).where(
                    PredictionLog.id.in_(chunk)
                )
            ).one()
            total += int(rows)
            distinct_total += int(distinct_rows)
    return total, distinct_total


def check_zero_loss(store: Store, ids: Sequence[int]) -> ZeroLossCheck:
    """Every returned id present exactly once in ``prediction_logs``."""
    unique = len(set(ids))
    rows, distinct_rows = stored_prediction_counts(store, ids)
    return ZeroLossCheck(
        returned=len(ids),
        stored=distinct_rows,
        missing=unique - distinct_rows,
        duplicated=(len(ids) - unique) + (rows - distinct_rows),
    )


def prediction_rows(store: Store) -> int:
    with store.session() as session:
        return int(session.execute(select(func.count()).select_from(PredictionLog)).scalar_one())


# ------------------------------------------------------------------------------ numbers


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99, max and mean of durations given in seconds, in milliseconds."""
    if len(seconds) == 0:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    values = np.asarray(seconds, dtype=float) * 1000.0
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }


def format_ms(value: float | None, width: int = 8) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}.2f}" if value < 100 else f"{value:>{width}.0f}"


# ---------------------------------------------------------------------- CPU accounting

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (``/proc/stat``), or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def process_tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its live descendants (uvicorn's workers)."""
    stats: dict[int, tuple[int, float]] = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name may contain spaces; the fields after its closing ")" do not.
        after = raw.rsplit(")", 1)[1].split()
        parent, utime, stime = int(after[1]), int(after[11]), int(after[12])
        stats[int(entry)] = (parent, (utime + stime) / _TICKS)
    if pid not in stats:
        return None
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in stats.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(stats[member][1] for member in tree)


@dataclass
class CpuWindow:
    """CPU used by the machine, the server tree and the generator over one run."""

    wall_seconds: float
    machine_cores: float | None
    server_cores: float | None
    generator_cores: float | None

    @property
    def other_cores(self) -> float | None:
        """What the rest of the (shared) machine used: busy minus server minus generator."""
        if None in (self.machine_cores, self.server_cores, self.generator_cores):
            return None
        return max(0.0, self.machine_cores - self.server_cores - self.generator_cores)  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "other_cores": self.other_cores}


# ------------------------------------------------------------------------------ results


def environment() -> dict[str, Any]:
    """What a reader needs to judge the numbers: machine, Python, load before the run."""
    return {
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as ``bench/out/<name>-<local time>.json`` and return the path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
