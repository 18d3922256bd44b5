"""Benchmark: ``btcmlops serve`` under an open-loop load from a second process on loopback.

    .venv/bin/python bench/load.py [--quick] [--workers 1 [2]] [--database-url URL]
        [--rate 200] [--duration 20] [--steps 300 400 600 ...] [--step-duration 10]
        [--read-rate 50] [--phases ceiling baseline steps reads mixed shutdown]
        [--api-key KEY] [--scheduler]

What it does, in order:

1. builds a temporary home (a SQLite file; with ``--database-url`` a dedicated PostgreSQL
   schema, dropped at the end): a simulated market, VADER features and a champion for
   random forest, logistic regression and gradient boosting;
2. times uncached single-row inference per model type in this process: the pipeline's
   ``predict_proba`` on one row, and ``compute_answer`` as the predictor runs it, i.e. what
   a request costs when its answer is not cached;
3. ``ceiling``: the load generator's own limit, against a stub HTTP server;
4. for each ``--workers`` value, starts ``python -m btcmlops serve`` (scheduler off unless
   ``--scheduler``) with ``BTCMLOPS_HOME``, ``BTCMLOPS_DATABASE_URL`` and a pinned
   ``BTCMLOPS_NOW``, waits until every worker is registered and ``/health`` answers, and runs,
   each in a fresh generator process after a short warm-up:
   ``baseline``: ``POST /predict?feature_set=vader`` at ``--rate`` for ``--duration``
   (targets: p50 <= 5 ms and p99 <= 25 ms at 200/s); ``steps``: rising rates until p99 exceeds
   100 ms, a request fails or the server falls behind (target >= 400/s); ``reads``: a mix of
   ``GET`` endpoints; ``mixed``: predictions at ``--rate`` with the read mix beside them;
   ``shutdown``: SIGTERM in the middle of a prediction load;
5. after every run waits until the prediction writer has drained (``/health``: queue empty,
   spool replayed; and every id in the store), then checks that each returned
   ``prediction_id`` is stored exactly once. The ``shutdown`` run skips the wait: its records
   must reach the store through the clean shutdown. After the server stops, all of its runs'
   ids are checked once more;
6. prints a table and writes everything (per-second timelines too) to
   ``bench/out/load-<backend>-<time>.json``. Exit status 1 if a zero-loss check failed.

The generator is open-loop: request ``i`` is due at ``start + i / rate`` whatever happened to
earlier requests, and its latency runs from that due time. A closed loop (send, wait, send)
slows down with the server and hides the queueing a real client sees (coordinated omission).
Requests go over a fixed pool of HTTP/1.1 keep-alive connections on raw asyncio streams
(uvloop when present); a request due while every connection is busy waits for one, and that
wait is part of its latency. ``svc`` (service) percentiles leave the client-side wait out.

On this machine the generator, the server and everything else share 2 cores: the table
shows the cores each used during a run (``gen``, ``srv``; ``other`` is the rest of the
machine), so a reader can tell a slow server from a busy box.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import select

from btcmlops.config import Settings
from btcmlops.db.models import WorkerNode
from btcmlops.db.store import Store
from btcmlops.features.stored_inputs import latest_feature_row
from btcmlops.ingest.simulator_config import SimulationConfig
from btcmlops.modeling.model_types import prediction_threads
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import ModelVersionInfo
from btcmlops.serving.row_model import compute_answer
from btcmlops.testing import build_trained_home, free_port
from common import (
    END,
    CpuWindow,
    ZeroLossCheck,
    backend_name,
    check_zero_loss,
    environment,
    format_ms,
    machine_busy_seconds,
    percentiles_ms,
    prediction_rows,
    process_tree_cpu_seconds,
    stored_prediction_counts,
    temporary_database,
    write_results,
)

HOST = "127.0.0.1"
PREDICT_PATH = "/predict?feature_set=vader"
# The read mix; a path listed twice is requested twice as often.
READ_MIX = (
    "/health",
    "/health",
    "/models",
    "/predictions/recent?limit=50",
    "/predictions/recent?limit=50",
    "/predictions/accuracy?feature_set=vader&model_type=random_forest",
    "/predictions/accuracy?feature_set=vader&model_type=random_forest",
    "/predictions/statistics",
)
MODEL_TYPES_TRAINED = ("random_forest", "logistic_regression", "gradient_boosting")
LOAD_STARTED = "load started"
PHASES = ("ceiling", "baseline", "steps", "reads", "mixed", "shutdown")
P99_LIMIT_MS = 100.0
# A step whose completed rate falls below this share of its target did not keep up.
KEEPS_UP = 0.97


# =================================================================================== generator
# Runs in its own process (``load.py --generate SPEC RESULT``). The module's imports cost that
# process start-up time only; nothing below touches btcmlops.


class ProtocolError(Exception):
    """The server's answer was not an HTTP/1.1 response this client understands."""


@dataclass(frozen=True)
class StreamSpec:
    """One open-loop stream: ``rate`` requests per second over ``connections`` connections."""

    name: str
    method: str
    targets: tuple[str, ...]  # requested round-robin
    rate: float
    connections: int
    collect_ids: bool = False


