"""Helpers tests share (fixtures live in ``conftest.py``; tests import helpers from here).

The pieces the benchmarks need too (a free port, a scratch database, a trained home built from
the simulated market) live in :mod:`btcmlops.testing`; this module adds what only tests use:
the backends under test, databases per backend, cloning a database, reopening a home,
synthetic feature rows, the features a drift check's message calls bounded.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from btcmlops.clock import HOUR, ManualClock
from btcmlops.db.models import FeatureRow, ModelVersion
from btcmlops.db.store import Store
from btcmlops.features.schema import FEATURE_VERSION, feature_names, monitored_feature_names
from btcmlops.mlops.predictions.ids import MAX_NODE, SEQUENCE_BITS
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.testing import LOCALHOST, TrainedHome, scratch_database

POSTGRES_URL = os.environ.get("BTCMLOPS_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The pytest-xdist worker running this process ("gw0", "gw1", ...), or "main" without xdist.
# It names every PostgreSQL schema a test makes, so a leftover schema tells whose it was.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
WORKER_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
SCHEMA_PREFIX = f"t_{WORKER}_"

# Schemas made by clone_database in this process; conftest drops them when the session ends
# (each xdist worker its own: the list is per process).
CLONED_SCHEMAS: list[str] = []


# ------------------------------------------------------------------------------ databases


@contextmanager
def fresh_database(backend: str, folder: Path, admin_url: str | None) -> Iterator[str]:
    """An empty database of ``backend`` for as long as the block runs (any fixture scope)."""
    if backend == "sqlite":
        admin_url = None
    else:
        assert admin_url is not None
    with scratch_database(folder, admin_url, schema_prefix=SCHEMA_PREFIX) as url:
        yield url


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
    schema = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    CLONED_SCHEMAS.append(schema)
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


# --------------------------------------------------------------------------- feature rows


def store_feature_rows(
    store: Store,
    start: datetime,
    hours: int,
    *,
    seed: int,
    shift: float = 0.0,
    shifted_features: int = 10,
    feature_set: str = "vader",
) -> list[str]:
    """``hours`` hourly feature rows from ``start``, every value independent N(0, 1); the
    first ``shifted_features`` monitored features moved by ``shift``. Returns those names."""
    rng = np.random.default_rng(seed)
    names = feature_names(feature_set)
    moved = monitored_feature_names(feature_set)[:shifted_features]
    rows = []
    for i in range(hours):
        values = dict(zip(names, rng.normal(size=len(names)).tolist(), strict=True))
        for name in moved:
            values[name] += shift
        rows.append(
            FeatureRow(
                feature_set=feature_set,
                feature_version=FEATURE_VERSION,
                ts=start + i * HOUR,
                close=40_000.0,
                feature_values=values,
                missing_count=0,
                built_at=start + (i + 1) * HOUR,
            )
        )
    with store.session() as session:
        session.add_all(rows)
    return moved


def same_bits(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """The two frames hold bit-for-bit the same values (NaN equal to NaN, -0.0 not 0.0)."""
    return left.to_numpy().tobytes() == right.to_numpy().tobytes()


# --------------------------------------------------------------------------- drift checks


def bounded_in_message(message: str, tested: Iterable[str]) -> set[str]:
    """The tested features whose KS p-value a drift check's ``message`` calls a certified
    upper bound: it names the bounded features, or the exact ones when those are fewer."""
    named = re.search(r"tested features \(([^)]*)\)", message)
    if not message.startswith("ks_pvalue is") or named is None:
        return set()
    listed = set(named.group(1).split(", ")) - {"none"}
    if message.startswith("ks_pvalue is a certified upper bound"):
        return listed
    return set(tested) - listed


def bounded_and_exact_frames(seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current features whose KS p-values are certified bounds but one: at
    168 x 24 rows (168 = 7 x 24) a p-value starts as a bound, and "shifted" (moved 2 sd) and
    the calm ones are decided by it; "gappy" misses a reference value, and at 167 x 24 rows
    its p-value is computed exactly."""
    rng = np.random.default_rng(seed)
    names = ["calm", "quiet", "steady", "shifted", "gappy"]
    reference = pd.DataFrame(rng.normal(size=(168, len(names))), columns=names)
    current = pd.DataFrame(rng.normal(size=(24, len(names))), columns=names)
    current["shifted"] += 2.0
    reference.loc[0, "gappy"] = np.nan
    return reference, current


# ---------------------------------------------------------------------------------- homes


def reopen_home(url: str, home_dir, template: TrainedHome, end: datetime) -> TrainedHome:
    """A :class:`TrainedHome` over a cloned database and a copied home folder."""
    store = Store.open(url)
    settings = template.settings.model_copy(update={"home": home_dir, "database_url": url})
    clock = ManualClock(end)
    registry = ModelRegistry(store, settings.artifacts_dir, clock)
    champions = {pair: registry.get(info.version) for pair, info in template.champions.items()}
    return TrainedHome(store, clock, settings, registry, champions, template.simulator)


# ------------------------------------------------------------------- waiting and servers

# Ports for the servers tests start: below Linux's ephemeral range (32768-60999), so no
# outgoing connection and no bind to port 0 (btcmlops.testing.free_port) can take one in the
# moment between choosing it and the server binding it, or while a TcpProxy is down; and each
# xdist worker draws from its own slice, so two workers never choose the same port.
TEST_PORTS = range(10_000, 32_000)
_PORTS_HANDED_OUT: set[int] = set()
# Seeded by the OS, not by the test: two test runs on one machine should not try the same
# ports in the same order.
_PORT_ORDER = random.Random()


def free_port() -> int:
    """A port on 127.0.0.1, free a moment ago, from this worker's slice of ``TEST_PORTS``;
    never the same one twice in a session."""
    index = int(WORKER[2:]) if WORKER.startswith("gw") else 0
    size = len(TEST_PORTS) // max(WORKER_COUNT, index + 1)
    mine = TEST_PORTS[index * size : (index + 1) * size]
    for port in _PORT_ORDER.sample(mine, len(mine)):
        if port in _PORTS_HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((LOCALHOST, port))
            except OSError:
                continue  # someone listens there (another service, another test run)
        _PORTS_HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port left in {mine}")


def wait_until(
    condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_until_listening(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the server ``process`` answers ``GET {base}/health`` with 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stdout.read().decode()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError("server did not start")


def node_of(prediction_id: int) -> int:
    """The worker node a prediction id embeds (``mlops.predictions.ids``)."""
    return (prediction_id >> SEQUENCE_BITS) & MAX_NODE


def registry_row(
    version: str, status: str, created_at: datetime, pair=("vader", "random_forest")
) -> ModelVersion:
    """A registry row without an artifact, for tests whose code reads the rows only."""
    return ModelVersion(
        version=version,
        feature_set=pair[0],
        model_type=pair[1],
        status=status,
        artifact_path=f"{version}.skops",
        artifact_sha256="0" * 64,
        feature_version=FEATURE_VERSION,
        feature_names=[],
        metrics={},
        windows={},
        hyperparameters={},
        library_versions={},
        created_at=created_at,
        created_by="test",
    )
