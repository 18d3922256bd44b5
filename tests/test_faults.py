"""The faults the service must survive, each against the real components
(tests/faults_support.py injects them): the store going away under a prediction load, SIGKILL
during a champion promotion, damaged artifacts, a full spool disk, and live sources that time
out or answer garbage.

Servers are real ``python -m btcmlops serve`` processes on a copy of one trained home per
backend. A PostgreSQL outage is a TCP relay the test stops (connections refused and cut); on
SQLite, whose store is a local file, the outage is the database's disk filling up (a small
tmpfs), which makes every write fail while reads still work. Full disks need root to mount
the tmpfs (CI runs as root); elsewhere those tests skip and say why.
"""

from __future__ import annotations

import itertools
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from btcmlops.clock import HOUR, ManualClock, parse_utc
from btcmlops.config import Settings
from btcmlops.context import AppContext
from btcmlops.db.models import JobRun, ModelVersion, PredictionLog, PriceBar
from btcmlops.db.store import Store
from btcmlops.mlops.runtime import Runtime
from btcmlops.mlops.scheduler import Scheduler
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.training import DEFAULT_SEED, train_from_store
from btcmlops.serving.predictor import Predictor
from btcmlops.testing import TrainedHome, build_trained_home

from faults_support import (
    KILL_POINTS,
    PredictionStream,
    PromotionVictim,
    ServerProcess,
    SmallDisk,
    TcpProxy,
    eventually,
    mount_small_disk,
)
from support import clone_database, fresh_database, reopen_home, wait_until

# Real server processes, SIGKILLed promotions and full disks over a trained home.
pytestmark = pytest.mark.e2e

END = parse_utc("2024-03-01T00:00:00Z")
PAIR = ("vader", "random_forest")
PAIR_KEY = "vader/random_forest"
MB = 1024 * 1024


# ------------------------------------------------------------------------------ homes
@dataclass
class Template:
    home: TrainedHome
    challenger: str  # a second registered version of PAIR, never promoted


@pytest.fixture(scope="module")
def template(backend, tmp_path_factory, request) -> Iterator[Template]:
    """One trained home per backend (champion A of PAIR plus a candidate B)."""
    folder = tmp_path_factory.mktemp(f"faults-{backend}")
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    with fresh_database(backend, folder, admin) as url:
        store = Store.open(url)
        settings = Settings(home=folder / "home", database_url=url, _env_file=None)
        built = build_trained_home(store, settings, END, pairs=(PAIR,))
        trained = train_from_store(
            store,
            *PAIR,
            clock=built.clock,
            settings=settings,
            symbol=settings.symbol,
            seed=DEFAULT_SEED + 1,
            with_importances=False,
        )
        challenger = built.registry.register(trained, created_by="test", reason="candidate B")
        store.close()
        yield Template(built, challenger.version)


@dataclass
class Home:
    """A copy of the template: its store (opened by the test), folder and URL."""

    trained: TrainedHome
    url: str
    folder: Path
    challenger: str

    @property
    def registry(self) -> ModelRegistry:
        return self.trained.registry

    @property
    def store(self) -> Store:
        return self.trained.store

    @property
    def champion(self) -> str:
        return self.trained.champions[PAIR].version


def copy_home(
    template: Template,
    backend: str,
    folder: Path,
    request: pytest.FixtureRequest,
    database_folder: Path | None = None,
) -> Home:
    """A private copy of the template; SQLite's file goes to ``database_folder`` if given."""
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None
    source_url = template.home.settings.effective_database_url
    url = clone_database(backend, source_url, database_folder or folder, admin)
    shutil.copytree(template.home.settings.home, folder / "home")
    trained = reopen_home(url, folder / "home", template.home, END)
    return Home(trained, url, folder / "home", template.challenger)


@pytest.fixture
def home(template, backend, tmp_path, request) -> Iterator[Home]:
    copied = copy_home(template, backend, tmp_path, request)
    yield copied
    copied.store.close()


# ------------------------------------------------------------------------ store outages
class StoreOutage(Protocol):
    """Takes the server's store away and gives it back. ``unreachable``: /health's store
    check fails too (PostgreSQL), not only writes (SQLite on a full disk)."""

    server_url: str
    unreachable: bool

    def begin(self) -> None: ...

    def end(self) -> None: ...

    def close(self) -> None: ...


