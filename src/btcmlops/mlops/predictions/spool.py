"""An append-only file of prediction records that could not reach the store.

Each serving process appends to its own file, ``predictions-<pid>.jsonl`` in the spool folder,
one JSON record per line, flushed to the operating system after every batch (a killed process
loses nothing already written; a power cut may lose what the OS had not written to disk).
Replay renames a file before reading it, so two processes never replay the same file, and
inserts with ``ON CONFLICT DO NOTHING`` on the prediction id, so replay is exactly-once even
when an earlier attempt half-succeeded.

A record on disk is a log row with its datetimes as ISO strings (:func:`as_spool_record`);
replay turns it back into a row (:func:`from_spool_record`) and hands batches of rows to the
writer's insert.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from btcmlops.clock import ensure_utc
from btcmlops.db.models import PredictionLog
from btcmlops.mlops.predictions.results import LogRow, SpoolRecord

SPOOL_GLOB = "predictions-*.jsonl"
REPLAY_SUFFIX = ".replaying"
_COLUMNS = {column.name for column in PredictionLog.__table__.columns}
_DATETIME_FIELDS = ("predicted_at", "feature_ts", "target_ts", "outcome_recorded_at")

InsertRows = Callable[[list[LogRow]], None]


class Spool:
    """The spool folder as seen by one process."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = pid if pid is not None else os.getpid()
        self.path = directory / f"predictions-{self.pid}.jsonl"
        self._lock = threading.Lock()

    def append(self, records: list[SpoolRecord]) -> None:
        """Append all of ``records`` or none; raises ``OSError`` when the disk refuses (the
        caller counts them as lost).

        A write the disk cut short (ENOSPC half-way) is taken back, so the file only ever
        holds whole lines: a torn line would swallow the next record appended after it, and
        whole lines of a refused batch would be replayed although counted as lost.
        """
        payload = "".join(json.dumps(record, default=str) + "\n" for record in records).encode()
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                end = os.lseek(descriptor, 0, os.SEEK_END)
                try:
                    unwritten = memoryview(payload)
                    while unwritten:
                        unwritten = unwritten[os.write(descriptor, unwritten) :]
                except OSError:
                    os.ftruncate(descriptor, end)  # shrinking needs no space, even on a full disk
                    raise
            finally:
                os.close(descriptor)

    def pending_files(self) -> list[Path]:
        """Files this process may replay: its own, and those of processes no longer alive."""
        if not self.directory.exists():
            return []
        files = []
        for path in sorted(self.directory.iterdir()):
            owner = _owner_pid(path)
            if owner is None:
                continue
            if owner == self.pid or not _process_alive(owner):
                files.append(path)
        return files

    def has_pending(self) -> bool:
        return bool(self.pending_files())

    def claim(self, path: Path) -> Path | None:
        """Rename ``path`` for replay; ``None`` if another process claimed it first."""
        if path.name.endswith(REPLAY_SUFFIX):
            return path
        target = path.with_name(path.name + f".{self.pid}{REPLAY_SUFFIX}")
        with self._lock:
            try:
                path.rename(target)
            except FileNotFoundError:
                return None
        return target

    @staticmethod
    def read(path: Path) -> Iterator[SpoolRecord]:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    # A torn last line from a crash mid-write: that record never completed.
                    continue

    def size_bytes(self) -> int:
        if not self.directory.exists():
            return 0
        return sum(p.stat().st_size for p in self.directory.glob("predictions-*") if p.is_file())

    def replay_pending(self, insert: InsertRows, batch_size: int) -> None:
        """Claim every pending file and hand its rows to ``insert`` in batches of
        ``batch_size``; a file is deleted once all of it is inserted. An exception from
        ``insert`` (the store is down again) leaves the claimed file for the next replay."""
        for path in self.pending_files():
            claimed = self.claim(path)
            if claimed is None:
                continue
            _replay_file(claimed, insert, batch_size)


def as_spool_record(row: LogRow) -> SpoolRecord:
    """A log row as one JSON-ready spool record (datetimes as ISO strings, in UTC)."""
    out = dict(row)
    for key in _DATETIME_FIELDS:
        if isinstance(out.get(key), datetime):
            out[key] = ensure_utc(out[key]).isoformat()
    return out


def from_spool_record(record: SpoolRecord) -> LogRow:
    """The log row a spool record was made from (unknown keys dropped)."""
    row: LogRow = {
        key: value for key, value in record.items() if key in _COLUMNS or key == "features"
    }
    for key in _DATETIME_FIELDS:
        if isinstance(row.get(key), str):
            row[key] = datetime.fromisoformat(row[key])
    return row


def _replay_file(path: Path, insert: InsertRows, batch_size: int) -> None:
    batch: list[LogRow] = []
    for record in Spool.read(path):
        batch.append(from_spool_record(record))
        if len(batch) >= batch_size:
            insert(batch)
            batch = []
    if batch:
        insert(batch)
    path.unlink(missing_ok=True)


def _owner_pid(path: Path) -> int | None:
    name = path.name
    if not name.startswith("predictions-"):
        return None
    if name.endswith(REPLAY_SUFFIX):
        # predictions-<writer>.jsonl.<replayer>.replaying: owned by the replayer
        try:
            return int(name[: -len(REPLAY_SUFFIX)].rsplit(".", 1)[1])
        except (IndexError, ValueError):
            return None
    if name.endswith(".jsonl"):
        try:
            return int(name[len("predictions-") : -len(".jsonl")])
        except ValueError:
            return None
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
