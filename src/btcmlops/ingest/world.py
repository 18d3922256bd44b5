"""The simulated world a home lives in, remembered so the hourly ingest job can continue it.

``btcmlops ingest simulate`` and the demo write ``simulation.json`` into the home. The
scheduler's ingest job then asks :class:`SimulatedWorld` for the bars and articles of the
hours that have closed since: the simulator is deterministic per day, so the same world
extended by more days reproduces every stored hour exactly and adds the new ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from btcmlops.clock import ensure_utc, floor_hour
from btcmlops.errors import InvalidInputError
from btcmlops.ingest.simulator import MarketSimulator
from btcmlops.ingest.simulator_config import SimulationConfig

WORLD_FILE = "simulation.json"
EXTENSION_DAYS = 30  # how far ahead a continued world is generated at a time


class SimulatedWorld:
    """A :class:`SimulationConfig` without an end, and a simulator that covers a given hour."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self._simulator: MarketSimulator | None = None

    # ------------------------------------------------------------------- persistence
    def save(self, home: Path) -> Path:
        home.mkdir(parents=True, exist_ok=True)
        described = {k: v for k, v in asdict(self.config).items() if k != "days"}
        described["start"] = self.config.start.isoformat()
        path = home / WORLD_FILE
        path.write_text(json.dumps(described, indent=2, sort_keys=True), encoding="utf-8")
        return path

    @classmethod
    def load(cls, home: Path) -> SimulatedWorld | None:
        path = home / WORLD_FILE
        if not path.exists():
            return None
        try:
            described: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            described["start"] = ensure_utc(datetime.fromisoformat(described["start"]))
            known = {f.name for f in fields(SimulationConfig)}
            values = {k: v for k, v in described.items() if k in known}
            # ``days`` is a placeholder: simulator_covering() sets the real length.
            config = SimulationConfig(**values, days=(values.get("regime_change_day") or 0) + 1)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"{path} is not a valid simulated-world file: {exc}") from exc
        return cls(config)

    # ------------------------------------------------------------------- data
    def simulator_covering(self, instant: datetime) -> MarketSimulator:
        """A simulator of this world whose history reaches past ``instant``."""
        cached = self._simulator
        if cached is not None and cached.config.end > ensure_utc(instant):
            return cached
        needed = (floor_hour(instant) - self.config.start) / timedelta(days=1)
        days = max(1, math.ceil(needed)) + EXTENSION_DAYS
        config = SimulationConfig(**{**asdict(self.config), "days": days})
        self._simulator = MarketSimulator(config)
        return self._simulator

    def use(self, simulator: MarketSimulator) -> None:
        """Reuse an already generated simulator of this world (the demo's)."""
        self._simulator = simulator