class NetworkOutage:
    """PostgreSQL behind a relay: the server connects through it, the test directly."""

    unreachable = True

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432).start()
        self.server_url = parsed.set(port=self.proxy.port).render_as_string(hide_password=False)

    def begin(self) -> None:
        self.proxy.stop()

    def end(self) -> None:
        if not self.proxy.running:
            self.proxy.start()

    def close(self) -> None:
        self.proxy.stop()


class FullDatabaseDisk:
    """SQLite on a small disk: filled, every write fails (SQLITE_FULL); freed, they work."""

    unreachable = False

    def __init__(self, disk: SmallDisk, url: str) -> None:
        self.disk = disk
        self.server_url = url

    def begin(self) -> None:
        self.disk.fill()

    def end(self) -> None:
        self.disk.free()

    def close(self) -> None:
        self.disk.free()


@pytest.fixture
def outage_home(template, backend, tmp_path, request) -> Iterator[tuple[Home, StoreOutage]]:
    """A home whose store the test can take away from the server and give back."""
    disk = None
    if backend == "sqlite":
        database = Path(make_url(template.home.settings.effective_database_url).database)
        # Room for the copy and for what the test writes; the fault fills the rest.
        disk = mount_small_disk(tmp_path / "database-disk", database.stat().st_size + 64 * MB)
    try:
        copied = copy_home(template, backend, tmp_path, request, disk.path if disk else None)
        outage: StoreOutage = (
            FullDatabaseDisk(disk, copied.url) if disk else NetworkOutage(copied.url)
        )
        try:
            yield copied, outage
        finally:
            outage.close()
            copied.store.close()
    finally:
        if disk is not None:
            disk.unmount()


@contextmanager
def running_server(
    home: Home, tmp_path: Path, database_url: str | None = None
) -> Iterator[ServerProcess]:
    """A ``btcmlops serve`` process on ``home``, healthy before the block starts."""
    server = ServerProcess(
        home.folder, database_url or home.url, END.isoformat(), tmp_path / "server.log"
    )
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


def logging_of(health: dict[str, Any]) -> dict[str, Any]:
    return health["components"]["prediction_logging"]


def stored_prediction_ids(store: Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(PredictionLog.id)))


def check_every_answer_succeeded(stream: PredictionStream) -> list[int]:
    """The ids of the stream's answers, after checking each was a 200 with a unique id."""
    failed = [a for a in stream.answers if a.status != 200 or a.prediction_id is None]
    assert not failed, f"{len(failed)} of {stream.count} predictions failed, e.g. {failed[:3]}"
    ids = [answer.prediction_id for answer in stream.answers]
    assert len(set(ids)) == len(ids), "two answers carried the same prediction id"
    return ids


# ----------------------------------------------------------- 1. the store goes away
def test_a_store_outage_under_load_loses_and_duplicates_no_prediction(outage_home, tmp_path):
    home, outage = outage_home
    with running_server(home, tmp_path, outage.server_url) as server:
        with PredictionStream(server.base_url) as stream:
            stream.wait_for_more(20)
            outage.begin()
            during = server.wait_for_health(
                lambda h: h["status"] == "degraded" and logging_of(h)["state"] == "spooling",
                what="/health to report the outage",
            )
            if outage.unreachable:
                assert during["components"]["store"]["status"] == "unavailable"
            stream.wait_for_more(150)  # a load while the store is away
            still_down = server.health()
            assert still_down["status"] == "degraded"
            assert logging_of(still_down)["state"] == "spooling"
            assert logging_of(still_down)["spooled"] > 0
            outage.end()
            recovered = server.wait_for_health(
                lambda h: (
                    h["status"] == "healthy"
                    and logging_of(h)["state"] == "ok"
                    and logging_of(h)["spool_bytes"] == 0
                ),
                what="the spool to be replayed",
            )
            stream.wait_for_more(20)
        ids = check_every_answer_succeeded(stream)
        wait_until(
            lambda: len(stored_prediction_ids(home.store)) >= len(ids),
            timeout=30,
            what="every answered prediction to reach the store",
        )
        final = logging_of(server.health())
    stored = Counter(stored_prediction_ids(home.store))
    assert set(stored) == set(ids), (
        f"{len(set(ids) - set(stored))} answered predictions missing, "
        f"{len(set(stored) - set(ids))} stored that nobody was answered"
    )
    assert max(stored.values()) == 1
    assert logging_of(recovered)["replayed"] > 0
    assert final["lost"] == 0 and final["spooled"] > 0