class Connection:
    """One HTTP/1.1 keep-alive connection; requests carry no body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    @property
    def usable(self) -> bool:
        """False once the server has closed its side (e.g. its keep-alive timeout passed)."""
        return not (self.reader.at_eof() or self.writer.is_closing())

    async def request(self, head: bytes) -> tuple[int, bytes, bool]:
        """Send ``head``; return the status, the body and whether the server closes."""
        self.writer.write(head)
        header = await self.reader.readuntil(b"\r\n\r\n")
        if not header.startswith(b"HTTP/1.1 "):
            raise ProtocolError(f"unexpected status line {header[:40]!r}")
        status = int(header[9:12])
        length: int | None = None
        closes = False
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closes = True
        if length is None:
            raise ProtocolError("response without Content-Length")
        body = await self.reader.readexactly(length)
        return status, body, closes

    async def close(self) -> None:
        """Close and wait, so a reset connection's error is consumed here, not logged."""
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()


@dataclass
class StreamOutcome:
    """Per-request measurements of one stream, indexed by request number."""

    spec: StreamSpec
    count: int
    latency: list[float] = field(default_factory=list)  # arrival -> response read
    service: list[float] = field(default_factory=list)  # request written -> response read
    status: list[int] = field(default_factory=list)  # 0: no HTTP answer
    errors: Counter[str] = field(default_factory=Counter)
    bodies: dict[int, bytes] = field(default_factory=dict)
    dispatch_lag: list[float] = field(default_factory=list)  # due time -> handed to the pool
    reconnects: int = 0

    def __post_init__(self) -> None:
        self.latency = [math.nan] * self.count
        self.service = [math.nan] * self.count
        self.status = [0] * self.count
        self.dispatch_lag = [math.nan] * self.count


def request_head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Length: 0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# Times are time.perf_counter(): uvloop's loop.time() has millisecond resolution.
async def _dispatch(outcome: StreamOutcome, queue: asyncio.Queue, start: float) -> None:
    """Hand request ``i`` to the connection pool at ``start + i / rate``, come what may.

    Event-loop timers fire to the nearest millisecond, so a request may leave up to about
    half a millisecond early or late; see ``_serve_requests`` for how that is accounted.
    """
    interval = 1.0 / outcome.spec.rate
    for index in range(outcome.count):
        due = start + index * interval
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
            now = time.perf_counter()
        outcome.dispatch_lag[index] = now - due
        queue.put_nowait((index, due))
    for _ in range(outcome.spec.connections):
        queue.put_nowait(None)


async def _serve_requests(
    outcome: StreamOutcome,
    queue: asyncio.Queue,
    connection: Connection | None,
    heads: Sequence[bytes],
    port: int,
    timeout: float,
) -> None:
    """One connection of the pool: take due requests in order and time each one.

    A request arrives at its due time, or when it is sent if that is earlier (timer
    granularity); its latency runs from arrival, so waiting for a free connection counts.
    """
    while (item := await queue.get()) is not None:
        index, due = item
        sent = time.perf_counter()
        arrival = min(due, sent)
        try:
            if connection is None or not connection.usable:
                if connection is not None:
                    await connection.close()
                    outcome.reconnects += 1
                connection = await Connection.open(HOST, port)
                sent = time.perf_counter()
            async with asyncio.timeout(timeout):
                status, body, closes = await connection.request(heads[index % len(heads)])
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            outcome.errors[type(exc).__name__] += 1
            if connection is not None:
                await connection.close()
            connection = None
            continue
        done = time.perf_counter()
        outcome.latency[index] = done - arrival
        outcome.service[index] = done - sent
        outcome.status[index] = status
        if status != 200:
            outcome.errors[f"HTTP {status}"] += 1
        elif outcome.spec.collect_ids:
            outcome.bodies[index] = body
        if closes:
            await connection.close()
            connection = None
    if connection is not None:
        await connection.close()


class CpuSampler:
    """CPU of the machine, the server's process tree and this process over one window."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def sample(self) -> tuple[float, float | None, float | None, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        server = None if self.server_pid is None else process_tree_cpu_seconds(self.server_pid)
        return (
            time.perf_counter(),
            machine_busy_seconds(),
            server,
            usage.ru_utime + usage.ru_stime,
        )

    @staticmethod
    def window(before: tuple, after: tuple) -> CpuWindow:  # type: ignore[type-arg]
        wall = after[0] - before[0]

        def cores(position: int) -> float | None:
            if before[position] is None or after[position] is None:
                return None
            used = after[position] - before[position]
            # Negative when server processes ended inside the window (the shutdown run).
            return used / wall if used >= 0 else None

        return CpuWindow(wall, cores(1), cores(2), cores(3))


async def generate(
    port: int,
    streams: Sequence[StreamSpec],
    duration: float,
    timeout: float,
    headers: dict[str, str],
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Run every stream for ``duration`` seconds and return what each request saw."""
    outcomes = [StreamOutcome(spec, max(1, round(spec.rate * duration))) for spec in streams]
    pools = []
    for outcome in outcomes:
        # Connections are opened before the clock starts, as a client's pool would be.
        connections = await asyncio.gather(
            *(Connection.open(HOST, port) for _ in range(outcome.spec.connections))
        )
        heads = [
            request_head(outcome.spec.method, path, port, headers) for path in outcome.spec.targets
        ]
        pools.append((outcome, connections, heads))
    sampler = CpuSampler(server_pid)
    before = sampler.sample()
    start = time.perf_counter() + 0.02
    print(LOAD_STARTED, flush=True)
    tasks = []
    for outcome, connections, heads in pools:
        queue: asyncio.Queue = asyncio.Queue()
        tasks.append(asyncio.ensure_future(_dispatch(outcome, queue, start)))
        tasks += [
            asyncio.ensure_future(_serve_requests(outcome, queue, conn, heads, port, timeout))
            for conn in connections
        ]
    unfinished = False
    try:
        # Bounded in time whatever the server does: the schedule plus one request timeout.
        async with asyncio.timeout(duration + timeout + 5.0):
            await asyncio.gather(*tasks)
    except TimeoutError:
        unfinished = True
    cpu = CpuSampler.window(before, sampler.sample())
    return {
        "wall_seconds": time.perf_counter() - start,
        "cpu": asdict(cpu),
        "unfinished": unfinished,
        "streams": {outcome.spec.name: _stream_report(outcome) for outcome in outcomes},
    }


