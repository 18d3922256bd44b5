"""Several workers on PostgreSQL: ``btcmlops serve --workers 2`` plus a separate
``btcmlops scheduler``, all real processes over one database.

Predictions go through both workers, retraining is requested from both at once (exactly one
runs), both workers then serve the new champion, every prediction id is unique and stored
once, and only one process holds the scheduler lease.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from btcmlops.clock import parse_utc
from btcmlops.config import Settings
from btcmlops.db.models import Lease, ModelVersion, PredictionLog, RetrainingRun, WorkerNode
from btcmlops.db.store import Store
from btcmlops.mlops.predictions.ids import MAX_NODE
from btcmlops.mlops.scheduler import HEARTBEAT_SECONDS, SCHEDULER_LEASE
from btcmlops.modeling.training import load_training_data, train_on
from btcmlops.testing import build_trained_home

from support import POSTGRES_URL, free_port, fresh_database, node_of

pytestmark = [
    pytest.mark.e2e,  # real uvicorn workers and a scheduler process on one PostgreSQL
    pytest.mark.skipif(
        not POSTGRES_URL, reason="several workers need PostgreSQL: set BTCMLOPS_TEST_POSTGRES_URL"
    ),
]

END = parse_utc("2024-03-01T00:00:00Z")
PAIR = ("vader", "logistic_regression")  # retrains in about a second
API_KEY = "multiworker-test-key"
RETRAIN_REQUESTS_PER_WORKER = 3


def wait_for(
    condition: Callable[[], object], what: str | Callable[[], str], timeout: float = 60
) -> object:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    described = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout} s waiting for {described}")


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    return stream.get_extra_info("socket").getsockname()[1]


@dataclass
class Deployment:
    """The processes of one deployment, what the test reads from its database, and every
    prediction answered to the test (``answers``)."""

    url: str
    store: Store
    base_url: str
    env: dict[str, str]
    folder: Path
    processes: dict[str, subprocess.Popen] = dataclasses.field(default_factory=dict)
    answers: list[dict] = dataclasses.field(default_factory=list)
    watches: list[LeaseWatch] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def predict(self, session: httpx.Client) -> dict:
        """One prediction over ``session``'s connection: its id, worker node and version."""
        answer = session.post("/predict", params={"feature_set": PAIR[0], "model_type": PAIR[1]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        shown = {
            "id": body["prediction_id"],
            "node": node_of(body["prediction_id"]),
            "version": body["model_info"]["model_version"],
            "port": local_port(answer),
        }
        with self._lock:
            self.answers.append(shown)
        return shown

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "btcmlops", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def worker_pids(self) -> dict[int, int]:
        """Node -> pid of every live worker of ``serve`` (registered in ``worker_nodes``)."""
        serve = self.processes["serve"].pid
        with self.store.session() as session:
            rows = session.execute(select(WorkerNode.id, WorkerNode.pid)).all()
        return {row_id % (MAX_NODE + 1): pid for row_id, pid in rows if parent_pid(pid) == serve}

    def champion(self) -> str:
        with self.store.session() as session:
            return session.scalar(
                select(ModelVersion.version).where(
                    ModelVersion.feature_set == PAIR[0],
                    ModelVersion.model_type == PAIR[1],
                    ModelVersion.status == "champion",
                )
            )

    def registered_pids(self) -> set[int]:
        with self.store.session() as session:
            return set(session.scalars(select(WorkerNode.pid)))

    def scheduler_lease_holders(self) -> list[str]:
        with self.store.session() as session:
            return list(session.scalars(select(Lease.holder).where(Lease.name == SCHEDULER_LEASE)))


def holder_pid(holder: str) -> int:
    """The pid in a lease holder id (``host:pid:random``, ``mlops.leases``)."""
    return int(holder.split(":")[-2])


class LeaseWatch(threading.Thread):
    """Samples the scheduler lease holders in the background until stopped, and notes when
    the process ``name`` said its scheduler runs (it then tries to take the lease)."""

    def __init__(self, deployment: Deployment, name: str) -> None:
        super().__init__(daemon=True)
        self.deployment = deployment
        self.name_watched = name
        self.running_since: float | None = None
        self.seen: set[tuple[str, ...]] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.25):
            self.seen.add(tuple(self.deployment.scheduler_lease_holders()))
            if self.running_since is None and "scheduler running" in self.deployment.log(
                self.name_watched
            ):
                self.running_since = time.monotonic()

    def heartbeat_round_done(self) -> bool:
        """True once every scheduler, the watched one included, had a heartbeat since."""
        since = self.running_since
        return since is not None and time.monotonic() - since > HEARTBEAT_SECONDS + 2

    def stop(self) -> set[tuple[str, ...]]:
        self._stop_event.set()
        self.join()
        return self.seen


def bad_champion(home) -> None:  # type: ignore[no-untyped-def]
    """Replace the champion by one trained on shuffled labels, so retraining must deploy."""
    data = load_training_data(home.store, PAIR[0], clock=home.clock, settings=home.settings)
    targets = data.targets.copy()
    known = targets.notna().to_numpy()
    targets[known] = np.random.default_rng(11).permutation(targets[known].to_numpy())
    trained = train_on(
        dataclasses.replace(data, targets=targets),
        feature_set=PAIR[0],
        model_type=PAIR[1],
        settings=home.settings,
    )
    info = home.registry.register(trained, created_by="test", reason="a bad champion")
    home.registry.promote(info.version, actor="test", reason="make a bad champion")


@pytest.fixture
def deployment(tmp_path, postgres_admin_url) -> Iterator[Deployment]:
    with fresh_database("postgresql", tmp_path, postgres_admin_url) as url:
        store = Store.open(url)
        settings = Settings(home=tmp_path / "home", database_url=url, _env_file=None)
        # A market with a strong signal, so the retrained challenger clearly beats a bad one.
        home = build_trained_home(store, settings, END, days=60, signal_strength=0.6, pairs=(PAIR,))
        bad_champion(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
        env.update(
            BTCMLOPS_HOME=str(settings.home),
            BTCMLOPS_DATABASE_URL=url,
            BTCMLOPS_NOW=END.isoformat(),
            BTCMLOPS_API_KEY=API_KEY,
        )
        port = free_port()
        running = Deployment(url, store, f"http://127.0.0.1:{port}", env, tmp_path)
        try:
            yield running
        finally:
            for watch in running.watches:
                watch.stop()
            for process in running.processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
            store.close()


def accepts_connections(deployment: Deployment) -> bool:
    """Whether the server answers at all (any status: only the connection matters here)."""
    try:
        with client(deployment) as session:
            session.get("/health")
    except httpx.TransportError:
        return False
    return True


def client(deployment: Deployment) -> httpx.Client:
    """A client with a connection of its own (so the kernel may hand it to either worker)."""
    return httpx.Client(base_url=deployment.base_url, headers={"X-API-Key": API_KEY}, timeout=120)


def predict_on_new_connections(
    deployment: Deployment, until: Callable[[list[dict]], bool], *, threads: int = 6
) -> list[dict]:
    """Predictions from ``threads`` threads, each on a fresh connection per request, until
    ``until(answers)`` holds (or a minute passes)."""
    answers: list[dict] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            while not done.is_set():
                with client(deployment) as session:
                    answer = deployment.predict(session)
                with lock:
                    answers.append(answer)
                    if until(answers):
                        done.set()
        except BaseException as exc:  # reported in the test thread
            errors.append(exc)
            done.set()

    pool = [threading.Thread(target=drive) for _ in range(threads)]
    for thread in pool:
        thread.start()
    done.wait(60)
    done.set()
    for thread in pool:
        thread.join()
    if errors:
        # What the processes were doing, so that a refused or dropped connection explains
        # itself (seen once under full-suite load, not reproduced since).
        states = {name: process.poll() for name, process in deployment.processes.items()}
        raise AssertionError(
            f"{errors[0]!r} after {len(answers)} predictions; exit codes (None: running): "
            f"{states}; serve log:\n{deployment.log('serve')[-3000:]}"
        ) from errors[0]
    assert until(answers), f"not reached after {len(answers)} predictions"
    return answers


def connections_per_worker(deployment: Deployment, count: int) -> dict[int, list[httpx.Client]]:
    """``count`` open connections to each worker, each identified by a prediction over it."""
    pinned: dict[int, list[httpx.Client]] = {}
    spare: list[httpx.Client] = []
    deadline = time.monotonic() + 60
    while any(len(pinned.get(node, [])) < count for node in deployment.worker_pids()):
        assert time.monotonic() < deadline, f"connections reached only nodes {sorted(pinned)}"
        session = client(deployment)
        node = deployment.predict(session)["node"]
        (pinned.setdefault(node, []) if len(pinned.get(node, [])) < count else spare).append(
            session
        )
    for session in spare:
        session.close()
    return pinned


def test_two_workers_and_a_scheduler_share_one_postgres_correctly(deployment):
    serve = deployment.start(
        "serve", "serve", "--workers", "2", "--port", deployment.base_url.rsplit(":", 1)[1]
    )
    scheduler = deployment.start("scheduler", "scheduler")
    # Three processes run a scheduler (two workers, `btcmlops scheduler`); one leads. A
    # second `btcmlops scheduler` starts as soon as there is a leader, and must stand by.
    (holder,) = wait_for(deployment.scheduler_lease_holders, "a scheduler lease holder")
    second = deployment.start("second-scheduler", "scheduler")
    watch = LeaseWatch(deployment, "second-scheduler")
    deployment.watches.append(watch)
    watch.start()
    wait_for(
        lambda: len(deployment.worker_pids()) == 2 and serve.poll() is None,
        lambda: f"two registered workers; serve log:\n{deployment.log('serve')[-3000:]}",
    )
    wait_for(lambda: scheduler.pid in deployment.registered_pids(), "the scheduler to start")
    # A worker registers during its start-up, before it listens: the port refuses connections
    # until the first worker is serving (a refused prediction here on a slow machine).
    wait_for(
        lambda: accepts_connections(deployment),
        lambda: f"the server to accept connections; serve log:\n{deployment.log('serve')[-3000:]}",
    )
    workers = deployment.worker_pids()
    assert len(set(workers)) == 2, f"two workers share a node: {workers}"
    assert holder_pid(holder) in {*workers.values(), scheduler.pid}, holder

    # ---- predictions reach both workers; the champion is the bad one ------------------
    def both_nodes_answered(answers: list[dict]) -> bool:
        return len(answers) >= 60 and {a["node"] for a in answers} >= set(workers)

    answers = predict_on_new_connections(deployment, both_nodes_answered)
    assert {a["node"] for a in answers} == set(workers)
    (bad_version,) = {a["version"] for a in answers}
    assert bad_version == deployment.champion()

    # ---- retraining requested from both workers at once: exactly one runs -------------
    pinned = connections_per_worker(deployment, RETRAIN_REQUESTS_PER_WORKER)
    barrier = threading.Barrier(sum(len(sessions) for sessions in pinned.values()))
    outcomes: list[tuple[int, httpx.Response, bool]] = []
    lock = threading.Lock()

    def retrain(node: int, session: httpx.Client) -> None:
        port = deployment.predict(session)["port"]  # keeps the connection alive, too
        barrier.wait()
        answer = session.post(
            "/retrain/execute", params={"feature_set": PAIR[0], "model_type": PAIR[1]}
        )
        same_connection = local_port(answer) == port
        with lock:
            outcomes.append((node, answer, same_connection))

    pool = [
        threading.Thread(target=retrain, args=(node, session))
        for node, sessions in pinned.items()
        for session in sessions
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for sessions in pinned.values():
        for session in sessions:
            session.close()
    # Each request went over the connection whose prediction named its worker.
    assert all(same_connection for _, _, same_connection in outcomes)
    assert {node for node, _, _ in outcomes} == set(workers)
    accepted = [answer for _, answer, _ in outcomes if answer.status_code in (200, 202)]
    refused = [answer for _, answer, _ in outcomes if answer.status_code == 409]
    summary = "retraining requests (node, status, job id):\n" + "\n".join(
        f"  node {node}: {answer.status_code} {answer.json().get('job_id')}"
        for node, answer, _ in sorted(outcomes, key=lambda outcome: outcome[0])
    )
    assert len(accepted) == 1 and len(refused) == len(outcomes) - 1, summary
    winner = accepted[0].json()
    job_id = winner["job_id"]
    assert all(answer.json()["job_id"] == job_id for answer in refused), summary
    assert all(job_id in answer.json()["detail"] for answer in refused), summary
    if accepted[0].status_code == 202:  # still running after the synchronous timeout
        wait_for(
            lambda: (
                httpx.get(f"{deployment.base_url}/retrain/jobs/{job_id}").json()["job"]["status"]
                != "running"
            ),
            "the retraining job to finish",
            timeout=120,
        )
    with deployment.store.session() as session:
        runs = session.scalars(select(RetrainingRun)).all()
        assert [(run.job_id, run.status, run.decision) for run in runs] == [
            (job_id, "succeeded", "deployed")
        ], [(run.job_id, run.status, run.decision, run.decision_reason) for run in runs]
        new_version = runs[0].challenger_version
    assert new_version != bad_version

    # ---- both workers pick up the new champion ----------------------------------------
    def both_serve_new(answers: list[dict]) -> bool:
        return {a["node"] for a in answers if a["version"] == new_version} >= set(workers)

    predict_on_new_connections(deployment, both_serve_new)

    # ---- one scheduler lease holder, also after a second scheduler started -----------
    # Every process renews or tries to take the lease each heartbeat: watch a full round.
    wait_for(watch.heartbeat_round_done, "a heartbeat round of every scheduler")
    assert watch.stop() == {(holder,)}
    assert second.poll() is None, deployment.log("second-scheduler")
    leaders = []
    for sessions in connections_per_worker(deployment, 1).values():
        for session in sessions:
            jobs = session.get("/scheduler/jobs").json()
            assert jobs["running"] is True and jobs["lease_holder"] == holder
            leaders.append(jobs["leader"])
            session.close()
    assert leaders.count(True) == (1 if holder_pid(holder) in workers.values() else 0)

    # ---- clean stop; every prediction id unique and stored exactly once ---------------
    for process in (serve, scheduler, second):
        process.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) == 0, deployment.log("serve")[-3000:]
    for process in (scheduler, second):
        process.wait(timeout=30)
    ids = [a["id"] for a in deployment.answers]
    assert len(set(ids)) == len(ids), "a prediction id was handed out twice"
    with deployment.store.session() as session:
        stored = session.execute(
            select(PredictionLog.id, PredictionLog.model_version).where(
                PredictionLog.source == "api"
            )
        ).all()
    # Every id answered is stored, once, with the version that answered it; nothing else.
    assert sorted(stored) == sorted((a["id"], a["version"]) for a in deployment.answers)
    for name in ("serve", "scheduler", "second-scheduler"):
        assert "Traceback" not in deployment.log(name), deployment.log(name)[-3000:]
