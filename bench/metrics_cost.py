"""Benchmark: what the Prometheus metrics cost a request and a scrape.

    .venv/bin/python bench/metrics_cost.py [--requests 3000] [--rows 50000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

1. **Middleware alone**: ``RequestMetrics`` around a minimal ASGI app that answers 200, called
   directly (no HTTP, no routing), against the bare app: the time the middleware adds to one
   request. Target: well under 0.1 ms.
2. **/predict in-process** through httpx's ASGI transport, on two apps over the same trained
   home, one with ``install_metrics`` and one without, in alternating blocks: p50 and p90.
3. **A scrape** (``GET /metrics``) after ``--rows`` logged predictions spread over the last
   seven days: with the store readings cached, and with a fresh read of the store each time
   (the read alone is also reported, as ``btcmlops_store_readings_duration_seconds`` shows).

SQLite by default (a temporary file); with ``--database-url`` a dedicated PostgreSQL schema is
created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert

from btcmlops.api.app import create_app
from btcmlops.api.process_metrics import RequestMetrics
from btcmlops.api.routers.prometheus import install_metrics
from btcmlops.clock import HOUR, floor_hour
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import PredictionLog
from btcmlops.db.store import Store
from btcmlops.testing import TrainedHome, build_trained_home
from common import END, temporary_database

PAIR = ("vader", "random_forest")


# ------------------------------------------------------------------------- 1. middleware


class _Route:
    path_format = "/predictions/{prediction_id}"


async def _answer_200(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    scope["route"] = _Route  # what the router leaves in the scope
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _per_call_seconds(app, calls: int) -> float:  # type: ignore[no-untyped-def]
    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    started = time.perf_counter()
    for _ in range(calls):
        scope = {"type": "http", "method": "GET", "path": "/predictions/1", "root_path": ""}
        await app(scope, receive, send)
    return (time.perf_counter() - started) / calls


def middleware_overhead(calls: int = 100_000, rounds: int = 7) -> None:
    wrapped = RequestMetrics(_answer_200)
    bare, measured = [], []
    for _ in range(rounds):  # alternate, so a busy moment hits both alike
        bare.append(asyncio.run(_per_call_seconds(_answer_200, calls)))
        measured.append(asyncio.run(_per_call_seconds(wrapped, calls)))
    added = [m - b for m, b in zip(measured, bare, strict=True)]
    print("1. RequestMetrics middleware alone (median of 7 rounds of 100,000 calls)")
    print(f"   bare app         {statistics.median(bare) * 1e6:8.2f} us/request")
    print(f"   with middleware  {statistics.median(measured) * 1e6:8.2f} us/request")
    print(f"   added            {statistics.median(added) * 1e6:8.2f} us/request "
          f"(min {min(added) * 1e6:.2f})")  # fmt: skip


# ------------------------------------------------------------------------- a trained home


def train_home(store: Store, settings: Settings) -> TrainedHome:
    """28 simulated days (two articles an hour) and a promoted champion of ``PAIR``."""
    return build_trained_home(
        store, settings, END, pairs=(PAIR,), news_rate_per_hour=2.0, actor="bench",
        reason="metrics benchmark", with_importances=False,
    )  # fmt: skip


def log_history(store: Store, version: str, rows: int, seed: int = 11) -> None:
    """``rows`` predictions over the last seven days, resolved except the newest hour's."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 7 * 24 * 3600, rows))
    batch = []
    for index, offset in enumerate(seconds):
        predicted_at = END - timedelta(seconds=float(offset))
        p_up = float(rng.uniform(0.3, 0.7))
        prediction, actual = int(p_up > 0.5), int(rng.random() < 0.5)
        resolved = offset > 2 * 3600
        feature_ts = floor_hour(predicted_at) - HOUR
        batch.append(
            {
                "id": index + 1,
                "feature_set": PAIR[0],
                "model_type": PAIR[1],
                "model_version": version,
                "prediction": prediction,
                "probability_down": 1 - p_up,
                "probability_up": p_up,
                "confidence": max(p_up, 1 - p_up),
                "features_json": {},
                "feature_ts": feature_ts,
                "target_ts": feature_ts + HOUR,
                "source": "api",
                "response_time_ms": 1.0,
                "cached_features": True,
                "predicted_at": predicted_at,
                "outcome_status": "resolved" if resolved else "pending",
                "actual_direction": actual if resolved else None,
                "prediction_correct": (prediction == actual) if resolved else None,
            }
        )
        if len(batch) == 5_000:
            with store.session() as session:
                session.execute(insert(PredictionLog), batch)
            batch = []
    if batch:
        with store.session() as session:
            session.execute(insert(PredictionLog), batch)