# ------------------------------------------------------- 2. SIGKILL during a promotion
def check_one_verified_champion(url: str, home: Home) -> list:
    """What a restarted process sees: one champion of PAIR, loadable, at the history's end."""
    store = Store.open(url)  # a fresh process's view: new connections, nothing cached
    try:
        registry = ModelRegistry(store, home.trained.settings.artifacts_dir, home.trained.clock)
        with store.session() as session:
            champions = dict(
                session.execute(
                    select(ModelVersion.feature_set + "/" + ModelVersion.model_type, func.count())
                    .where(ModelVersion.status == "champion")
                    .group_by(ModelVersion.feature_set, ModelVersion.model_type)
                ).all()
            )
            if store.dialect == "sqlite":
                assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert champions == {PAIR_KEY: 1}  # exactly one champion per pair
        champion = registry.champion(*PAIR)
        registry.load_pipeline(champion)  # raises if the artifact fails its checks
        history = registry.champion_history(*PAIR)
        assert history[-1].version == champion.version
        for earlier, later in itertools.pairwise(history):
            assert later.previous_version == earlier.version, "the champion history has a gap"
        return history
    finally:
        store.close()


def test_sigkill_during_promotions_leaves_exactly_one_verified_champion(home):
    # Every point inside the promotion transaction, then kills at random instants.
    rounds: list[str | None] = [*KILL_POINTS, None, None, None, None]
    rng = random.Random(20240301)
    history = check_one_verified_champion(home.url, home)
    for number, stop_at in enumerate(rounds, start=1):
        start = (END + timedelta(days=number)).isoformat()  # later rounds change later
        victim = PromotionVictim(
            home.url,
            home.trained.settings.artifacts_dir,
            [home.champion, home.challenger],
            start,
            stop_at,
        )
        try:
            victim.wait_for("ready")
            if stop_at is None:
                victim.wait_for_promotions(rng.randint(1, 3))
                # The delay picks the instant of the kill, somewhere in the next promotions;
                # nothing waits on it.
                time.sleep(rng.uniform(0.0, 0.6))
            else:
                victim.wait_for(f"at {stop_at}")
        finally:
            victim.kill()
        before = len(history)
        history = check_one_verified_champion(home.url, home)
        added, completed = len(history) - before, victim.completed
        where = f"round {number}, killed {'at ' + stop_at if stop_at else 'at random'}"
        if stop_at == "committed":
            assert added == completed + 1, where
        elif stop_at is not None:
            assert added == completed, where  # the promotion in flight left no trace
        else:
            assert added in (completed, completed + 1), where
    # A restarted server loads and serves the champion the registry points to.
    store = Store.open(home.url)
    try:
        registry = ModelRegistry(store, home.trained.settings.artifacts_dir, home.trained.clock)
        prediction = Predictor(store, registry, home.trained.clock).predict(*PAIR)
        assert prediction.model.version == registry.champion(*PAIR).version
    finally:
        store.close()


