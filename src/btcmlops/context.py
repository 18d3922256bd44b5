"""The runtime a command or a server works in: settings, clock and store, built once."""

from __future__ import annotations

from dataclasses import dataclass, field

from btcmlops.clock import Clock
from btcmlops.config import Settings
from btcmlops.db.store import Store


@dataclass
class AppContext:
    """Settings, the clock every time-dependent part reads, and the (lazily opened) store."""

    settings: Settings
    clock: Clock
    _store: Store | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> AppContext:
        return cls(settings=settings, clock=clock or settings.make_clock())

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.settings.effective_database_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