def _stream_report(outcome: StreamOutcome) -> dict[str, Any]:
    answered = sum(1 for status in outcome.status if status)
    ids = []
    for body in outcome.bodies.values():
        ids.append(int(json.loads(body)["prediction_id"]))
    errors = dict(outcome.errors)
    if answered + sum(outcome.errors.values()) < outcome.count:
        errors["unfinished"] = outcome.count - answered - sum(outcome.errors.values())
    return {
        "spec": asdict(outcome.spec),
        "count": outcome.count,
        "latency": outcome.latency,
        "service": outcome.service,
        "status": outcome.status,
        "errors": errors,
        "ids": ids,
        "dispatch_lag": outcome.dispatch_lag,
        "reconnects": outcome.reconnects,
    }


def generator_main(spec_path: Path, result_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    streams = [StreamSpec(**{**s, "targets": tuple(s["targets"])}) for s in spec["streams"]]
    runner = _event_loop_runner()
    report = runner(
        generate(
            spec["port"],
            streams,
            spec["duration"],
            spec["timeout"],
            spec["headers"],
            spec["server_pid"],
        )
    )
    result_path.write_text(json.dumps(report))


def _event_loop_runner():  # type: ignore[no-untyped-def]
    try:
        import uvloop
    except ImportError:  # plain asyncio works, only with a lower ceiling
        return asyncio.run
    return uvloop.run


# ================================================================================= stub server
# ``load.py --stub-server PORT``: answers every request at once with a /predict-sized body, so
# the generator's own ceiling can be measured without the real server's cost.


class _StubProtocol(asyncio.Protocol):
    next_id = 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        responses = []
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            body = json.dumps({"success": True, "prediction_id": _StubProtocol.next_id})
            body = body[:-1] + ', "padding": "' + "x" * 700 + '"}'
            _StubProtocol.next_id += 1
            responses.append(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body.encode()
            )
        self.transport.write(b"".join(responses))  # type: ignore[attr-defined]


def stub_server_main(port: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_StubProtocol, HOST, port)
        async with server:
            await server.serve_forever()

    _event_loop_runner()(serve())


# ============================================================================== orchestration


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f} s")