# ------------------------------------------------------------- 3. damaged artifacts
def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def garbled(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


def predicted_version(server: ServerProcess) -> str:
    answer = server.client.post("/predict", params={"feature_set": PAIR[0], "model_type": PAIR[1]})
    assert answer.status_code == 200, answer.text
    return answer.json()["model_info"]["model_version"]


def load_errors(health: dict[str, Any]) -> dict[str, str]:
    return health["components"]["models"]["load_errors"]


def loaded_versions(health: dict[str, Any]) -> list[str]:
    return [model["version"] for model in health["components"]["models"]["loaded"]]


def artifact(home: Home, version: str) -> Path:
    return home.registry.artifact_file(home.registry.get(version))


def test_a_damaged_artifact_is_never_promoted_and_the_champion_keeps_serving(home, tmp_path):
    path = artifact(home, home.challenger)
    original = path.read_bytes()
    with running_server(home, tmp_path) as server:
        for damage in (truncated, garbled, lambda data: b""):
            path.write_bytes(damage(original))
            refused = server.client.post("/models/promote", params={"version": home.challenger})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "ArtifactIntegrityError"
            assert home.registry.champion(*PAIR).version == home.champion
            assert predicted_version(server) == home.champion
        assert len(home.registry.champion_history(*PAIR)) == 1
        assert server.health()["status"] == "healthy"


def test_a_new_champion_that_cannot_load_leaves_the_previous_one_serving(home, tmp_path):
    challenger_file = artifact(home, home.challenger)
    intact = challenger_file.read_bytes()
    with running_server(home, tmp_path) as server:
        # Another process promotes B, then B's file is damaged before this server loads it;
        # freezing the server makes "before it loads it" certain.
        server.pause()
        try:
            home.registry.promote(home.challenger, actor="test", reason="by another process")
            challenger_file.write_bytes(truncated(intact))
        finally:
            server.resume()
        reload = server.client.post(
            "/models/reload", params={"feature_set": PAIR[0], "model_type": PAIR[1]}
        )
        assert reload.status_code == 200, reload.text
        assert reload.json()["model_info"]["version"] == home.champion  # what still serves
        health = server.wait_for_health(
            lambda h: PAIR_KEY in load_errors(h), what="/health to report the load error"
        )
        assert home.challenger in load_errors(health)[PAIR_KEY]
        assert loaded_versions(health) == [home.champion]
        assert health["status"] == "degraded"  # the registry's champion is not the one serving
        assert predicted_version(server) == home.champion
        # Repaired, the new champion is picked up without a restart.
        challenger_file.write_bytes(intact)
        server.wait_for_health(
            lambda h: loaded_versions(h) == [home.challenger] and not load_errors(h),
            what="the repaired champion to load",
        )
        assert predicted_version(server) == home.challenger


def test_damaged_files_of_the_serving_champion_keep_it_serving_and_reload_reports_them(
    home, tmp_path
):
    with running_server(home, tmp_path) as server:
        promoted = server.client.post("/models/promote", params={"version": home.challenger})
        assert promoted.status_code == 200, promoted.text
        assert predicted_version(server) == home.challenger
        for version, damage in ((home.champion, garbled), (home.challenger, truncated)):
            path = artifact(home, version)
            path.write_bytes(damage(path.read_bytes()))
        reload = server.client.post(
            "/models/reload", params={"feature_set": PAIR[0], "model_type": PAIR[1]}
        )
        assert reload.status_code != 500, reload.text
        assert predicted_version(server) == home.challenger  # served from memory
        health = server.health()
        assert loaded_versions(health) == [home.challenger]
        assert home.challenger in load_errors(health).get(PAIR_KEY, ""), (
            "POST /models/reload did not re-check the champion's artifact: "
            f"load_errors={load_errors(health)}"
        )
        assert health["status"] == "degraded"


# ------------------------------------------------------------ 4. a full spool disk
@pytest.fixture
def spool_disk(outage_home) -> Iterator[SmallDisk]:
    home, _ = outage_home
    disk = mount_small_disk(home.trained.settings.spool_dir, 32 * MB)
    yield disk
    disk.unmount()


def test_a_full_spool_disk_during_an_outage_answers_and_counts_every_lost_prediction(
    outage_home, spool_disk, tmp_path
):
    home, outage = outage_home
    with running_server(home, tmp_path, outage.server_url) as server:
        with PredictionStream(server.base_url) as stream:
            stream.wait_for_more(10)
            # A few records still fit: the disk fills up in the middle of the outage.
            spool_disk.fill(leave_free=16 * 1024)
            outage.begin()
            losing = server.wait_for_health(
                lambda h: logging_of(h)["lost"] > 0, what="/health to count lost predictions"
            )
            assert losing["status"] == "degraded"
            assert logging_of(losing)["state"] == "spooling"
            stream.wait_for_more(100)  # still answered while their records cannot be kept
            spool_disk.free()
            spooled = logging_of(server.health())["spooled"]
            server.wait_for_health(
                lambda h: logging_of(h)["spooled"] > spooled, what="the freed spool to take records"
            )
            stream.wait_for_more(50)
            outage.end()
            server.wait_for_health(
                lambda h: logging_of(h)["state"] == "ok" and logging_of(h)["spool_bytes"] == 0,
                what="the spool to be replayed",
            )
        ids = check_every_answer_succeeded(stream)
        # The disk has room and the store is back: nothing more can be lost from here on.
        drained = server.wait_for_health(
            lambda h: logging_of(h)["queue_depth"] == 0, what="the logging queue to drain"
        )
        lost = logging_of(drained)["lost"]
        assert lost > 0
        eventually(
            lambda: len(stored_prediction_ids(home.store)) + lost >= len(ids), timeout=20
        )  # if it never happens, the assertions below say what is missing
        stored = set(stored_prediction_ids(home.store))
        assert stored <= set(ids), "records stored that no answer carried"
        unaccounted = len(ids) - len(stored) - lost
        assert unaccounted == 0, (
            f"{len(ids)} answered, {len(stored)} stored, {lost} counted lost: "
            + (
                f"{unaccounted} vanished without being counted"
                if unaccounted > 0
                else f"{-unaccounted} counted as lost were stored after all"
            )
        )
        assert scraped(server, "btcmlops_prediction_records_lost_total") == lost


def scraped(server: ServerProcess, sample: str) -> float:
    """The value of one sample in the server's ``/metrics``."""
    answer = server.client.get("/metrics")
    assert answer.status_code == 200, f"GET /metrics answered {answer.status_code}"
    for family in text_string_to_metric_families(answer.text):
        for found in family.samples:
            if found.name == sample and not found.labels:
                return found.value
    raise AssertionError(f"/metrics has no {sample}")


# ------------------------------------------------ 5. a live source times out or lies
class FakeSources:
    """The exchange and one news feed on 127.0.0.1, each answering in a mode the test sets:
    ``garbage`` (200 with random bytes), ``silent`` (no answer before the client gives up)
    or ``healthy`` (one closed candle, one fresh article)."""

    def __init__(self, candle_hour: datetime, article_at: datetime) -> None:
        self.modes = {"prices": "healthy", "news": "healthy"}
        self.release = threading.Event()
        self.requests: Counter[str] = Counter()
        candle = [int(candle_hour.timestamp()), 99.0, 101.0, 100.0, 100.5, 12.0]
        self.healthy = {
            "prices": (b"[" + str(candle).encode() + b"]", "application/json"),
            "news": (_rss_with_one_item(article_at), "application/rss+xml"),
        }
        self.garbage = random.Random(5).randbytes(2048)
        sources = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kind = "prices" if "/candles" in self.path else "news"
                sources.requests[kind] += 1
                mode = sources.modes[kind]
                if mode == "silent":
                    sources.release.wait(30)  # longer than the client's timeout
                    return
                body, content_type = (
                    (sources.garbage, "application/octet-stream")
                    if mode == "garbage"
                    else sources.healthy[kind]
                )
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSources:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _rss_with_one_item(published_at: datetime) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Fake</title>'
        "<link>http://127.0.0.1/</link><description>fake</description><item>"
        "<title>Bitcoin steadies as traders wait</title><link>http://127.0.0.1/a/1</link>"
        "<description>Markets were calm.</description>"
        f"<pubDate>{format_datetime(published_at, usegmt=True)}</pubDate>"
        "</item></channel></rss>"
    ).encode()


