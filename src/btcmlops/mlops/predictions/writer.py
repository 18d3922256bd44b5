"""Every prediction logged with its full context, without slowing or failing the answer.

``log_prediction`` assigns the id, puts the record on a bounded in-process queue and returns:
it never touches the database. A writer thread drains the queue in batches. When the store
fails, batches go to an append-only spool file (``predictions.spool``) and are replayed,
exactly once, when the store answers again. ``close()`` flushes everything.

Loss window on a hard crash (SIGKILL, power): the records still on the queue, i.e. at most
about ``logging_flush_seconds`` of predictions plus one batch in flight. Records already
spooled survive a killed process. Records are lost on purpose only when the queue is full and
the spool cannot be written either (a full disk); each one is counted in ``health()``.

A batch whose commit failed may have been stored all the same: the connection can drop after
the database committed and before it said so. If such a batch cannot be spooled either, its
records are in doubt, not yet lost: when the store answers again the writer looks them up
and counts the ones it does not find as lost (the ones it finds as written), so the counts
stay exact. Records still in doubt when the logger closes are counted as lost.

Reading the log is ``predictions.queries``' job; the writer only writes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from btcmlops.clock import HOUR, Clock
from btcmlops.config import Settings
from btcmlops.db.models import FeatureSnapshot, PredictionLog
from btcmlops.db.store import Store
from btcmlops.jsonable import finite_or_none
from btcmlops.mlops.predictions.ids import PredictionIdGenerator
from btcmlops.mlops.predictions.outcomes import check_outcome, record_outcome
from btcmlops.mlops.predictions.records import snapshot_of
from btcmlops.mlops.predictions.results import LoggerHealthDict, LogRow, PredictionRecord
from btcmlops.mlops.predictions.spool import Spool, as_spool_record

log = logging.getLogger(__name__)

_STOP = object()


class CommitOutcomeUnknown(SQLAlchemyError):
    """The commit of an insert failed: the database may have committed it all the same (the
    connection dropped after it did, before it answered)."""


@dataclass
class LoggerHealth:
    state: str  # "ok", "spooling" or "stopped"
    queue_depth: int
    queue_capacity: int
    written: int
    spooled: int
    replayed: int
    lost: int
    spool_bytes: int
    last_error: str | None

    def as_dict(self) -> LoggerHealthDict:
        return LoggerHealthDict(**self.__dict__)


class PredictionLogger:
    """Logs predictions off the request path: a bounded queue, one writer thread, the spool."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        id_generator: PredictionIdGenerator,
        *,
        spool: Spool | None = None,
        replay_interval_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.ids = id_generator
        self.spool = spool or Spool(settings.spool_dir)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.logging_queue_size)
        self._batch_size = settings.logging_batch_size
        self._flush_seconds = settings.logging_flush_seconds
        self._replay_interval = replay_interval_seconds
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._in_flight = 0
        self._spooling = False
        self._next_replay = 0.0
        self._counts = {"written": 0, "spooled": 0, "replayed": 0, "lost": 0}
        self._in_doubt: set[int] = set()  # ids of a failed commit that could not be spooled
        self._last_error: str | None = None
        self._snapshots: dict[int, tuple[Mapping[str, Any], dict[str, Any], str]] = {}

    # ---------------------------------------------------------------------- lifecycle
    def start(self) -> PredictionLogger:
        if self._thread is None:
            # Leftovers from an earlier run (or a crashed sibling) are replayed first.
            self._spooling = self.spool.has_pending()
            self._thread = threading.Thread(target=self._run, name="prediction-writer", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued (to the store, or the spool if it is down)."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        if self._in_doubt:  # the store never answered again: they cannot be confirmed
            self._counts["lost"] += len(self._in_doubt)
            self._in_doubt.clear()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record logged so far has left the queue (stored or spooled)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queue.unfinished_tasks > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    # ---------------------------------------------------------------------- request path
    def log_prediction(
        self,
        *,
        feature_set: str,
        model_type: str,
        model_version: str,
        prediction: int,
        probability_down: float,
        probability_up: float,
        confidence: float,
        features: Mapping[str, Any],
        response_time_ms: float,
        cached_features: bool,
        bitcoin_price: float | None,
        feature_ts: datetime,
        source: str = "api",
        imputed_features: int = 0,
        predicted_at: datetime | None = None,
    ) -> int:
        """Queue one prediction record and return its id at once (never blocks on the store)."""
        prediction_id = self.ids.next_id()
        record = {
            "id": prediction_id,
            "feature_set": feature_set,
            "model_type": model_type,
            "model_version": model_version,
            "prediction": int(prediction),
            "probability_down": float(probability_down),
            "probability_up": float(probability_up),
            "confidence": float(confidence),
            "features": features,
            "feature_ts": feature_ts,
            "target_ts": feature_ts + HOUR,
            "imputed_features": int(imputed_features),
            "source": source,
            "response_time_ms": float(response_time_ms),
            "cached_features": bool(cached_features),
            "predicted_at": predicted_at or self.clock.now(),
            "bitcoin_price_at_prediction": bitcoin_price,
            "outcome_status": "pending",
        }
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            # The writer is far behind: keep the record on disk rather than drop it.
            self._spool_or_count_lost([self._row(record)])
        return prediction_id

    # ---------------------------------------------------------------------- writer thread
    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            try:
                if batch:
                    self._write(batch)
                self._maybe_replay(force=stopping)
            except Exception as exc:  # the writer must never die
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.exception("prediction writer error")
            finally:
                for _ in range(len(batch) + (1 if stopping else 0)):
                    self._queue.task_done()
                with self._idle:
                    self._idle.notify_all()

    def _next_batch(self) -> tuple[list[dict[str, Any]], bool]:
        batch: list[dict[str, Any]] = []
        try:
            item = self._queue.get(timeout=self._flush_seconds)
        except queue.Empty:
            return batch, False
        if item is _STOP:
            return batch, True
        batch.append(item)
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[dict[str, Any]]) -> None:
        rows = [self._row(record) for record in batch]
        if self._spooling:
            # Keep order simple: while a backlog exists, new records join it on disk and the
            # replay (which also drains them) runs on its own schedule.
            self._spool_or_count_lost(rows)
            return
        try:
            self._insert(rows)
            self._counts["written"] += len(rows)
        except SQLAlchemyError as exc:
            self._enter_spooling(exc)
            self._spool_or_count_lost(rows, maybe_stored=isinstance(exc, CommitOutcomeUnknown))

    def _row(self, record: dict[str, Any]) -> LogRow:
        """The record as stored: finite numbers, and its features as a hashed snapshot."""
        row = dict(record)
        row["features"], row["features_sha256"] = self._snapshot(record["features"])
        for key in ("probability_down", "probability_up", "confidence", "response_time_ms"):
            row[key] = finite_or_none(row[key])
        return row

    def _snapshot(self, features: Mapping[str, Any]) -> tuple[dict[str, float | None], str]:
        # Every prediction of an hour passes the predictor's same dict: clean and hash it once.
        cached = self._snapshots.get(id(features))
        if cached is not None and cached[0] is features:
            return cached[1], cached[2]
        cleaned, digest = snapshot_of(features)
        self._snapshots[id(features)] = (features, cleaned, digest)
        while len(self._snapshots) > 64:
            self._snapshots.pop(next(iter(self._snapshots)))
        return cleaned, digest

    def _insert(self, rows: list[LogRow]) -> None:
        """Snapshots (each once) and log rows in one transaction; replays are no-ops."""
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        snapshots = {
            row["features_sha256"]: {
                "sha256": row["features_sha256"],
                "feature_set": row["feature_set"],
                "feature_ts": row["feature_ts"],
                "feature_values": row["features"],
                "created_at": row["predicted_at"],
            }
            for row in rows
        }
        logs = [{k: v for k, v in row.items() if k != "features"} for row in rows]
        with self.store.session() as session:
            session.execute(
                dialect.insert(FeatureSnapshot).on_conflict_do_nothing(index_elements=["sha256"]),
                list(snapshots.values()),
            )
            session.execute(
                dialect.insert(PredictionLog).on_conflict_do_nothing(index_elements=["id"]),
                logs,
            )
            try:
                session.commit()
            except SQLAlchemyError as exc:  # before it, a failure leaves nothing stored
                raise CommitOutcomeUnknown(f"commit failed: {exc}") from exc

    def _enter_spooling(self, exc: Exception) -> None:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        self._last_error = f"store unavailable: {reason}"
        if not self._spooling:
            log.warning("prediction store unavailable, spooling to %s: %s", self.spool.path, reason)
        self._spooling = True
        self._next_replay = time.monotonic() + self._replay_interval

    def _spool_or_count_lost(self, rows: list[LogRow], *, maybe_stored: bool = False) -> None:
        """Spool ``rows``; if the spool cannot take them, count them as lost, or, when
        ``maybe_stored`` (their insert failed, perhaps after the commit), hold them in doubt
        until the store can say whether it has them."""
        serialisable = [as_spool_record(row) for row in rows]
        try:
            self.spool.append(serialisable)
            self._counts["spooled"] += len(rows)
        except OSError as exc:
            reason = exc.strerror or exc
            if maybe_stored:
                self._in_doubt.update(int(row["id"]) for row in rows)
                self._last_error = (
                    f"spool unwritable ({reason}); {len(rows)} records not kept, counted as "
                    "lost unless the store has them when it answers again"
                )
                log.error("%d prediction records in doubt: %s", len(rows), self._last_error)
                return
            self._counts["lost"] += len(rows)
            self._last_error = f"spool unwritable ({reason}); {len(rows)} records lost"
            log.error("lost %d prediction records: %s", len(rows), self._last_error)

    def _settle_in_doubt(self) -> None:
        """Count the records in doubt as written where the store has them, else as lost."""
        if not self._in_doubt:
            return
        wanted = sorted(self._in_doubt)
        with self.store.session() as session:
            found = set(
                session.scalars(select(PredictionLog.id).where(PredictionLog.id.in_(wanted)))
            )
        self._counts["written"] += len(found)
        self._counts["lost"] += len(wanted) - len(found)
        if len(found) < len(wanted):
            log.error("lost %d prediction records", len(wanted) - len(found))
        self._in_doubt.clear()

    def _maybe_replay(self, *, force: bool = False) -> None:
        if not self._spooling:
            return
        if not force and time.monotonic() < self._next_replay:
            return
        try:
            self.store.ping()
            self.spool.replay_pending(self._insert_replayed, self._batch_size)
            self._settle_in_doubt()
        except Exception as exc:  # still down (or the spool unreadable): try again later
            self._next_replay = time.monotonic() + self._replay_interval
            self._last_error = f"replay postponed: {str(exc).strip().splitlines()[0]}"
            return
        self._spooling = False
        self._last_error = None
        log.info("prediction store is back; spool replayed")

    def _insert_replayed(self, rows: list[LogRow]) -> None:
        self._insert(rows)
        self._counts["replayed"] += len(rows)

    # ---------------------------------------------------------------------- health
    def health(self) -> LoggerHealth:
        running = self._thread is not None and self._thread.is_alive()
        return LoggerHealth(
            state="stopped" if not running else ("spooling" if self._spooling else "ok"),
            queue_depth=self._queue.qsize(),
            queue_capacity=self._queue.maxsize,
            written=self._counts["written"],
            spooled=self._counts["spooled"],
            replayed=self._counts["replayed"],
            lost=self._counts["lost"],
            spool_bytes=self.spool.size_bytes(),
            last_error=self._last_error,
        )

    # ---------------------------------------------------------------------- outcomes
    def update_prediction_outcome(
        self,
        prediction_id: int,
        actual_direction: int,
        bitcoin_price_1h_later: float | None = None,
        *,
        source: str = "manual",
    ) -> PredictionRecord:
        """Record what happened for one prediction (manual entry or a resolver's answer).

        It lives on the writer because the record may still be on its way to the store: the
        queue is flushed first. Bad input is refused before that wait.
        """
        check_outcome(actual_direction, bitcoin_price_1h_later)
        self.flush(timeout=5.0)  # the record may still be on its way to the store
        return record_outcome(
            self.store,
            self.clock,
            prediction_id,
            actual_direction,
            bitcoin_price_1h_later,
            source=source,
        )
