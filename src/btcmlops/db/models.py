"""The store's tables (SQLAlchemy 2 declarative). Migrations in ``db/migrations`` create them.

Conventions: instants are :class:`UTCDateTime`; an hourly bar or feature row is keyed by the
UTC hour it *starts*; free-form structured values (metrics, windows, reports) are JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from btcmlops.db.types import JsonDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JsonDocument(),
        list[Any]: JsonDocument(),
    }


# --------------------------------------------------------------------------------------- data


class PriceBar(Base):
    """One hourly OHLCV bar. ``ts`` is the start of the hour (UTC); the bar closes at ts+1h."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("symbol", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime] = mapped_column(index=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32))
    ingested_at: Mapped[datetime]


class Article(Base):
    """A news article. ``dedup_key`` is ``url:<url>`` or, without a URL, ``sha256:<text hash>``."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(600), unique=True)
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(index=True)
    ingested_at: Mapped[datetime]


class ArticleSentiment(Base):
    """One scorer's verdict on one article."""

    __tablename__ = "article_sentiment"
    __table_args__ = (
        UniqueConstraint("article_id", "scorer"),
        Index("ix_article_sentiment_scorer_published", "scorer", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    scorer: Mapped[str] = mapped_column(String(16))
    scorer_version: Mapped[str] = mapped_column(String(128))
    # Copied from the article so feature windows read one table.
    published_at: Mapped[datetime]
    positive: Mapped[float] = mapped_column(Float)
    negative: Mapped[float] = mapped_column(Float)
    neutral: Mapped[float] = mapped_column(Float)
    compound: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    scored_at: Mapped[datetime]


class FeatureRow(Base):
    """The features of one feature set for one hour, under one feature-schema version."""

    __tablename__ = "feature_rows"
    __table_args__ = (UniqueConstraint("feature_set", "feature_version", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    feature_version: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(index=True)
    close: Mapped[float] = mapped_column(Float)
    feature_values: Mapped[dict[str, Any]]
    missing_count: Mapped[int] = mapped_column(Integer, default=0)
    built_at: Mapped[datetime]


# ----------------------------------------------------------------------------------- registry


class ModelVersion(Base):
    """A trained model: its artifact, how it was trained, and how it scored."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # At most one champion per (feature set, model type), enforced by the database.
        Index(
            "uq_model_versions_one_champion",
            "feature_set",
            "model_type",
            unique=True,
            sqlite_where=text("status = 'champion'"),
            postgresql_where=text("status = 'champion'"),
        ),
        Index("ix_model_versions_pair", "feature_set", "model_type", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(96), unique=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    artifact_path: Mapped[str] = mapped_column(String(1024))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    feature_version: Mapped[str] = mapped_column(String(32))
    feature_names: Mapped[list[Any]]
    metrics: Mapped[dict[str, Any]]
    windows: Mapped[dict[str, Any]]
    hyperparameters: Mapped[dict[str, Any]]
    library_versions: Mapped[dict[str, Any]]
    drift_reference: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")


class ChampionChange(Base):
    """Every move of a champion pointer: who, when, why, and what it replaced."""

    __tablename__ = "champion_history"
    __table_args__ = (Index("ix_champion_history_pair", "feature_set", "model_type", "changed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str] = mapped_column(String(32))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    previous_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime]


# ------------------------------------------------------------------------------------ serving


SHADOW_SOURCE = "shadow"


class PredictionLog(Base):
    """One prediction with its full context; the outcome columns are filled when the hour closes.

    ``id`` is assigned by the serving process (see ``mlops.predictions.ids``) so a response can
    carry it before the record reaches the store. The features it saw are in
    :class:`FeatureSnapshot`, referenced by hash: every prediction of an hour shares them, and
    a narrow log row keeps accuracy and statistics queries fast.
    """

    __tablename__ = "prediction_logs"
    __table_args__ = (
        Index("ix_prediction_logs_pair_time", "feature_set", "model_type", "predicted_at"),
        Index("ix_prediction_logs_status_target", "outcome_status", "target_ts"),
        Index("ix_prediction_logs_predicted_at_id", "predicted_at", "id"),
        # pairing a model's outcomes with another's, hour by hour (shadows, rollback)
        Index("ix_prediction_logs_version_target", "model_version", "target_ts"),
        # the outcomes recorded since the rollback check's last look
        Index("ix_prediction_logs_version_recorded", "model_version", "outcome_recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    feature_set: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(96))
    prediction: Mapped[int] = mapped_column(Integer)
    probability_down: Mapped[float] = mapped_column(Float)
    probability_up: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    features_sha256: Mapped[str | None] = mapped_column(String(64))
    feature_ts: Mapped[datetime]
    target_ts: Mapped[datetime]
    imputed_features: Mapped[int] = mapped_column(Integer, default=0)
    # "api", "scheduled", or SHADOW_SOURCE: a shadow model's hourly prediction, never served
    source: Mapped[str] = mapped_column(String(16), default="api")
    response_time_ms: Mapped[float] = mapped_column(Float)
    cached_features: Mapped[bool] = mapped_column(Boolean)
    predicted_at: Mapped[datetime]
    bitcoin_price_at_prediction: Mapped[float | None] = mapped_column(Float)
    outcome_status: Mapped[str] = mapped_column(String(16), default="pending")
    actual_direction: Mapped[int | None] = mapped_column(Integer)
    prediction_correct: Mapped[bool | None] = mapped_column(Boolean)
    bitcoin_price_1h_later: Mapped[float | None] = mapped_column(Float)
    price_change_pct: Mapped[float | None] = mapped_column(Float)
    outcome_recorded_at: Mapped[datetime | None]
    outcome_source: Mapped[str | None] = mapped_column(String(16))


class FeatureSnapshot(Base):
    """The feature values a prediction was made from, stored once per distinct set of values.

    ``sha256`` is the hash of the canonical JSON of ``feature_values`` (sorted keys, NaN as
    null), so identical snapshots from any number of predictions and processes are one row.
    """

    __tablename__ = "feature_snapshots"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    feature_ts: Mapped[datetime]
    feature_values: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


# ------------------------------------------------------------------------------------- mlops


class DriftReport(Base):
    """One stored drift check (feature, model or summary), kept so trends can be plotted."""

    __tablename__ = "drift_reports"
    __table_args__ = (Index("ix_drift_reports_set_kind_time", "feature_set", "kind", "checked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    feature_set: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str | None] = mapped_column(String(8))
    checked_at: Mapped[datetime]
    report: Mapped[dict[str, Any]]


class SequentialDetectorFit(Base):
    """One fit of a feature set's hourly sequential drift detector; its newest is the current.

    The calibration is not stored: it is refitted, deterministically, from the feature rows
    of ``[history_start, reference_end)``; ``state`` (``SequentialState.to_dict()``) then
    continues it where ``last_hour`` (the newest row fed to it) left off.
    """

    __tablename__ = "sequential_detectors"
    __table_args__ = (Index("ix_sequential_detectors_set_time", "feature_set", "fitted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    feature_version: Mapped[str] = mapped_column(String(32))
    features: Mapped[list[Any]]
    fitted_at: Mapped[datetime]
    fit_reason: Mapped[str] = mapped_column(Text)
    history_start: Mapped[datetime]
    reference_start: Mapped[datetime]
    reference_end: Mapped[datetime]
    mtbf_hours: Mapped[float] = mapped_column(Float)
    smoothing: Mapped[float] = mapped_column(Float)
    state: Mapped[dict[str, Any]]
    last_hour: Mapped[datetime]
    updated_at: Mapped[datetime]
    statistic: Mapped[float] = mapped_column(Float)
    alarm_at: Mapped[datetime | None]
    change_at: Mapped[datetime | None]


class SequentialPoint(Base):
    """The sequential detector's evidence after one feature row (a point of the Drift chart)."""

    __tablename__ = "sequential_points"
    __table_args__ = (
        UniqueConstraint("detector_id", "hour"),
        Index("ix_sequential_points_set_hour", "feature_set", "hour"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    detector_id: Mapped[int] = mapped_column(
        ForeignKey("sequential_detectors.id", ondelete="CASCADE")
    )
    hour: Mapped[datetime]
    statistic: Mapped[float] = mapped_column(Float)
    alarm: Mapped[bool] = mapped_column(Boolean)


# Retraining runs that record a decision and trained nothing (a shadow promoted, a fallback).
DECISION_ONLY_TRIGGERS = ("shadow", "fallback")


class RetrainingRun(Base):
    """One retraining attempt, deployed or not, with everything needed to audit the decision."""

    __tablename__ = "retraining_runs"
    __table_args__ = (
        Index("ix_retraining_runs_pair_time", "feature_set", "model_type", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), unique=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(24))
    reasons: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    challenger_version: Mapped[str | None] = mapped_column(String(96))
    champion_version: Mapped[str | None] = mapped_column(String(96))
    windows: Mapped[dict[str, Any] | None]
    samples: Mapped[dict[str, Any] | None]
    challenger_metrics: Mapped[dict[str, Any] | None]
    champion_metrics: Mapped[dict[str, Any] | None]
    significance: Mapped[dict[str, Any] | None]
    # The promotion rule's evidence: paired hours, discordant counts, e-value, threshold.
    evidence: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class RetrainCheck(Base):
    """One evaluation of ``should_retrain`` with its numbers (drawn on the dashboard)."""

    __tablename__ = "retrain_checks"
    __table_args__ = (
        Index("ix_retrain_checks_pair_time", "feature_set", "model_type", "checked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str] = mapped_column(String(32))
    should_retrain: Mapped[bool] = mapped_column(Boolean)
    decision: Mapped[dict[str, Any]]
    checked_at: Mapped[datetime]


class Lease(Base):
    """A named, expiring lock row (retraining per pair, the single scheduler, worker ids).

    Works the same on SQLite and PostgreSQL: acquiring is one conditional write.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(36))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class JobRun(Base):
    """One run of a scheduler job: when, how long, and how it ended."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_time", "job", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class WorkerNode(Base):
    """Registration of a serving process; its id seeds that process's prediction ids."""

    __tablename__ = "worker_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
