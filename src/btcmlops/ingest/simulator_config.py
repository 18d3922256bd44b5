"""The settings of a simulated market: :class:`SimulationConfig`, checked when it is built.

The same config gives the same data (see :mod:`btcmlops.ingest.simulator`); its
``world_id`` fingerprints it in the simulated articles' URLs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property

from btcmlops.clock import ensure_utc, floor_hour
from btcmlops.errors import InvalidInputError


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated market. The same config gives the same data.

    Parameters
    ----------
    seed:
        Non-negative integer; the only source of randomness.
    start:
        The first simulated hour (UTC, on the hour).
    days:
        Length of the simulated history.
    regime_change_day:
        Days after ``start`` at which the regime changes, or ``None`` for no change.
    initial_price:
        Open of the first bar, USD.
    hourly_volatility:
        Long-run standard deviation of hourly log returns before the change (0.005 = 0.5 %).
    garch_alpha, garch_beta:
        GARCH(1,1) reaction and persistence; ``alpha + beta < 1``.
    tail_dof:
        Degrees of freedom of the Student-t innovations (lower = heavier tails; > 2).
    base_volume:
        Typical hourly volume, BTC.
    mood_persistence:
        AR(1) coefficient of the hourly market mood (0.97: half-life of about 23 hours).
    news_rate_per_hour:
        Mean number of articles per hour before the change (Poisson arrivals).
    article_noise:
        Spread of an article's tone around the mood, in mood standard deviations.
    sentiment_gain:
        Slope of ``tanh`` that maps tone to a latent sentiment in (-1, 1).
    signal_strength:
        Expected next-hour log return per unit of mood, in units of that hour's volatility.
    post_change_signal:
        Multiplier of ``signal_strength`` from the change on (-1 flips it, 0.3 weakens it).
    post_change_volatility:
        Multiplier of volatility from the change on.
    post_change_news_rate:
        Multiplier of ``news_rate_per_hour`` from the change on.
    """

    seed: int = 42
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    days: int = 90
    regime_change_day: int | None = None
    initial_price: float = 42_000.0
    hourly_volatility: float = 0.005
    garch_alpha: float = 0.06
    garch_beta: float = 0.92
    tail_dof: float = 5.0
    base_volume: float = 350.0
    mood_persistence: float = 0.97
    news_rate_per_hour: float = 2.0
    article_noise: float = 0.6
    sentiment_gain: float = 0.6
    signal_strength: float = 0.13
    post_change_signal: float = -1.0
    post_change_volatility: float = 2.0
    post_change_news_rate: float = 1.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start))
        problems = self._problems()
        if problems:
            raise InvalidInputError("invalid simulation settings: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.start != floor_hour(self.start):
            problems.append(f"start {self.start.isoformat()} is not on the hour")
        if not isinstance(self.days, int) or self.days < 1:
            problems.append(f"days must be a positive integer, got {self.days!r}")
        elif self.regime_change_day is not None and not (
            isinstance(self.regime_change_day, int) and 1 <= self.regime_change_day < self.days
        ):
            problems.append(
                f"regime_change_day must lie inside the simulated span (1 to {self.days - 1} "
                f"for {self.days} days), got {self.regime_change_day!r}"
            )
        positive = ("initial_price", "hourly_volatility", "base_volume", "post_change_volatility")
        problems += [f"{name} must be > 0" for name in positive if not getattr(self, name) > 0]
        non_negative = (
            "garch_alpha",
            "garch_beta",
            "news_rate_per_hour",
            "article_noise",
            "sentiment_gain",
            "signal_strength",
            "post_change_news_rate",
        )
        problems += [f"{name} must be >= 0" for name in non_negative if getattr(self, name) < 0]
        if not self.garch_alpha + self.garch_beta < 1:
            problems.append("garch_alpha + garch_beta must be < 1 (a stationary variance)")
        if not self.tail_dof > 2:
            problems.append("tail_dof must be > 2 (the variance must exist)")
        if not 0 <= self.mood_persistence < 1:
            problems.append("mood_persistence must be in [0, 1)")
        numbers = [f.name for f in fields(self) if f.type in ("float", float)]
        problems += [
            f"{name} must be finite" for name in numbers if not _finite(getattr(self, name))
        ]
        return problems

    @property
    def end(self) -> datetime:
        """The instant the simulated history ends (the close of the last bar)."""
        return self.start + timedelta(days=self.days)

    @property
    def regime_change_at(self) -> datetime | None:
        if self.regime_change_day is None:
            return None
        return self.start + timedelta(days=self.regime_change_day)

    @cached_property
    def world_id(self) -> str:
        """A short fingerprint of everything but ``days``: article URLs carry it, so two
        differently configured worlds never share a URL, while a longer run of the same world
        reproduces the URLs of a shorter one."""
        described = {k: v for k, v in asdict(self).items() if k != "days"}
        described["start"] = self.start.isoformat()
        return hashlib.sha256(repr(sorted(described.items())).encode()).hexdigest()[:10]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
