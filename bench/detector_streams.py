"""The streams of the detector benchmark (bench/detectors.py): hourly feature rows, seeded.

Every stream is a :class:`Stream`: ``before`` (the weeks a detector may fit on: the history,
then the reference), the monitored ``rows`` that follow, and the row at which a change begins
(None for the no-drift streams).

* synthetic, 106 independent features: iid normal; AR(1) with phi 0.95; stochastic
  volatility returns ``exp(h_t) * e_t`` with ``h`` AR(0.98) of innovation sd 0.2 or 0.5;
  changes (on iid): a 0.5 sd mean shift, or the variance times 2.5, in 10% of the features;
* the simulated market (``btcmlops.ingest.simulator``) through the project's own feature
  code, with or without its regime change; the articles' latent sentiment stands in for
  VADER's compound (scoring every article with VADER would take minutes and changes nothing
  a detector sees but the noise of the scorer);
* the real Gemini BTC/USD hourly bars of 2016-2021 (``../shared/data/peer``, read in place,
  never copied) through the same feature code, price features only: whole, and made
  stationary by a stationary block bootstrap (Politis & Romano 1994) of the feature rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from btcmlops.clock import parse_utc
from btcmlops.features.builder import compute_feature_frame
from btcmlops.features.schema import monitored_feature_names
from btcmlops.ingest.simulator import MarketSimulator
from btcmlops.ingest.simulator_config import SimulationConfig

HOURS_PER_DAY = 24
SYNTHETIC_FEATURES = 106
CHANGED_SHARE = 0.10
GEMINI_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "peer" / "gemini_BTCUSD_1hr.csv"
)
_SIM_START = parse_utc("2023-01-01T00:00:00Z")
_SIM_WARM_UP_DAYS = 8  # the features' longest window (168 h) filled before any row is used


@dataclass(frozen=True)
class Stream:
    name: str
    names: list[str]
    before: np.ndarray  # history then reference, rows x features
    rows: np.ndarray  # the monitored hours
    change_at: int | None = None  # first changed row of ``rows``
    timestamps: pd.DatetimeIndex | None = None  # of ``rows``, for the real stream


# ---------------------------------------------------------------------------- synthetic
def _ar1(rng: np.random.Generator, hours: int, features: int, phi: float) -> np.ndarray:
    shocks = rng.normal(size=(hours, features)) * np.sqrt(1.0 - phi**2)
    shocks[0] = rng.normal(size=features)  # start in the stationary law
    return lfilter([1.0], [1.0, -phi], shocks, axis=0)


def _stochastic_volatility(
    rng: np.random.Generator, hours: int, features: int, innovation_sd: float
) -> np.ndarray:
    log_vol = _ar1(rng, hours, features, 0.98) * innovation_sd / np.sqrt(1.0 - 0.98**2)
    return np.exp(log_vol) * rng.normal(size=(hours, features))


def synthetic(kind: str, before_hours: int, hours: int, seed: int) -> Stream:
    """``iid``, ``ar95``, ``sv0.2``, ``sv0.5``, ``shift`` or ``variance``."""
    rng = np.random.default_rng(seed)
    total, f = before_hours + hours, SYNTHETIC_FEATURES
    if kind in ("iid", "shift", "variance"):
        values = rng.normal(size=(total, f))
    elif kind == "ar95":
        values = _ar1(rng, total, f, 0.95)
    elif kind.startswith("sv"):
        values = _stochastic_volatility(rng, total, f, float(kind[2:]))
    else:
        raise ValueError(f"unknown synthetic stream {kind!r}")
    change_at = None
    if kind in ("shift", "variance"):
        change_at = hours // 2
        changed = rng.choice(f, size=round(CHANGED_SHARE * f), replace=False)
        start = before_hours + change_at
        if kind == "shift":
            values[start:, changed] += 0.5
        else:
            values[start:, changed] *= np.sqrt(2.5)
    names = [f"x{j:03d}" for j in range(f)]
    return Stream(kind, names, values[:before_hours], values[before_hours:], change_at)


# ---------------------------------------------------------------------------- simulator
def simulator_features(
    seed: int, days: int, regime_change_day: int | None
) -> tuple[list[str], np.ndarray]:
    """The monitored features of the simulated market, one row per hour after a warm-up."""
    config = SimulationConfig(
        seed=seed,
        start=_SIM_START,
        days=days + _SIM_WARM_UP_DAYS,
        regime_change_day=None
        if regime_change_day is None
        else regime_change_day + _SIM_WARM_UP_DAYS,
    )
    simulator = MarketSimulator(config)
    bars = simulator.hourly_frame()[["open", "high", "low", "close", "volume"]]
    articles = simulator.article_frame()
    latent = articles["sentiment"].to_numpy()
    sentiment = pd.DataFrame(
        {
            "published_at": articles["published_at"],
            "compound": latent,
            "positive": np.clip(latent, 0.0, None),
            "negative": np.clip(-latent, 0.0, None),
            "neutral": 1.0 - np.abs(latent),
        }
    )
    names = monitored_feature_names("vader")
    frame = compute_feature_frame(bars, sentiment, "vader")[names]
    return names, frame.to_numpy()[_SIM_WARM_UP_DAYS * HOURS_PER_DAY :]


def simulated(before_days: int, days: int, seed: int, *, change_day: int | None) -> Stream:
    regime = None if change_day is None else before_days + change_day
    names, values = simulator_features(seed, before_days + days, regime)
    split = before_days * HOURS_PER_DAY
    change_at = None if change_day is None else change_day * HOURS_PER_DAY
    name = "simulator" if change_day is None else "regime"
    return Stream(name, names, values[:split], values[split:], change_at)


# ---------------------------------------------------------------------------- real data
def gemini_bars(path: Path = GEMINI_CSV) -> pd.DataFrame:
    """Hourly OHLCV bars of the Gemini file, indexed by UTC hour start, 2016-2021."""
    raw = pd.read_csv(path)
    ts = pd.to_datetime(raw["Date"], format="%d-%m-%y %H:%M", utc=True)
    bars = pd.DataFrame(
        {
            "open": raw["Open"],
            "high": raw["High"],
            "low": raw["Low"],
            "close": raw["Close"],
            "volume": raw["Volume"],
        }
    ).set_index(pd.DatetimeIndex(ts, name="ts"))
    bars = bars[~bars.index.duplicated()].sort_index()
    return bars[(bars.index >= "2016-01-01") & (bars.index < "2022-01-01")]


def gemini_features(path: Path = GEMINI_CSV) -> pd.DataFrame:
    """The monitored price features of the real bars (sentiment columns have no data)."""
    empty = pd.DataFrame(
        {name: pd.Series(dtype=float) for name in ("compound", "positive", "negative")}
        | {"neutral": pd.Series(dtype=float)}
        | {"published_at": pd.Series(dtype="datetime64[ns, UTC]")}
    )
    frame = compute_feature_frame(gemini_bars(path), empty, "vader")
    names = [name for name in monitored_feature_names("vader") if not name.startswith("sent_")]
    return frame[names].iloc[7 * HOURS_PER_DAY :]


def stationary_bootstrap(
    rows: np.ndarray, hours: int, mean_block: int, rng: np.random.Generator
) -> np.ndarray:
    """Politis & Romano's stationary bootstrap: blocks of geometric length, random starts."""
    out = np.empty((hours, rows.shape[1]))
    filled = 0
    while filled < hours:
        start = int(rng.integers(0, rows.shape[0]))
        length = min(int(rng.geometric(1.0 / mean_block)), hours - filled, rows.shape[0] - start)
        out[filled : filled + length] = rows[start : start + length]
        filled += length
    return out


def gemini_bootstrap(
    features: pd.DataFrame, before_hours: int, hours: int, mean_block: int, seed: int
) -> Stream:
    rng = np.random.default_rng(seed)
    values = stationary_bootstrap(features.to_numpy(), before_hours + hours, mean_block, rng)
    return Stream(
        "gemini-bootstrap", list(features.columns), values[:before_hours], values[before_hours:]
    )


def gemini_whole(features: pd.DataFrame, before_hours: int) -> Stream:
    values = features.to_numpy()
    return Stream(
        "gemini",
        list(features.columns),
        values[:before_hours],
        values[before_hours:],
        timestamps=features.index[before_hours:] + timedelta(0),
    )