class ServerProcess:
    """``python -m btcmlops serve`` on a free loopback port, as a process group of its own."""

    def __init__(
        self,
        home: Path,
        database_url: str,
        workers: int,
        log_path: Path,
        api_key: str | None = None,
        scheduler: bool = False,
    ) -> None:
        self.home = home
        self.database_url = database_url
        self.workers = workers
        self.log_path = log_path
        self.api_key = api_key
        self.scheduler = scheduler
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
        env.update(
            BTCMLOPS_HOME=str(self.home),
            BTCMLOPS_DATABASE_URL=self.database_url,
            # A pinned clock: every prediction serves the same newest feature hour.
            BTCMLOPS_NOW=END.isoformat(),
        )
        if self.api_key:
            env.update(BTCMLOPS_API_KEY=self.api_key, BTCMLOPS_PROTECT_READS="true")
        command = [sys.executable, "-m", "btcmlops", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        # Serving alone by default: scheduled jobs would compete for the cores and move
        # feature rows and champions in the middle of a run.
        env["BTCMLOPS_SERVE_SCHEDULER"] = "true" if self.scheduler else "false"
        if not self.scheduler and _serve_accepts("--no-scheduler"):
            command.append("--no-scheduler")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/health", headers=self.headers(), timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_until_ready(self, store: Store, timeout: float = 180.0) -> None:
        """Every worker registered in ``worker_nodes`` and ``/health`` answering with models."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}:\n{self.log_tail()}")
            if self._registered_workers(store) >= self.workers:
                try:
                    if self.health()["loaded_models"] > 0:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout:.0f} s; see {self.log_path}")

    def _registered_workers(self, store: Store) -> int:
        with store.session() as session:
            pids = set(session.scalars(select(WorkerNode.pid)))
        return sum(1 for pid in pids if _descends_from(pid, self.pid))

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a clean shutdown flushes the prediction writer); SIGKILL the group if stuck."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        if self._log is not None:
            self._log.close()
        return code

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _serve_accepts(option: str) -> bool:
    """Whether this version of ``btcmlops serve`` has ``option`` (read from its --help)."""
    shown = subprocess.run(
        [sys.executable, "-m", "btcmlops", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    return option in shown.stdout


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


@dataclass
class RunResult:
    """One generator run against one server, with its checks."""

    name: str
    workers: int
    streams: dict[str, dict[str, Any]]
    cpu: CpuWindow
    generator_unfinished: bool
    zero_loss: ZeroLossCheck | None = None
    drain_seconds: float | None = None
    stored_rows_before: int | None = None
    stored_rows_after: int | None = None
    ids: list[int] = field(default_factory=list, repr=False)

    def stream(self, name: str) -> dict[str, Any]:
        return self.streams[name]

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        answered = sum(stream["ok"] for stream in self.streams.values())
        if self.cpu.server_cores is None or not answered:
            return None
        return 1000.0 * self.cpu.server_cores * self.cpu.wall_seconds / answered

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "workers": self.workers,
            "streams": self.streams,
            "cpu": self.cpu.as_dict(),
            "generator_unfinished": self.generator_unfinished,
            "zero_loss": None if self.zero_loss is None else asdict(self.zero_loss),
            "zero_loss_passed": None if self.zero_loss is None else self.zero_loss.passed,
            "drain_seconds": self.drain_seconds,
            "stored_rows_before": self.stored_rows_before,
            "stored_rows_after": self.stored_rows_after,
            "server_cpu_ms_per_request": self.server_cpu_ms_per_request,
        }


def summarise_stream(report: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    """Percentiles and counts of one stream (raw per-request lists left out)."""
    spec = report["spec"]
    answered = [i for i, status in enumerate(report["status"]) if status == 200]
    latency = [report["latency"][i] for i in answered]
    service = [report["service"][i] for i in answered]
    errors = sum(report["errors"].values())
    summary = {
        "target_rate": spec["rate"],
        "connections": spec["connections"],
        "requests": report["count"],
        "ok": len(answered),
        "errors": errors,
        "error_kinds": report["errors"],
        "achieved_rate": len(answered) / wall_seconds if wall_seconds > 0 else None,
        "latency_ms": percentiles_ms(latency),
        "service_ms": percentiles_ms(service),
        # Time a request waited on the client side: late dispatch or no free connection.
        "client_wait_ms": percentiles_ms(
            [report["latency"][i] - report["service"][i] for i in answered]
        ),
        "dispatch_lag_ms": percentiles_ms([max(0.0, lag) for lag in report["dispatch_lag"]]),
        "reconnects": report["reconnects"],
    }
    # Per second of the schedule, to spot periodic stalls (a cache expiring, a big commit).
    by_second: dict[int, list[float]] = {}
    for i in answered:
        by_second.setdefault(int(i / spec["rate"]), []).append(report["latency"][i])
    timeline = {second: percentiles_ms(values) for second, values in sorted(by_second.items())}
    summary["timeline_ms"] = [
        [second, numbers["p50"], numbers["p99"], numbers["max"]]
        for second, numbers in timeline.items()
    ]
    if timeline:
        worst = max(timeline, key=lambda second: timeline[second]["p99"])
        summary["worst_second"] = {"second": worst, "p99_ms": timeline[worst]["p99"]}
    targets = spec["targets"]
    if len(set(targets)) > 1:
        per_target: dict[str, list[float]] = {}
        for i in answered:
            per_target.setdefault(targets[i % len(targets)], []).append(report["latency"][i])
        summary["per_target_latency_ms"] = {
            path: percentiles_ms(values) for path, values in per_target.items()
        }
    return summary


class GeneratorProcess:
    """The load generator as a child process; it also samples the CPU everybody used."""

    def __init__(
        self,
        port: int,
        streams: Sequence[StreamSpec],
        duration: float,
        *,
        timeout: float,
        headers: dict[str, str],
        server_pid: int | None,
        workdir: Path,
    ) -> None:
        self.duration = duration
        self.timeout = timeout
        self.spec_path = workdir / "generator-spec.json"
        self.result_path = workdir / "generator-result.json"
        self.spec = {
            "port": port,
            "streams": [asdict(s) for s in streams],
            "duration": duration,
            "timeout": timeout,
            "headers": headers,
            "server_pid": server_pid,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> GeneratorProcess:
        self.result_path.unlink(missing_ok=True)
        self.spec_path.write_text(json.dumps(self.spec))
        command = [sys.executable, __file__, "--generate", str(self.spec_path)]
        self.process = subprocess.Popen(
            [*command, str(self.result_path)], stdout=subprocess.PIPE, text=True
        )
        return self

    def wait_until_loading(self) -> None:
        """Block until the child says its clock has started (it prints one line then)."""
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != LOAD_STARTED:
            raise RuntimeError(f"the generator failed before loading (said {line!r})")

    def finish(self) -> tuple[dict[str, Any], CpuWindow]:
        assert self.process is not None
        self.process.communicate(timeout=self.duration + self.timeout + 120)
        code = self.process.returncode
        if code != 0:
            raise RuntimeError(f"the generator exited with {code}")
        report = json.loads(self.result_path.read_text())
        return report, CpuWindow(**report["cpu"])


def wait_until_logged(
    server: ServerProcess, store: Store, ids: Sequence[int], timeout: float = 120.0
) -> float:
    """Poll until the writer queue is empty, the spool replayed and every id is stored.

    With several workers ``/health`` answers for whichever worker takes the request, so the
    store itself is the final word. Returns the seconds waited (a timeout leaves the loss to
    the zero-loss check).
    """
    started = time.monotonic()
    unique = set(ids)
    while time.monotonic() - started < timeout:
        try:
            writer = server.health()["components"]["prediction_logging"]
        except httpx.HTTPError:  # an overloaded server answers late; ask again
            continue
        drained = writer["queue_depth"] == 0 and writer["spooled"] == writer["replayed"]
        if drained and stored_prediction_counts(store, unique)[1] >= len(unique):
            break
        time.sleep(0.1)
    return time.monotonic() - started


class Bench:
    """The runs against one server, and what they found."""

    def __init__(
        self, server: ServerProcess, store: Store, args: argparse.Namespace, workdir: Path
    ) -> None:
        self.server = server
        self.store = store
        self.args = args
        self.workdir = workdir
        self.results: list[RunResult] = []

    def run(
        self, name: str, streams: Sequence[StreamSpec], duration: float, *, drain: bool = True
    ) -> RunResult:
        """One generator run; with ``drain`` wait for the writer and check zero loss."""
        rows_before = prediction_rows(self.store)
        report, cpu = self.generator(streams, duration).start().finish()
        return self.record(name, report, cpu, rows_before, drain=drain)

    def generator(self, streams: Sequence[StreamSpec], duration: float) -> GeneratorProcess:
        return GeneratorProcess(
            self.server.port,
            streams,
            duration,
            timeout=self.args.timeout,
            headers=self.server.headers(),
            server_pid=self.server.pid,
            workdir=self.workdir,
        )

    def record(
        self,
        name: str,
        report: dict[str, Any],
        cpu: CpuWindow,
        rows_before: int,
        *,
        drain: bool,
    ) -> RunResult:
        summaries = {
            stream: summarise_stream(data, report["wall_seconds"])
            for stream, data in report["streams"].items()
        }
        ids = [i for data in report["streams"].values() for i in data["ids"]]
        result = RunResult(name, self.server.workers, summaries, cpu, report["unfinished"], ids=ids)
        result.stored_rows_before = rows_before
        self.results.append(result)
        if drain:
            result.drain_seconds = wait_until_logged(self.server, self.store, ids)
            self.check(result)
        return result

    def check(self, result: RunResult) -> None:
        result.zero_loss = check_zero_loss(self.store, result.ids)
        result.stored_rows_after = prediction_rows(self.store)
        print_run(result)

    def shutdown_under_load(self, rate: float, duration: float = 4.0) -> int:
        """SIGTERM the server halfway through a prediction load, then check every id it
        returned: records still queued must reach the store through the clean shutdown.
        Requests after the signal fail (the server stops accepting); that is expected."""
        rows_before = prediction_rows(self.store)
        generator = self.generator([self.predict_stream(rate)], duration).start()
        generator.wait_until_loading()
        time.sleep(duration / 2)
        exit_code = self.server.stop()
        report, cpu = generator.finish()
        result = self.record(f"sigterm@{rate:g}", report, cpu, rows_before, drain=False)
        self.check(result)
        print(f"{'':<24}   (SIGTERM after {duration / 2:g} s: later requests fail by design)")
        return exit_code

    def predict_stream(self, rate: float) -> StreamSpec:
        return StreamSpec(
            "predict", "POST", (PREDICT_PATH,), rate, self.args.connections, collect_ids=True
        )

    def read_stream(self, rate: float) -> StreamSpec:
        connections = max(4, self.args.connections // 4)
        return StreamSpec("reads", "GET", READ_MIX, rate, connections)

    # --------------------------------------------------------------------------- phases
    def warm_up(self) -> None:
        self.run("warm-up", [self.predict_stream(50)], 1.0 if self.args.quick else 2.0)

    def baseline(self) -> None:
        self.run(
            f"predict@{self.args.rate:g}", [self.predict_stream(self.args.rate)], self.args.duration
        )

    def steps(self) -> float | None:
        """Rising rates until p99 > 100 ms, an error, or the server falls behind.

        A failed step is run again up to ``--step-retries`` times before the search stops:
        on a shared machine one burst from another process can sink a single window. Every
        attempt is reported.
        """
        best = None
        for rate in self.args.steps:
            for attempt in range(1 + self.args.step_retries):
                name = f"step@{rate:g}" + (f" #{attempt + 1}" if attempt else "")
                result = self.run(name, [self.predict_stream(rate)], self.args.step_duration)
                verdict = step_verdict(result.stream("predict"))
                print(f"    step {rate:g}/s: {verdict}")
                if verdict == "sustained":
                    break
            if verdict != "sustained":
                break
            best = rate
        return best

    def reads(self) -> None:
        self.run(
            f"reads@{self.args.read_rate:g}",
            [self.read_stream(self.args.read_rate)],
            self.args.duration,
        )

    def mixed(self) -> None:
        self.run(
            f"mixed@{self.args.rate:g}+{self.args.read_rate:g}",
            [self.predict_stream(self.args.rate), self.read_stream(self.args.read_rate)],
            self.args.duration,
        )


def step_verdict(stream: dict[str, Any]) -> str:
    p99 = stream["latency_ms"]["p99"]
    if stream["errors"]:
        return f"failed: {stream['errors']} errors {stream['error_kinds']}"
    if p99 is None or p99 > P99_LIMIT_MS:
        return f"failed: p99 {p99:.1f} ms > {P99_LIMIT_MS:g} ms"
    if stream["achieved_rate"] < KEEPS_UP * stream["target_rate"]:
        return f"failed: completed {stream['achieved_rate']:.0f}/s, fell behind"
    return "sustained"


# ------------------------------------------------------------------------------ printing

HEADER = (
    f"{'run':<22} {'w':>1} {'stream':<8} {'rate':>6} {'done/s':>7} {'ok':>6} {'err':>4} "
    f"{'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'svc p99':>8} "
    f"{'gen':>5} {'srv':>5} {'other':>5}  zero-loss"
)


def _cores(value: float | None) -> str:
    return f"{'-':>5}" if value is None else f"{value:>5.2f}"


def run_rows(result: RunResult) -> list[str]:
    rows = []
    for index, (name, stream) in enumerate(result.streams.items()):
        latency = stream["latency_ms"]
        zero = result.zero_loss
        check = "" if zero is None else ("ok" if zero.passed else "FAILED")
        if index == 0 and zero is not None:
            check += f" ({zero.stored}/{zero.returned})"
        rows.append(
            f"{result.name if index == 0 else '':<22} {result.workers:>1} {name:<8} "
            f"{stream['target_rate']:>6g} {stream['achieved_rate'] or 0:>7.1f} "
            f"{stream['ok']:>6} {stream['errors']:>4} "
            f"{format_ms(latency['p50'], 7)} {format_ms(latency['p90'], 7)} "
            f"{format_ms(latency['p99'], 7)} {format_ms(latency['max'], 7)} "
            f"{format_ms(stream['service_ms']['p99'], 8)} "
            + (
                f"{_cores(result.cpu.generator_cores)} {_cores(result.cpu.server_cores)} "
                f"{_cores(result.cpu.other_cores)}  {check}"
                if index == 0
                else ""
            )
        )
    return rows


def print_run(result: RunResult) -> None:
    for row in run_rows(result):
        print(row)
    details = []
    if result.stored_rows_before is not None:
        details.append(f"{result.stored_rows_before:,} logged predictions at start")
    if result.server_cpu_ms_per_request is not None:
        details.append(f"server CPU {result.server_cpu_ms_per_request:.2f} ms/request")
    for name, stream in result.streams.items():
        if "worst_second" in stream:
            worst = stream["worst_second"]
            waited = stream["client_wait_ms"]["p99"]
            details.append(
                f"{name}: worst second p99 {format_ms(worst['p99_ms'], 0)} ms "
                f"(second {worst['second']}), client-side wait p99 {format_ms(waited, 0)} ms"
            )
    if details:
        print(f"{'':<24}   " + "; ".join(details))
    for stream in result.streams.values():
        for path, latency in stream.get("per_target_latency_ms", {}).items():
            print(
                f"{'':<24}   {path:<62} p50 {format_ms(latency['p50'], 6)} "
                f"p99 {format_ms(latency['p99'], 6)} ms"
            )
    if result.zero_loss is not None:
        waited = (
            "flushed by the shutdown"
            if result.drain_seconds is None
            else f"drained in {result.drain_seconds:.1f} s"
        )
        print(f"{'':<24}   {result.zero_loss.line()} ({waited})")
    sys.stdout.flush()


# ----------------------------------------------------------------------- in-process parts


def uncached_inference(
    store: Store,
    registry: ModelRegistry,
    champions: dict[tuple[str, str], ModelVersionInfo],
    budget_seconds: float,
) -> dict[str, dict[str, Any]]:
    """Single-row inference per model type, in this process, one thread (as served).

    ``predict_proba`` is sklearn's ``pipeline.predict_proba`` on a prepared one-row frame,
    with the thread limits entered once outside the timing. ``cache miss`` is
    ``compute_answer`` exactly as the predictor runs it when a (model version, feature row)
    answer is not cached yet: vector, imputation count, frame, probabilities, including any
    per-call thread-limit context. ``thread_limit_context_ms`` is that context alone
    (``prediction_threads`` entered and left), so its share of a miss is visible.
    """
    measured: dict[str, Any] = {}
    for (feature_set, model_type), info in champions.items():
        pipeline = registry.load_pipeline(info)
        row = latest_feature_row(store, feature_set)
        assert row is not None, "the trained home has feature rows"
        # The one-row frame exactly as the predictor builds it: float64, NaN where missing.
        vector = np.array(
            [
                [
                    math.nan if row.values.get(n) is None else row.values[n]
                    for n in info.feature_names
                ]
            ],
            dtype=float,
        )
        frame = pd.DataFrame(vector, columns=info.feature_names)
        with prediction_threads(1):
            proba, miss = _time_alternately(
                lambda p=pipeline, f=frame: p.predict_proba(f),
                lambda p=pipeline, i=info, v=row.values: compute_answer(p, i.feature_names, v, 1),
                budget_seconds,
            )
        measured[model_type] = {
            "predict_proba_ms": percentiles_ms(proba),
            "cache_miss_ms": percentiles_ms(miss),
            "calls": len(proba),
        }
    context, _ = _time_alternately(_enter_thread_limits, lambda: None, budget_seconds / 3)
    measured["thread_limit_context_ms"] = percentiles_ms(context)
    return measured


def _enter_thread_limits() -> None:
    with prediction_threads(1):
        pass


def _time_alternately(
    first: Callable[[], object],
    second: Callable[[], object],
    budget_seconds: float,
    least: int = 50,
    most: int = 2_000,
) -> tuple[list[float], list[float]]:
    """Time two calls in turn, so a burst of load on the shared machine hits both alike."""
    # The first calls pay one-off costs (imports, allocations).
    first()
    second()
    timings: tuple[list[float], list[float]] = ([], [])
    began = time.perf_counter()
    while len(timings[0]) < most and (
        len(timings[0]) < least or time.perf_counter() - began < budget_seconds
    ):
        for call, durations in zip((first, second), timings, strict=True):
            started = time.perf_counter()
            call()
            durations.append(time.perf_counter() - started)
    return timings


def generator_ceiling(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """The generator against a stub server that answers at once: the most it can drive."""
    port = free_port()
    stub = subprocess.Popen(
        [sys.executable, __file__, "--stub-server", str(port)], start_new_session=True
    )
    rows = []
    try:
        wait_for_port(port, stub)
        for rate in args.ceiling_rates:
            spec = StreamSpec("stub", "POST", (PREDICT_PATH,), rate, args.connections, True)
            report, cpu = (
                GeneratorProcess(
                    port,
                    [spec],
                    args.ceiling_duration,
                    timeout=args.timeout,
                    headers={},
                    server_pid=stub.pid,
                    workdir=workdir,
                )
                .start()
                .finish()
            )
            stream = summarise_stream(report["streams"]["stub"], report["wall_seconds"])
            stream["cpu"] = cpu.as_dict()
            stream["generator_cpu_us_per_request"] = (
                1e6 * cpu.generator_cores * cpu.wall_seconds / max(1, stream["ok"])
            )
            rows.append(stream)
            latency = stream["latency_ms"]
            print(
                f"  stub@{rate:<6g} done {stream['achieved_rate']:>7.0f}/s  errors "
                f"{stream['errors']:>3}  p50 {format_ms(latency['p50'], 6)}  p99 "
                f"{format_ms(latency['p99'], 6)} ms  generator {cpu.generator_cores:.2f} cores, "
                f"{stream['generator_cpu_us_per_request']:.0f} us CPU/request; "
                f"stub {_cores(cpu.server_cores).strip()} cores"
            )
            if step_verdict(stream) != "sustained":
                break
    finally:
        stub.terminate()
        stub.wait(10)
    return rows


# ---------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (~2 minutes)")
    parser.add_argument("--workers", type=int, nargs="+", choices=(1, 2), default=[1])
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server URL; a dedicated schema is created there and dropped after",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="baseline predict rate (/s)")
    parser.add_argument("--duration", type=float, default=None, help="baseline seconds")
    parser.add_argument("--steps", type=float, nargs="+", default=None, help="step rates (/s)")
    parser.add_argument("--step-duration", type=float, default=None, help="seconds per step")
    parser.add_argument(
        "--step-retries", type=int, default=1, help="repeats of a failed step before stopping"
    )
    parser.add_argument("--read-rate", type=float, default=20.0, help="read mix rate (/s)")
    parser.add_argument("--connections", type=int, default=64, help="predict connection pool")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout (s)")
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
    )
    parser.add_argument("--days", type=int, default=None, help="simulated days to train on")
    parser.add_argument(
        "--api-key", default=None, help="run the server with this key on every endpoint"
    )
    parser.add_argument(
        "--scheduler",
        action="store_true",
        help="keep the scheduler running inside the server (off by default: serving alone)",
    )
    args = parser.parse_args()
    args.duration = args.duration or (3.0 if args.quick else 20.0)
    args.step_duration = args.step_duration or (2.0 if args.quick else 10.0)
    args.steps = args.steps or (
        [300, 400] if args.quick else [300, 400, 600, 800, 1000, 1200, 1500, 2000, 2500]
    )
    args.ceiling_rates = [2000, 4000] if args.quick else [1000, 2000, 4000, 6000, 8000]
    args.ceiling_duration = 1.5 if args.quick else 4.0
    args.days = args.days or (21 if args.quick else 28)
    return args


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--generate":
        generator_main(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--stub-server":
        stub_server_main(int(sys.argv[2]))
        return
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="btcmlops-load-") as folder:
        workdir = Path(folder)
        with temporary_database(workdir, args.database_url) as url:
            results = run_all(args, workdir, url)
    path = write_results(f"load-{results['backend']}", results)
    print(f"\nresults written to {path}")
    if not results["all_zero_loss_passed"]:
        sys.exit(1)


def run_all(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
    backend = backend_name(url)
    print(f"load benchmark on {backend}, workers {args.workers}, {os.cpu_count()} CPUs (shared)")
    machine_before = environment()
    print(f"machine before: {machine_before}")
    settings = Settings(home=workdir / "home", database_url=url, _env_file=None)
    store = Store.open(url)
    try:
        began = time.perf_counter()
        pairs = [("vader", model_type) for model_type in MODEL_TYPES_TRAINED]
        # The simulator's own news rate (the tests' homes use one an hour), as measured.
        champions = build_trained_home(
            store,
            settings,
            END,
            days=args.days,
            pairs=pairs,
            news_rate_per_hour=SimulationConfig.news_rate_per_hour,
            actor="bench",
            reason="benchmark home",
        ).champions
        print(
            f"trained home: {args.days} simulated days, {len(champions)} champions "
            f"in {time.perf_counter() - began:.0f} s"
        )
        registry = ModelRegistry(store, settings.artifacts_dir, settings.make_clock())
        print("\nuncached single-row inference (in-process, one thread):")
        inference = uncached_inference(store, registry, champions, 1.0 if args.quick else 3.0)
        for model_type in MODEL_TYPES_TRAINED:
            numbers = inference[model_type]
            proba, miss = numbers["predict_proba_ms"], numbers["cache_miss_ms"]
            print(
                f"  {model_type:<20} predict_proba p50 {format_ms(proba['p50'], 6)} ms "
                f"p90 {format_ms(proba['p90'], 6)} ms | served cache miss p50 "
                f"{format_ms(miss['p50'], 6)} ms p90 {format_ms(miss['p90'], 6)} ms "
                f"({numbers['calls']} calls)"
            )
        context = inference["thread_limit_context_ms"]["p50"]
        print(f"  thread-limit context (prediction_threads) alone: p50 {format_ms(context, 0)} ms")
        ceiling: list[dict[str, Any]] = []
        if "ceiling" in args.phases:
            print("\ngenerator ceiling (against a stub server that answers at once):")
            ceiling = generator_ceiling(args, workdir)
        per_workers = [run_server(args, workdir, url, store, workers) for workers in args.workers]
    finally:
        store.close()
    passed = all(
        result["zero_loss_passed"] is not False
        for server in per_workers
        for result in [*server["runs"], server["after_shutdown"]]
    )
    print_summary(per_workers)
    return {
        "benchmark": "load",
        "backend": backend,
        "arguments": {k: v for k, v in vars(args).items() if k != "api_key"},
        "environment_before": machine_before,
        "environment_after": environment(),
        "uncached_inference": inference,
        "generator_ceiling": ceiling,
        "servers": per_workers,
        "all_zero_loss_passed": passed,
    }


def run_server(
    args: argparse.Namespace, workdir: Path, url: str, store: Store, workers: int
) -> dict[str, Any]:
    print(f"\n=== btcmlops serve --workers {workers} ({backend_name(url)}) ===")
    server = ServerProcess(
        workdir / "home",
        url,
        workers,
        workdir / f"server-w{workers}.log",
        api_key=args.api_key,
        scheduler=args.scheduler,
    ).start()
    bench = Bench(server, store, args, workdir)
    best = None
    exit_code = None
    try:
        server.wait_until_ready(store)
        print(HEADER)
        bench.warm_up()
        if "baseline" in args.phases:
            bench.baseline()
        if "steps" in args.phases:
            best = bench.steps()
        if "reads" in args.phases:
            bench.reads()
        if "mixed" in args.phases:
            bench.mixed()
        health = server.health()
        if "shutdown" in args.phases:
            exit_code = bench.shutdown_under_load(max(args.rate, best or 0))
    finally:
        if exit_code is None:
            exit_code = server.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the normal exit here.
    print(f"server stopped with SIGTERM (exit code {exit_code})")
    every_id = [i for result in bench.results for i in result.ids]
    after = check_zero_loss(store, every_id)
    print(f"after shutdown, all runs of this server: {after.line()}")
    writer = health["components"]["prediction_logging"]
    return {
        "workers": workers,
        "phases": args.phases,
        "runs": [result.as_dict() for result in bench.results],
        "highest_sustained_rate": best,
        "health_before_shutdown": health,
        "exit_code": exit_code,
        "after_shutdown": {**asdict(after), "zero_loss_passed": after.passed},
        "logger_counts": {k: writer[k] for k in ("written", "spooled", "replayed", "lost")},
    }


def print_summary(servers: list[dict[str, Any]]) -> None:
    print("\nsummary")
    for server in servers:
        best = server["highest_sustained_rate"]
        baseline = next((r for r in server["runs"] if r["name"].startswith("predict@")), None)
        line = f"  workers {server['workers']}: highest sustained rate with p99 <= 100 ms: "
        if "steps" not in server["phases"]:
            line += "not measured"
        else:
            line += f"{best:g}/s" if best is not None else "none of the steps"
        if baseline is not None:
            latency = baseline["streams"]["predict"]["latency_ms"]
            line += (
                f"; {baseline['name']}: p50 {format_ms(latency['p50'], 0)} ms (target 5), "
                f"p99 {format_ms(latency['p99'], 0)} ms (target 25)"
            )
        print(line)


if __name__ == "__main__":
    main()
