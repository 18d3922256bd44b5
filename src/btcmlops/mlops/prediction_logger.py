"""Every prediction logged with its full context, without slowing or failing the answer.

``log_prediction`` assigns the id, puts the record on a bounded in-process queue and returns:
it never touches the database. A writer thread drains the queue in batches. When the store
fails, batches go to an append-only spool file (``mlops.spool``) and are replayed, exactly
once, when the store answers again. ``close()`` flushes everything.

Loss window on a hard crash (SIGKILL, power): the records still on the queue, i.e. at most
about ``logging_flush_seconds`` of predictions plus one batch in flight. Records already
spooled survive a killed process. Records are lost on purpose only when the queue is full and
the spool cannot be written either (a full disk); each one is counted in ``health()``.

Accuracy and statistics are computed by the database (``COUNT``/``SUM``/``AVG``), never by
loading rows into Python.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from btcmlops.clock import HOUR, Clock, ensure_utc
from btcmlops.config import Settings
from btcmlops.db.models import SHADOW_SOURCE, FeatureSnapshot, PredictionLog
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError, NotFoundError
from btcmlops.mlops.prediction_ids import PredictionIdGenerator
from btcmlops.mlops.spool import Spool
from btcmlops.modeling.evaluation import wilson_interval

log = logging.getLogger(__name__)

_STOP = object()
_COLUMNS = {column.name for column in PredictionLog.__table__.columns}
_DATETIME_FIELDS = ("predicted_at", "feature_ts", "target_ts", "outcome_recorded_at")


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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class PredictionLogger:
    """Logs predictions off the request path and answers questions about them in SQL."""

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
            self._spool_or_count_lost(rows)

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as stored: finite numbers, and its features as a hashed snapshot."""
        row = dict(record)
        row["features"], row["features_sha256"] = self._snapshot(record["features"])
        for key in ("probability_down", "probability_up", "confidence", "response_time_ms"):
            row[key] = _finite_or_none(row[key])
        return row

    def _snapshot(self, features: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        # Every prediction of an hour passes the predictor's same dict: clean and hash it once.
        cached = self._snapshots.get(id(features))
        if cached is not None and cached[0] is features:
            return cached[1], cached[2]
        cleaned, digest = snapshot_of(features)
        self._snapshots[id(features)] = (features, cleaned, digest)
        while len(self._snapshots) > 64:
            self._snapshots.pop(next(iter(self._snapshots)))
        return cleaned, digest

    def _insert(self, rows: list[dict[str, Any]]) -> None:
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

    def _enter_spooling(self, exc: Exception) -> None:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        self._last_error = f"store unavailable: {reason}"
        if not self._spooling:
            log.warning("prediction store unavailable, spooling to %s: %s", self.spool.path, reason)
        self._spooling = True
        self._next_replay = time.monotonic() + self._replay_interval

    def _spool_or_count_lost(self, rows: list[dict[str, Any]]) -> None:
        serialisable = [_serialisable(row) for row in rows]
        try:
            self.spool.append(serialisable)
            self._counts["spooled"] += len(rows)
        except OSError as exc:
            self._counts["lost"] += len(rows)
            self._last_error = f"spool unwritable ({exc.strerror or exc}); {len(rows)} records lost"
            log.error("lost %d prediction records: %s", len(rows), self._last_error)

    def _maybe_replay(self, *, force: bool = False) -> None:
        if not self._spooling:
            return
        if not force and time.monotonic() < self._next_replay:
            return
        try:
            self.store.ping()
            for path in self.spool.pending_files():
                claimed = self.spool.claim(path)
                if claimed is None:
                    continue
                self._replay_file(claimed)
        except Exception as exc:  # still down (or the spool unreadable): try again later
            self._next_replay = time.monotonic() + self._replay_interval
            self._last_error = f"replay postponed: {str(exc).strip().splitlines()[0]}"
            return
        self._spooling = False
        self._last_error = None
        log.info("prediction store is back; spool replayed")

    def _replay_file(self, path) -> None:  # type: ignore[no-untyped-def]
        batch: list[dict[str, Any]] = []
        for record in Spool.read(path):
            batch.append(_restored(record))
            if len(batch) >= self._batch_size:
                self._insert(batch)
                self._counts["replayed"] += len(batch)
                batch = []
        if batch:
            self._insert(batch)
            self._counts["replayed"] += len(batch)
        path.unlink(missing_ok=True)

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
    ) -> dict[str, Any]:
        """Record what happened for one prediction (manual entry or a resolver's answer)."""
        if actual_direction not in (0, 1):
            raise InvalidInputError(
                f"actual_direction must be 0 (down) or 1 (up), got {actual_direction!r}"
            )
        if bitcoin_price_1h_later is not None and not (
            math.isfinite(bitcoin_price_1h_later) and bitcoin_price_1h_later > 0
        ):
            raise InvalidInputError(
                f"bitcoin_price_1h_later must be a positive number, got {bitcoin_price_1h_later!r}"
            )
        self.flush(timeout=5.0)  # the record may still be on its way to the store
        with self.store.session() as session:
            row = session.get(PredictionLog, prediction_id)
            if row is None:
                raise NotFoundError(f"no prediction with id {prediction_id}")
            row.actual_direction = actual_direction
            row.prediction_correct = row.prediction == actual_direction
            row.outcome_status = "resolved"
            row.outcome_source = source
            row.outcome_recorded_at = self.clock.now()
            if bitcoin_price_1h_later is not None:
                row.bitcoin_price_1h_later = bitcoin_price_1h_later
                if row.bitcoin_price_at_prediction:
                    row.price_change_pct = 100.0 * (
                        bitcoin_price_1h_later / row.bitcoin_price_at_prediction - 1.0
                    )
            return prediction_as_dict(row)

    # ---------------------------------------------------------------------- queries
    def get_prediction(self, prediction_id: int) -> dict[str, Any]:
        with self.store.session() as session:
            row = session.get(PredictionLog, prediction_id)
            if row is None:
                raise NotFoundError(f"no prediction with id {prediction_id}")
            snapshot = (
                session.get(FeatureSnapshot, row.features_sha256) if row.features_sha256 else None
            )
            shown = prediction_as_dict(row)
            shown["features"] = snapshot.feature_values if snapshot is not None else {}
            shown["features_sha256"] = row.features_sha256
            return shown

    def get_recent_predictions(
        self,
        feature_set: str | None = None,
        model_type: str | None = None,
        limit: int = 100,
        only_with_outcomes: bool = False,
    ) -> list[dict[str, Any]]:
        # shadow models' predictions are never shown to clients (the dashboard reads them
        # through /retrain/shadows)
        query = select(PredictionLog).where(PredictionLog.source != SHADOW_SOURCE)
        if feature_set:
            query = query.where(PredictionLog.feature_set == feature_set)
        if model_type:
            query = query.where(PredictionLog.model_type == model_type)
        if only_with_outcomes:
            query = query.where(PredictionLog.outcome_status == "resolved")
        query = query.order_by(PredictionLog.predicted_at.desc(), PredictionLog.id.desc()).limit(
            limit
        )
        with self.store.session() as session:
            return [prediction_as_dict(row) for row in session.scalars(query)]

    def get_model_accuracy(
        self, feature_set: str, model_type: str, days: float = 7
    ) -> dict[str, Any]:
        """Realised accuracy of one (feature set, model type) over the last ``days``."""
        since = self.clock.now() - timedelta(days=days)
        resolved = PredictionLog.outcome_status == "resolved"
        correct = PredictionLog.prediction_correct.is_(True)
        up = PredictionLog.prediction == 1

        def count_if(*conditions):  # type: ignore[no-untyped-def]
            return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

        query = select(
            count_if(resolved).label("total"),
            count_if(resolved, correct).label("correct"),
            count_if(resolved, up).label("up"),
            count_if(resolved, up, correct).label("up_correct"),
            count_if(resolved, ~up).label("down"),
            count_if(resolved, ~up, correct).label("down_correct"),
            count_if(PredictionLog.outcome_status == "pending").label("pending"),
            func.avg(case((resolved, PredictionLog.confidence))).label("avg_confidence"),
            func.avg(case((and_(resolved, correct), PredictionLog.confidence))).label("conf_ok"),
            func.avg(case((and_(resolved, ~correct), PredictionLog.confidence))).label("conf_bad"),
        ).where(
            PredictionLog.feature_set == feature_set,
            PredictionLog.model_type == model_type,
            PredictionLog.predicted_at >= since,
            PredictionLog.source != SHADOW_SOURCE,
        )
        with self.store.session() as session:
            row = session.execute(query).one()
        total, correct_n = int(row.total), int(row.correct)
        stats: dict[str, Any] = {
            "feature_set": feature_set,
            "model_type": model_type,
            "period_days": days,
            "total_predictions": total,
            "correct_predictions": correct_n,
            "incorrect_predictions": total - correct_n,
            "accuracy": _ratio(correct_n, total),
            "up_predictions": int(row.up),
            "up_correct": int(row.up_correct),
            "up_accuracy": _ratio(int(row.up_correct), int(row.up)),
            "down_predictions": int(row.down),
            "down_correct": int(row.down_correct),
            "down_accuracy": _ratio(int(row.down_correct), int(row.down)),
            "avg_confidence": _float(row.avg_confidence),
            "avg_confidence_when_correct": _float(row.conf_ok),
            "avg_confidence_when_incorrect": _float(row.conf_bad),
            "pending_predictions": int(row.pending),
        }
        if total:
            low, high = wilson_interval(correct_n, total)
            stats["accuracy_interval_95"] = [low, high]
        else:
            stats["accuracy_interval_95"] = None
            stats["message"] = (
                f"no {feature_set}/{model_type} prediction from the last {days:g} days has an "
                "outcome yet; outcomes are resolved one hour after the predicted hour closes"
            )
        return stats

    def get_prediction_statistics(self) -> dict[str, Any]:
        """Totals over every prediction served (shadow models' predictions not counted)."""
        status = PredictionLog.outcome_status
        query = select(
            func.count().label("total"),
            func.coalesce(func.sum(case((status == "resolved", 1), else_=0)), 0).label("resolved"),
            func.coalesce(
                func.sum(case((PredictionLog.prediction_correct.is_(True), 1), else_=0)), 0
            ).label("correct"),
            func.coalesce(func.sum(case((status == "pending", 1), else_=0)), 0).label("pending"),
            func.coalesce(func.sum(case((status == "expired", 1), else_=0)), 0).label("expired"),
            func.coalesce(
                func.sum(case((PredictionLog.feature_set == "vader", 1), else_=0)), 0
            ).label("vader"),
            func.coalesce(
                func.sum(case((PredictionLog.feature_set == "finbert", 1), else_=0)), 0
            ).label("finbert"),
            func.avg(PredictionLog.response_time_ms).label("avg_ms"),
        ).where(PredictionLog.source != SHADOW_SOURCE)
        with self.store.session() as session:
            row = session.execute(query).one()
        resolved = int(row.resolved)
        return {
            "total_predictions": int(row.total),
            "predictions_with_outcomes": resolved,
            "correct_predictions": int(row.correct),
            "overall_accuracy": _ratio(int(row.correct), resolved),
            "vader_predictions": int(row.vader),
            "finbert_predictions": int(row.finbert),
            "avg_response_time_ms": _float(row.avg_ms),
            "pending_outcomes": int(row.pending),
            "expired_outcomes": int(row.expired),
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _serialisable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in _DATETIME_FIELDS:
        if isinstance(out.get(key), datetime):
            out[key] = ensure_utc(out[key]).isoformat()
    return out


def _restored(record: dict[str, Any]) -> dict[str, Any]:
    row = {key: value for key, value in record.items() if key in _COLUMNS or key == "features"}
    for key in _DATETIME_FIELDS:
        if isinstance(row.get(key), str):
            row[key] = datetime.fromisoformat(row[key])
    return row


def prediction_as_dict(row: PredictionLog) -> dict[str, Any]:
    """A stored prediction in the API's field names."""
    shown = {
        "id": row.id,
        "feature_set": row.feature_set,
        "model_type": row.model_type,
        "model_version": row.model_version,
        "prediction": row.prediction,
        "direction": "up" if row.prediction == 1 else "down",
        "probability_down": row.probability_down,
        "probability_up": row.probability_up,
        "confidence": row.confidence,
        "actual_direction": row.actual_direction,
        "prediction_correct": row.prediction_correct,
        "outcome_status": row.outcome_status,
        "bitcoin_price_at_prediction": row.bitcoin_price_at_prediction,
        "bitcoin_price_1h_later": row.bitcoin_price_1h_later,
        "price_change_pct": row.price_change_pct,
        "response_time_ms": row.response_time_ms,
        "cached_features": row.cached_features,
        "imputed_features": row.imputed_features,
        "source": row.source,
        "feature_hour": row.feature_ts,
        "target_hour": row.target_ts,
        "predicted_at": row.predicted_at,
        "outcome_recorded_at": row.outcome_recorded_at,
    }
    return shown


def snapshot_of(features: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Feature values as stored (NaN and infinities as null) and the sha256 of their
    canonical JSON, which identifies the snapshot."""
    cleaned = {str(name): _finite_or_none(value) for name, value in features.items()}
    text = json.dumps(cleaned, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return cleaned, hashlib.sha256(text.encode()).hexdigest()