@dataclass
class LiveLoop:
    runtime: Runtime
    scheduler: Scheduler
    sources: FakeSources

    def runs(self, job: str) -> list[JobRun]:
        with self.runtime.store.session() as session:
            return list(
                session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id))
            )

    def retry_delay_minutes(self) -> float:
        retry = self.scheduler._scheduler.get_job("ingest-retry")
        assert retry is not None, "no retry was scheduled"
        return (retry.next_run_time - self.scheduler._wall.now()).total_seconds() / 60

    def fire_retry_now(self) -> None:
        """Let APScheduler run the pending ``ingest-retry`` job now; return once it is done
        (its run recorded and, if it failed, the next retry scheduled)."""
        done = threading.Event()

        def finished(event: JobExecutionEvent) -> None:
            if event.job_id == "ingest-retry":
                done.set()

        apscheduler = self.scheduler._scheduler
        apscheduler.add_listener(finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        # No misfire grace: on a loaded machine the scheduler thread may wake up later than
        # APScheduler's default second after "now".
        apscheduler.get_job("ingest-retry").modify(
            next_run_time=self.scheduler._wall.now(), misfire_grace_time=None
        )
        apscheduler.resume()
        try:
            wait_until(done.is_set, timeout=60, what="the retry to run")
        finally:
            apscheduler.pause()
            apscheduler.remove_listener(finished)


@pytest.fixture
def live_loop(home, tmp_path) -> Iterator[LiveLoop]:
    """The scheduler's jobs on the home, with BTCMLOPS_SOURCE=live pointing at FakeSources,
    at 01:01 the hour after the home's data ends (the hour 00:00-01:00 has just closed)."""
    now = END + HOUR + timedelta(minutes=1)
    with FakeSources(candle_hour=END, article_at=now - timedelta(minutes=30)) as sources:
        settings = home.trained.settings.model_copy(
            update={
                "source": "live",
                "live_exchange_url": sources.url,
                "live_news_feeds": {"Fake": f"{sources.url}/feed"},
                "live_http_timeout_seconds": 0.5,
                "live_http_attempts": 2,
                "live_min_request_interval_seconds": 0.0,
                "finbert_model": str(tmp_path / "no-finbert-here"),  # VADER only, any machine
            }
        )
        context = AppContext(settings=settings, clock=ManualClock(now), _store=home.store)
        runtime = Runtime(context).start()
        scheduler = Scheduler(runtime)
        scheduler._claim()
        assert scheduler.leader
        # Running but paused: only the jobs this test fires run, never the wall-clock cron.
        scheduler._scheduler.start(paused=True)
        try:
            yield LiveLoop(runtime, scheduler, sources)
        finally:
            scheduler.shutdown()
            runtime.close()


@pytest.mark.parametrize(
    ("prices", "news"),
    [("garbage", "silent"), ("silent", "garbage")],
    ids=["prices-garbage", "news-garbage"],
)
def test_a_failing_live_source_backs_the_ingest_off_and_the_other_jobs_still_run(
    live_loop, prices, news
):
    loop = live_loop
    loop.sources.modes.update(prices=prices, news=news)
    bars_before = _count(loop.runtime, PriceBar)

    loop.scheduler._guarded("ingest", "ingest")
    [failed] = loop.runs("ingest")
    assert failed.status == "failed"
    assert "coinbase candles:" in failed.error and "Fake RSS:" in failed.error
    assert "did not answer within 0.5 s" in failed.error  # the silent one, after its retries
    assert loop.sources.requests["prices" if prices == "silent" else "news"] == 2
    state = loop.scheduler.runner.states["ingest"]
    assert state.consecutive_failures == 1
    assert loop.retry_delay_minutes() == pytest.approx(1, abs=0.1)

    # The rest of the hour goes on, on the data the store already has.
    for name, method in [
        ("sentiment", "score_sentiment"),
        ("features", "build_features"),
        ("predictions", "predict"),
        ("outcomes", "resolve_outcomes"),
    ]:
        loop.scheduler._guarded(name, method)
        [run] = loop.runs(name)
        assert run.status == "ok", f"{name}: {run.error}"
        assert run.started_at == failed.started_at  # the same hour, by the same clock
    loop.runtime.logger.flush()
    assert _count(loop.runtime, PredictionLog, PredictionLog.source == "scheduled") == 1

    # The retry fires, fails again, and the next one waits twice as long.
    loop.fire_retry_now()
    assert [run.status for run in loop.runs("ingest")] == ["failed", "failed"]
    assert state.consecutive_failures == 2
    assert loop.retry_delay_minutes() == pytest.approx(2, abs=0.1)

    # The sources recover: the next retry stores what they deliver and the backoff resets.
    loop.sources.modes.update(prices="healthy", news="healthy")
    loop.fire_retry_now()
    assert [run.status for run in loop.runs("ingest")] == ["failed", "failed", "ok"]
    assert state.consecutive_failures == 0
    assert loop.scheduler._scheduler.get_job("ingest-retry") is None
    assert _count(loop.runtime, PriceBar) == bars_before + 1


def _count(runtime: Runtime, model, *conditions) -> int:
    with runtime.store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*conditions))