# ------------------------------------------------------------------------- 2. and 3.


def percentiles(seconds: list[float]) -> str:
    p50, p90 = np.percentile(np.asarray(seconds) * 1000, [50, 90])
    return f"p50 {p50:6.3f} ms   p90 {p90:6.3f} ms"


async def predict_latencies(requests: int, block: int, context: AppContext) -> None:
    plain, instrumented = create_app(context), create_app(context)
    install_metrics(instrumented)
    timings: dict[str, list[float]] = {"without metrics": [], "with metrics": []}
    async with (
        plain.router.lifespan_context(plain),
        instrumented.router.lifespan_context(instrumented),
    ):
        clients = {
            "without metrics": httpx.AsyncClient(
                transport=httpx.ASGITransport(app=plain), base_url="http://bench"
            ),
            "with metrics": httpx.AsyncClient(
                transport=httpx.ASGITransport(app=instrumented), base_url="http://bench"
            ),
        }
        params = {"feature_set": PAIR[0], "model_type": PAIR[1]}
        for client in clients.values():  # warm up: models, features, the accuracy cache
            for _ in range(50):
                assert (await client.post("/predict", params=params)).status_code == 200
        for _ in range(requests // block):
            for name, client in clients.items():
                for _ in range(block):
                    started = time.perf_counter()
                    response = await client.post("/predict", params=params)
                    timings[name].append(time.perf_counter() - started)
                    assert response.status_code == 200
        print(f"2. POST /predict in-process (httpx ASGI transport), {requests} requests each")
        for name, seconds in timings.items():
            print(f"   {name:16} {percentiles(seconds)}")
        base = np.percentile(timings["without metrics"], 50)
        added = np.percentile(timings["with metrics"], 50) - base
        print(f"   p50 difference   {added * 1000:+.3f} ms (noise included)")

        metrics = instrumented.state.metrics
        readings = metrics.store_readings
        scrape = clients["with metrics"]
        cached, fresh, reads = [], [], []
        readings.wait_seconds = 60
        for _ in range(30):
            readings.cache_seconds = 0
            started = time.perf_counter()
            assert (await scrape.get("/metrics")).status_code == 200
            fresh.append(time.perf_counter() - started)
            reads.append(readings.read_seconds)
            readings.cache_seconds = 3600
            for _ in range(5):
                started = time.perf_counter()
                response = await scrape.get("/metrics")
                cached.append(time.perf_counter() - started)
        print(f"3. GET /metrics ({len(response.content):,} bytes)")
        print(f"   readings cached  {percentiles(cached)}")
        print(f"   fresh read       {percentiles(fresh)}")
        print(f"   the read alone   {percentiles(reads)}")
        for client in clients.values():
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    middleware_overhead()
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_database(Path(tmp), args.database_url) as url,
    ):
        store = Store.open(url)
        settings = Settings(home=Path(tmp) / "home", database_url=url, _env_file=None)
        started = time.perf_counter()
        home = train_home(store, settings)
        clock = home.clock
        log_history(store, home.champions[PAIR].version, args.rows)
        print(
            f"   (home: {store.dialect}, {args.rows:,} logged predictions over 7 days, "
            f"built in {time.perf_counter() - started:.0f} s)"
        )
        context = AppContext(settings=settings, clock=clock, _store=store)
        try:
            asyncio.run(predict_latencies(args.requests, 100, context))
        finally:
            store.close()


if __name__ == "__main__":
    main()
