"""Fault injectors for tests/test_faults.py: real faults, not mocks.

- :class:`TcpProxy`: a relay in front of PostgreSQL; stopping it is a network outage (the
  listener closes and every relayed connection is cut), starting it again is the recovery.
- :class:`SmallDisk`: a small tmpfs (mounting needs root) that a test fills up and frees
  again: a full disk under the spool or under the SQLite database.
- :class:`ServerProcess`: ``python -m btcmlops serve`` on a home, its output in a log file.
- :class:`PredictionStream`: a thread posting ``/predict`` without pause, keeping every answer.
- :class:`PromotionVictim`: a process promoting two versions in turn that can stop dead at a
  chosen point inside the promotion transaction, so the test kills it exactly there.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from support import IN_CI, free_port, wait_until


def eventually(condition: Callable[[], Any], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; say which (never raises)."""
    try:
        wait_until(condition, timeout=timeout, what="", interval=interval)
    except AssertionError:
        return False
    return True


# --------------------------------------------------------------------------- network fault
class TcpProxy:
    """Relays ``127.0.0.1:<port>`` to ``target``; :meth:`stop` is an outage, :meth:`start` the
    recovery (on the same port, so clients reconnect to the same address)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR on POSIX
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="tcp-proxy", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a failed network would."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            _cut(connection)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the outage has begun
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _cut(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # stopped while connecting
                    _cut(client)
                    _cut(upstream)
                    return
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(sink)
            _cut(source)
            _cut(sink)


def _cut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


# ------------------------------------------------------------------------------ disk fault
class SmallDisk:
    """A tmpfs of ``size_bytes`` at ``path``: a disk a test can fill and free again."""

    FILLER = ".filler"

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.mounted = False

    def mount(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PermissionError(result.stderr.strip() or "mount failed")
        self.mounted = True
        return self

    def unmount(self) -> None:
        if not self.mounted:
            return
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)  # still busy
        self.mounted = False

    def fill(self, leave_free: int = 0) -> None:
        """Write a filler file until the disk refuses (ENOSPC), then give back ``leave_free``
        bytes (the kernel rounds to pages)."""
        filler = self.path / self.FILLER
        chunk = b"\0" * 65536
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                try:
                    os.write(descriptor, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            if leave_free:
                size = os.fstat(descriptor).st_size
                os.ftruncate(descriptor, max(size - leave_free, 0))
        finally:
            os.close(descriptor)

    def free(self) -> None:
        (self.path / self.FILLER).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize


def mount_small_disk(path: Path, size_bytes: int) -> SmallDisk:
    """Mount a :class:`SmallDisk`, or fail in CI / skip elsewhere when mounting is refused."""
    import pytest

    disk = SmallDisk(path, size_bytes)
    try:
        return disk.mount()
    except (PermissionError, FileNotFoundError) as exc:
        message = f"a full disk is simulated with a small tmpfs, and mounting one failed: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------- the server
class ServerProcess:
    """``python -m btcmlops serve --no-scheduler`` on ``home``, logging to ``log_path``."""

    def __init__(self, home: Path, database_url: str, now: str, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
        env.update(
            BTCMLOPS_HOME=str(home),
            BTCMLOPS_DATABASE_URL=database_url,
            BTCMLOPS_NOW=now,
            OMP_NUM_THREADS="1",
        )
        self._log = log_path.open("wb")
        # No scheduler: its wall-clock jobs must not run in the middle of a fault test.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "btcmlops", "serve", "--port", str(self.port), "--no-scheduler"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    def wait_until_serving(self, timeout: float = 90) -> dict[str, Any]:
        """Wait for ``/health`` to say healthy (the champion is loaded)."""

        def healthy() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_tail()}")
            try:
                health = self.client.get("/health", timeout=2).json()
            except httpx.TransportError:
                return None
            return health if health.get("status") == "healthy" else None

        return wait_until(healthy, timeout=timeout, what="the server to be healthy")

    def health(self) -> dict[str, Any]:
        return self.client.get("/health").json()

    def wait_for_health(
        self, predicate: Callable[[dict[str, Any]], bool], *, what: str, timeout: float = 30
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.health()
            return last if predicate(last) else None

        try:
            return wait_until(check, timeout=timeout, what=what, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last /health: {last}\n{self.log_tail()}") from None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): nothing in it runs until :meth:`resume`."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process cannot exit
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "server log (last lines):\n" + "\n".join(text[-lines:])


# ------------------------------------------------------------------------ the load driver
@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    prediction_id: int | None
    model_version: str | None
    detail: str


class PredictionStream:
    """Posts ``/predict`` back to back on its own thread until stopped; keeps every answer."""

    def __init__(self, base_url: str, feature_set: str = "vader") -> None:
        self.base_url = base_url
        self.feature_set = feature_set
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-stream", daemon=True)

    def __enter__(self) -> PredictionStream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def count(self) -> int:
        return len(self.answers)

    def wait_for_more(self, how_many: int, timeout: float = 60) -> None:
        target = self.count + how_many
        wait_until(lambda: self.count >= target, timeout=timeout, what=f"{target} answers")

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/predict", params={"feature_set": self.feature_set})
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(None, None, None, f"{type(exc).__name__}: {exc}"))
                    continue
                body = _json_or_none(response)
                self.answers.append(
                    Answer(
                        response.status_code,
                        body.get("prediction_id") if body else None,
                        (body.get("model_info") or {}).get("model_version") if body else None,
                        "" if response.status_code == 200 else response.text[:300],
                    )
                )


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# ------------------------------------------------------------------ the promotion victim
# Where the victim stops dead, waiting to be killed. The promotion transaction archives the
# old champion and flushes (point "archived"), marks the new one champion and adds the history
# row and flushes ("flushed"), then commits ("committing" fires just before the database
# COMMIT, "committed" just after it).
KILL_POINTS = ("archived", "flushed", "committing", "committed")

# Victims are forked from a server process that has imported the registry once: a round
# costs milliseconds instead of a fresh interpreter's imports.
_VICTIMS = multiprocessing.get_context("forkserver")
_VICTIMS.set_forkserver_preload(["faults_support", "btcmlops.modeling.registry"])


class PromotionVictim:
    """A separate process promoting ``versions`` in turn until it is killed (SIGKILL)."""

    def __init__(
        self,
        url: str,
        artifacts_dir: Path,
        versions: list[str],
        start_iso: str,
        stop_at: str | None,
    ) -> None:
        self._messages, child_end = _VICTIMS.Pipe(duplex=False)
        self.process = _VICTIMS.Process(
            target=promotion_loop,
            args=(child_end, url, str(artifacts_dir), versions, start_iso, stop_at),
            daemon=True,
        )
        self.process.start()
        child_end.close()
        self.received: list[str] = []

    def wait_for(self, message: str, timeout: float = 120) -> None:
        """Wait until the victim has said ``message``."""
        self._receive_until(lambda: message in self.received, message, timeout)

    def wait_for_promotions(self, count: int, timeout: float = 120) -> None:
        """Wait until the victim has reported ``count`` completed promotions."""
        self._receive_until(lambda: self.completed >= count, f"{count} promotions", timeout)

    def _receive_until(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the promotion process never got to {what}")
            if not self._messages.poll(remaining):
                continue
            try:
                self.received.append(self._messages.recv())
            except EOFError:
                raise AssertionError(
                    f"the promotion process ended (exit code {self.process.exitcode}) before "
                    f"{what}; it said {self.received}"
                ) from None

    def kill(self) -> None:
        """SIGKILL, then collect what it said before dying."""
        self.process.kill()
        self.process.join(timeout=30)
        try:
            while self._messages.poll():
                self.received.append(self._messages.recv())
        except EOFError:
            pass
        self._messages.close()

    @property
    def completed(self) -> int:
        """Promotions it reported as done (a last one may have committed unreported)."""
        return sum(message.startswith("promoted") for message in self.received)


def promotion_loop(
    messages: Connection,
    url: str,
    artifacts_dir: str,
    versions: list[str],
    start_iso: str,
    stop_at: str | None,
) -> None:
    """Promote ``versions`` in turn, forever, sending ``promoted <version>`` after each.

    With ``stop_at`` (one of :data:`KILL_POINTS`), send ``at <point>`` on the first
    promotion that reaches that point and block there until killed.
    """
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from btcmlops.clock import ManualClock, parse_utc
    from btcmlops.db.store import Store
    from btcmlops.errors import ConflictError
    from btcmlops.modeling.registry import ModelRegistry

    store = Store.open(url, upgrade=False)
    clock = ManualClock(parse_utc(start_iso))
    registry = ModelRegistry(store, Path(artifacts_dir), clock)
    flushes = 0

    def halt(point: str) -> None:
        messages.send(f"at {point}")
        threading.Event().wait()  # nothing sets it: blocks here, mid-transaction, until killed

    @event.listens_for(Session, "after_flush")
    def _after_flush(_session: Session, _context: object) -> None:
        nonlocal flushes
        flushes += 1
        if stop_at in ("archived", "flushed") and KILL_POINTS[flushes - 1] == stop_at:
            halt(stop_at)

    @event.listens_for(store.engine, "commit")
    def _before_commit(_connection: object) -> None:
        if stop_at == "committing" and flushes >= 2:  # the promotion's commit, not a read's
            halt(stop_at)

    @event.listens_for(Session, "after_commit")
    def _after_commit(_session: Session) -> None:
        if stop_at == "committed" and flushes >= 2:
            halt(stop_at)

    messages.send("ready")
    turn = 0
    while True:
        version = versions[turn % len(versions)]
        turn += 1
        clock.advance(seconds=1)
        try:
            registry.promote(version, actor="fault-test", reason=f"promotion {turn}")
        except ConflictError:
            continue  # already the champion (the previous victim was killed after promoting it)
        messages.send(f"promoted {version}")
