"""The one settings object. Every value can come from ``BTCMLOPS_<NAME>`` or a ``.env`` file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from btcmlops.clock import Clock, FixedClock, SystemClock, ensure_utc, parse_utc
from btcmlops.errors import InvalidInputError
from btcmlops.severity import Severity


class Settings(BaseSettings):
    """Effective configuration. ``btcmlops config show`` prints it with secrets masked."""

    model_config = SettingsConfigDict(
        env_prefix="BTCMLOPS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- where things live ------------------------------------------------------------
    home: Path = Field(
        default=Path("btcmlops-data"),
        description="Data folder: SQLite database, model artifacts, logging spool.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is a SQLite file (WAL mode) in HOME.",
    )
    now: datetime | None = Field(
        default=None, description="Pins the clock (ISO-8601, UTC) to replay history."
    )
    symbol: str = Field(default="BTCUSD", description="Market symbol stored with price bars.")

    # --- API -----------------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        default=None, description="When set, state-changing endpoints require it."
    )
    protect_reads: bool = Field(default=False, description="Require the API key on reads too.")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins.")
    serve_scheduler: bool = Field(
        default=True, description="Run the scheduler inside `btcmlops serve` (one leads)."
    )

    # --- sentiment -----------------------------------------------------------------------
    finbert_model: str = Field(
        default="ProsusAI/finbert",
        description="FinBERT weights: a Hugging Face id already in the local cache, or a folder.",
    )
    finbert_batch_size: int = Field(default=16, ge=1, le=512)

    # --- data source of the hourly ingest job ---------------------------------------------
    source: Literal["simulated", "live"] = Field(
        default="simulated",
        description="simulated: continue the home's simulated world; live: exchange + RSS.",
    )

    # --- live sources ------------------------------------------------------------------
    live_exchange_url: str = Field(
        default="https://api.exchange.coinbase.com", description="Coinbase Exchange REST base URL."
    )
    live_product_id: str = Field(default="BTC-USD", description="Exchange product for candles.")
    live_news_feeds: dict[str, str] = Field(
        default_factory=lambda: {
            "CoinDesk": "https://www.coindesk.com/arc/outboundfeeds/rss/",
            "Cointelegraph": "https://cointelegraph.com/rss",
            "Decrypt": "https://decrypt.co/feed",
        },
        description="Outlet name -> RSS/Atom feed URL.",
    )
    live_http_timeout_seconds: float = Field(default=10.0, gt=0)
    live_http_attempts: int = Field(default=4, ge=1, le=10)
    live_min_request_interval_seconds: float = Field(default=0.34, ge=0)
    live_max_retry_after_seconds: float = Field(default=60.0, ge=0)

    # --- outcomes ----------------------------------------------------------------------
    outcome_grace_hours: int = Field(
        default=6, ge=1, description="Hours after which an unresolvable outcome is expired."
    )

    # --- drift -------------------------------------------------------------------------
    drift_reference_days: int = Field(default=7, ge=1, le=365)
    drift_current_days: int = Field(
        default=2,
        ge=1,
        le=90,
        description="Current window of the daily drift check and the retraining policy. The "
        "API's own default stays its original 1 day; one day of hourly rows holds about one "
        "independent observation of a daily-scale feature (docs/drift.md).",
    )
    drift_min_samples: int = Field(default=24, ge=2, description="Minimum rows per window.")
    drift_autocorrelation_days: int = Field(
        default=21,
        ge=0,
        le=365,
        description="Days before the reference window from which each feature's "
        "autocorrelation time (and so its effective sample sizes) is estimated; the reference "
        "window itself is used while fewer rows than it holds are stored. A week of hourly "
        "rows underestimates the memory of day-scale features several-fold (docs/drift.md).",
    )
    drift_psi_bins: int = Field(default=10, ge=2, le=100)
    drift_alpha: float = Field(default=0.05, gt=0, lt=1, description="FDR level for KS tests.")
    drift_psi_effect_floor: float = Field(
        default=0.1, ge=0, description="A feature drifts only if its PSI also reaches this."
    )
    drift_sequential_mtbf_days: float = Field(
        default=90.0,
        gt=1,
        description="Mean time between false alarms the hourly sequential detector's "
        "thresholds aim at, in days (docs/drift.md). A change refits the detector at its next "
        "hourly run.",
    )
    drift_sequential_fit_days: int = Field(
        default=28,
        ge=7,
        le=365,
        description="The hourly sequential detector fits on the latest this many days of "
        "feature rows (its reference) and the as many days before them (its history); with "
        "fewer stored, on what there is split in half once that is a week each.",
    )
    model_drift_min_predictions: int = Field(default=30, ge=1)
    model_drift_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Significance level of the one-sided accuracy-drop test of model drift. "
        "The daily check repeats it on overlapping windows, so false alarms accumulate over "
        "days; lower it for fewer alarms and slower reactions (docs/drift.md).",
    )

    # --- training ----------------------------------------------------------------------
    train_min_rows: int = Field(
        default=100, ge=10, description="Fewest rows with a known target that training accepts."
    )

    # --- retraining --------------------------------------------------------------------
    retrain_accuracy_degradation: float = Field(default=0.10, gt=0, lt=1)
    retrain_drift_severity: Severity = "medium"
    retrain_drift_counts_model: bool = Field(
        default=False,
        description="Let the drift summary's model-accuracy severity trigger retraining too. "
        "Off by default: accuracy is the performance check's job, with its own drop threshold "
        "and minimum outcomes (docs/retraining.md).",
    )
    retrain_on_sequential_alarm: bool = Field(
        default=True,
        description="Let an alarm of the hourly sequential drift detector trigger the drift "
        "check of the retraining policy (the detector is refitted after the retraining).",
    )
    retrain_min_samples: int = Field(default=100, ge=10)
    retrain_min_predictions: int = Field(default=50, ge=1)
    retrain_performance_days: int = Field(default=7, ge=1)
    retrain_interval_days: float = Field(default=7.0, gt=0)
    retrain_cooldown_hours: float = Field(default=24.0, ge=0)
    retrain_backoff: bool = Field(
        default=True,
        description="Each unscheduled retraining (performance, drift, by hand) that met the "
        "current champion and did not replace it doubles the cooldown before the next (24 h, "
        "48 h, 96 h, ...), up to the retraining interval; a new champion resets it.",
    )
    retrain_timeout_seconds: float = Field(default=600.0, gt=0)
    retrain_window_days: float = Field(
        default=60.0,
        ge=14,
        description="Challengers train on at most this many recent days, and only on the days "
        "since the latest drift onset when there was one.",
    )
    retrain_min_comparison_rows: int = Field(
        default=30, ge=10, description="Fewest test hours on which champion and challenger meet."
    )
    auto_rollback_window: int = Field(
        default=48,
        ge=10,
        description="Paired live hours (new champion and the previous one, in shadow) before "
        "the sequential rollback test is first read; it is read every hour after that.",
    )
    auto_rollback_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Level of the sequential rollback test: the chance that a champion as good "
        "as the one it replaced is ever rolled back.",
    )

    # --- promotion ---------------------------------------------------------------------
    promotion_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Level of the paired trial a challenger must pass to replace the champion "
        "(the chance, over all of its daily looks, of promoting one that is not better), and of "
        "the test by which a champion worse than a naive baseline falls back to it.",
    )
    promotion_trial_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Days a challenger's paired trial lasts (a look a day after its offline "
        "comparison); one not promoted by then leaves the shadow set.",
    )
    shadow_max: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Models per pair predicting every hour in shadow beside the champion: the "
        "previous champion and the best kept challengers.",
    )

    # --- prediction logging ------------------------------------------------------------
    logging_queue_size: int = Field(default=50_000, ge=100)
    logging_batch_size: int = Field(default=500, ge=1)
    logging_flush_seconds: float = Field(default=0.2, gt=0)

    # --- compute -----------------------------------------------------------------------
    n_jobs: int = Field(
        default=2, ge=1, description="Threads for estimators; the machine has 2 shared cores."
    )

    @field_validator("now", mode="before")
    @classmethod
    def _parse_now(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return parse_utc(value)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("now")
    @classmethod
    def _now_is_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_utc(value)

    @field_validator("database_url", mode="before")
    @classmethod
    def _blank_url_is_default(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'btcmlops.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "models"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    def make_clock(self) -> Clock:
        """The wall clock, or a pinned one when ``now`` is set."""
        return FixedClock(self.now) if self.now is not None else SystemClock()

    def masked(self) -> dict[str, Any]:
        """Every setting as printable values, with the API key and passwords hidden."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            shown[name] = value
        shown["database_url"] = mask_url(self.effective_database_url)
        return shown


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print or log)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: still never print a secret
        return url.split("@")[-1] if "@" in url else url
