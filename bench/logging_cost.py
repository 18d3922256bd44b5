"""Benchmark: what prediction logging costs a request, and how fast its writer stores records.

    .venv/bin/python bench/logging_cost.py [--quick] [--calls 100000] [--records 50000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

In-process, no HTTP. Each record is what ``/predict`` logs: the full 108-feature VADER row
(a few values missing), probabilities, model version, timings, prices.

1. Request path: ``PredictionLogger.log_prediction`` per call (id generation, record, queue
   put), timed one call at a time. Once with the writer thread idle (the call alone) and once
   with it draining meanwhile, as in a server, where the writer competes for the GIL.
   Target: at most 0.2 ms per prediction. Rare outliers of tens to hundreds of
   milliseconds are the garbage collector walking the queued records or the process being
   descheduled on the shared machine; p99.9 shows whether they matter.
2. Writer throughput: records per second from enqueue to committed. "Enqueue while writing":
   the writer runs while this thread logs the records as fast as it can; the clock stops when
   ``flush()`` says every record has left the queue. "Drain a full queue": the records are
   queued first and the writer started afterwards. Target: at least 5,000 records/s into
   SQLite. CPU per record (this process's CPU over the window / records) bounds the rate a
   free core could reach. Each is followed by the zero-loss check against the store.
3. The feature snapshots the records point to: how many are stored, and their size.

SQLite by default (a temporary file); with ``--database-url`` a dedicated PostgreSQL schema
is created for the run and dropped afterwards. Both when ``--both`` is given with the URL.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import String, cast, func, select

from btcmlops.clock import HOUR, SystemClock
from btcmlops.config import Settings
from btcmlops.db.models import FeatureSnapshot, PredictionLog
from btcmlops.db.store import Store
from btcmlops.features.schema import feature_names
from btcmlops.mlops.predictions.ids import PredictionIdGenerator
from btcmlops.mlops.predictions.writer import PredictionLogger
from common import (
    END,
    backend_name,
    check_zero_loss,
    environment,
    percentiles_ms,
    temporary_database,
    write_results,
)

REQUEST_PATH_TARGET_MS = 0.2
WRITER_TARGET_PER_SECOND = 5_000


def realistic_features(seed: int = 5) -> dict[str, float | None]:
    """A VADER feature row: 108 named values, about 3 % of them missing."""
    rng = random.Random(seed)
    return {
        name: None if rng.random() < 0.03 else rng.gauss(0.0, 1.0)
        for name in feature_names("vader")
    }


class RecordSource:
    """The keyword arguments of one ``log_prediction`` call, varied a little per call."""

    def __init__(self) -> None:
        self.features = realistic_features()  # one dict shared by every call, as in serving
        self.feature_ts = END - HOUR

    def kwargs(self, index: int) -> dict[str, Any]:
        probability_up = 0.3 + (index % 400) / 1000.0
        return {
            "feature_set": "vader",
            "model_type": "random_forest",
            "model_version": "vader-random_forest-20240301T000000-bench",
            "prediction": int(probability_up > 0.5),
            "probability_down": 1.0 - probability_up,
            "probability_up": probability_up,
            "confidence": max(probability_up, 1.0 - probability_up),
            "features": self.features,
            "response_time_ms": 0.4,
            "cached_features": True,
            "bitcoin_price": 51_234.5,
            "feature_ts": self.feature_ts,
        }


def new_logger(store: Store, settings: Settings, node: int) -> PredictionLogger:
    return PredictionLogger(store, SystemClock(), settings, PredictionIdGenerator(node))


def time_log_calls(
    logger: PredictionLogger, source: RecordSource, calls: int
) -> tuple[list[float], list[int]]:
    """Per-call seconds and the ids returned. Arguments are built outside the timed call."""
    durations: list[float] = []
    ids: list[int] = []
    arguments = [source.kwargs(i) for i in range(min(calls, 1_000))]
    clock = time.perf_counter
    for index in range(calls):
        kwargs = arguments[index % len(arguments)]
        started = clock()
        prediction_id = logger.log_prediction(**kwargs)
        durations.append(clock() - started)
        ids.append(prediction_id)
    return durations, ids


def request_path(store: Store, settings: Settings, calls: int) -> dict[str, Any]:
    source = RecordSource()
    measured: dict[str, Any] = {}
    for label, node, writer_running in (("writer idle", 11, False), ("writer running", 12, True)):
        logger = new_logger(store, settings, node)
        if writer_running:
            logger.start()
        durations, ids = time_log_calls(logger, source, calls)
        logger.start()  # idle case: now store what was queued, for the zero-loss check
        flushed = logger.flush(timeout=600)
        logger.close()
        check = check_zero_loss(store, ids)
        numbers = percentiles_ms(durations)
        measured[label] = {
            "calls": calls,
            "per_call_ms": numbers,
            "p99_9_ms": 1000.0 * float(np.percentile(durations, 99.9)),
            "flushed": flushed,
            "logger": logger.health().as_dict(),
            "zero_loss": asdict(check),
            "zero_loss_passed": check.passed,
        }
        print(
            f"  {label:<15} p50 {1000 * numbers['p50']:6.1f} us  p99 {1000 * numbers['p99']:6.1f} "
            f"us  p99.9 {1000 * measured[label]['p99_9_ms']:7.1f} us  max "
            f"{numbers['max']:6.2f} ms  mean {1000 * numbers['mean']:6.1f} us"
        )
        print(f"  {'':<15} {check.line()}")
    return measured


def writer_throughput(store: Store, settings: Settings, records: int) -> dict[str, Any]:
    source = RecordSource()
    arguments = [source.kwargs(i) for i in range(1_000)]
    measured: dict[str, Any] = {}
    for label, node, concurrent in (
        ("enqueue while writing", 21, True),
        ("drain a full queue", 22, False),
    ):
        logger = new_logger(store, settings, node)
        if concurrent:
            logger.start()
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        ids = [logger.log_prediction(**arguments[i % len(arguments)]) for i in range(records)]
        if not concurrent:
            cpu_before = _cpu_seconds()  # the writer's work alone
            started = time.perf_counter()
            logger.start()
        flushed = logger.flush(timeout=600)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        logger.close()
        health = logger.health().as_dict()
        check = check_zero_loss(store, ids)
        rate = records / elapsed
        measured[label] = {
            "records": records,
            "seconds": elapsed,
            "records_per_second": rate,
            "cpu_us_per_record": 1e6 * cpu / records,
            "flushed": flushed,
            "logger": health,
            "zero_loss": asdict(check),
            "zero_loss_passed": check.passed and health["spooled"] == 0 and health["lost"] == 0,
        }
        verdict = "meets" if rate >= WRITER_TARGET_PER_SECOND else "BELOW"
        cpu_us = 1e6 * cpu / records
        print(
            f"  {label:<22} {records} records in {elapsed:5.2f} s = {rate:8,.0f} records/s "
            f"({verdict} the {WRITER_TARGET_PER_SECOND:,}/s target); {cpu_us:4.0f} us CPU/record, "
            f"i.e. at most ~{1e6 / cpu_us:,.0f}/s on one free core"
        )
        print(
            f"  {'':<22} written {health['written']}, spooled {health['spooled']}, "
            f"lost {health['lost']}; {check.line()}"
        )
    return measured


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(url: str, folder: Path, calls: int, records: int) -> dict[str, Any]:
    backend = backend_name(url)
    store = Store.open(url)
    settings = Settings(
        home=folder / f"home-{backend}",
        database_url=url,
        # Room for every record of a run: a full queue would spool, which is not measured here.
        logging_queue_size=max(calls, records) + 1_000,
        _env_file=None,
    )
    try:
        print(
            f"\nrequest path on {backend}: log_prediction with a {len(RecordSource().features)}"
            f"-feature record, {calls:,} calls (target <= {REQUEST_PATH_TARGET_MS} ms)"
        )
        path_cost = request_path(store, settings, calls)
        print(f"writer throughput into {backend} (batches of {settings.logging_batch_size}):")
        throughput = writer_throughput(store, settings, records)
        snapshot = snapshot_sizes(store)
        print(
            f"stored feature snapshots: {snapshot['snapshots']:,} of "
            f"{snapshot['bytes_per_snapshot']:,.0f} bytes of JSON for {snapshot['records']:,} "
            "records (every prediction of one feature hour shares its row's snapshot)"
        )
    finally:
        store.close()
    return {
        "backend": backend,
        "request_path": path_cost,
        "writer": throughput,
        "feature_snapshots": snapshot,
    }


def snapshot_sizes(store: Store) -> dict[str, float]:
    """How many feature snapshots the logged records share, and their stored JSON size."""
    with store.session() as session:
        snapshots, size = session.execute(
            select(
                func.count(),
                func.avg(func.length(cast(FeatureSnapshot.feature_values, String))),
            )
        ).one()
        records = session.execute(select(func.count()).select_from(PredictionLog)).scalar_one()
    return {
        "snapshots": int(snapshots),
        "bytes_per_snapshot": float(size or 0.0),
        "records": int(records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 calls and 5,000 records")
    parser.add_argument("--calls", type=int, default=None, help="request-path calls")
    parser.add_argument("--records", type=int, default=None, help="records for the writer")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server URL; a dedicated schema is created there and dropped after",
    )
    parser.add_argument(
        "--both", action="store_true", help="with --database-url, run SQLite as well"
    )
    args = parser.parse_args()
    calls = args.calls or (10_000 if args.quick else 100_000)
    records = args.records or (5_000 if args.quick else 50_000)
    print(f"logging cost benchmark; machine: {environment()}")
    targets = [None] if not args.database_url else [args.database_url]
    if args.database_url and args.both:
        targets.insert(0, None)
    results = []
    with tempfile.TemporaryDirectory(prefix="btcmlops-logging-") as folder:
        for postgres_url in targets:
            with temporary_database(Path(folder), postgres_url) as url:
                results.append(run(url, Path(folder), calls, records))
    passed = all(
        part["zero_loss_passed"]
        for result in results
        for section in ("request_path", "writer")
        for part in result[section].values()
    )
    path = write_results(
        "logging-" + "-".join(r["backend"] for r in results),
        {"benchmark": "logging_cost", "environment": environment(), "results": results},
    )
    print(f"\nresults written to {path}")
    if not passed:
        raise SystemExit("zero-loss check FAILED")


if __name__ == "__main__":
    main()
