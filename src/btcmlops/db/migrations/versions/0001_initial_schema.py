"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 08:40:23.232113
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import btcmlops.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=600), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("published_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("ingested_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_articles")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_articles_dedup_key")),
    )
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_articles_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=True),
        sa.Column("checked_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_reports")),
    )
    with op.batch_alter_table("drift_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_reports_set_kind_time", ["feature_set", "kind", "checked_at"], unique=False
        )

    op.create_table(
        "feature_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("feature_version", sa.String(length=32), nullable=False),
        sa.Column("ts", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column(
            "feature_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("missing_count", sa.Integer(), nullable=False),
        sa.Column("built_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_rows")),
        sa.UniqueConstraint(
            "feature_set",
            "feature_version",
            "ts",
            name=op.f("uq_feature_rows_feature_set_feature_version_ts"),
        ),
    )
    with op.batch_alter_table("feature_rows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feature_rows_ts"), ["ts"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("started_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", btcmlops.db.types.UTCDateTime(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index("ix_job_runs_job_time", ["job", "started_at"], unique=False)

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("acquired_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=96), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("artifact_path", sa.String(length=1024), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("feature_version", sa.String(length=32), nullable=False),
        sa.Column(
            "feature_names",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "windows",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "hyperparameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "library_versions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "drift_reference",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_model_versions_version")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_model_versions_pair", ["feature_set", "model_type", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_model_versions_one_champion",
            ["feature_set", "model_type"],
            unique=True,
            sqlite_where=sa.text("status = 'champion'"),
            postgresql_where=sa.text("status = 'champion'"),
        )

    op.create_table(
        "prediction_logs",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=96), nullable=False),
        sa.Column("prediction", sa.Integer(), nullable=False),
        sa.Column("probability_down", sa.Float(), nullable=False),
        sa.Column("probability_up", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column(
            "features_json",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("feature_ts", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("target_ts", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("imputed_features", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("response_time_ms", sa.Float(), nullable=False),
        sa.Column("cached_features", sa.Boolean(), nullable=False),
        sa.Column("predicted_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("bitcoin_price_at_prediction", sa.Float(), nullable=True),
        sa.Column("outcome_status", sa.String(length=16), nullable=False),
        sa.Column("actual_direction", sa.Integer(), nullable=True),
        sa.Column("prediction_correct", sa.Boolean(), nullable=True),
        sa.Column("bitcoin_price_1h_later", sa.Float(), nullable=True),
        sa.Column("price_change_pct", sa.Float(), nullable=True),
        sa.Column("outcome_recorded_at", btcmlops.db.types.UTCDateTime(), nullable=True),
        sa.Column("outcome_source", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_logs")),
    )
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_logs_pair_time",
            ["feature_set", "model_type", "predicted_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_prediction_logs_status_target", ["outcome_status", "target_ts"], unique=False
        )

    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("ts", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("ingested_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
        sa.UniqueConstraint("symbol", "ts", name=op.f("uq_prices_symbol_ts")),
    )
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prices_ts"), ["ts"], unique=False)

    op.create_table(
        "retrain_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("should_retrain", sa.Boolean(), nullable=False),
        sa.Column(
            "decision",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("checked_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_checks")),
    )
    with op.batch_alter_table("retrain_checks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_retrain_checks_pair_time", ["feature_set", "model_type", "checked_at"], unique=False
        )

    op.create_table(
        "retraining_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=24), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("challenger_version", sa.String(length=96), nullable=True),
        sa.Column("champion_version", sa.String(length=96), nullable=True),
        sa.Column(
            "windows",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "samples",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "challenger_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "champion_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "significance",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("started_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", btcmlops.db.types.UTCDateTime(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retraining_runs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_retraining_runs_job_id")),
    )
    with op.batch_alter_table("retraining_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_retraining_runs_pair_time",
            ["feature_set", "model_type", "started_at"],
            unique=False,
        )

    op.create_table(
        "worker_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_nodes")),
    )
    op.create_table(
        "article_sentiment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("scorer", sa.String(length=16), nullable=False),
        sa.Column("scorer_version", sa.String(length=128), nullable=False),
        sa.Column("published_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("positive", sa.Float(), nullable=False),
        sa.Column("negative", sa.Float(), nullable=False),
        sa.Column("neutral", sa.Float(), nullable=False),
        sa.Column("compound", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("scored_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_sentiment_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_sentiment")),
        sa.UniqueConstraint(
            "article_id", "scorer", name=op.f("uq_article_sentiment_article_id_scorer")
        ),
    )
    with op.batch_alter_table("article_sentiment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_article_sentiment_scorer_published", ["scorer", "published_at"], unique=False
        )

    op.create_table(
        "champion_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("previous_model_version_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_champion_history_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_champion_history_previous_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_champion_history")),
    )
    with op.batch_alter_table("champion_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_champion_history_pair", ["feature_set", "model_type", "changed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("champion_history", schema=None) as batch_op:
        batch_op.drop_index("ix_champion_history_pair")

    op.drop_table("champion_history")
    with op.batch_alter_table("article_sentiment", schema=None) as batch_op:
        batch_op.drop_index("ix_article_sentiment_scorer_published")

    op.drop_table("article_sentiment")
    op.drop_table("worker_nodes")
    with op.batch_alter_table("retraining_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_retraining_runs_pair_time")

    op.drop_table("retraining_runs")
    with op.batch_alter_table("retrain_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_retrain_checks_pair_time")

    op.drop_table("retrain_checks")
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prices_ts"))

    op.drop_table("prices")
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_logs_status_target")
        batch_op.drop_index("ix_prediction_logs_pair_time")

    op.drop_table("prediction_logs")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_model_versions_one_champion",
            sqlite_where=sa.text("status = 'champion'"),
            postgresql_where=sa.text("status = 'champion'"),
        )
        batch_op.drop_index("ix_model_versions_pair")

    op.drop_table("model_versions")
    op.drop_table("leases")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_job_runs_job_time")

    op.drop_table("job_runs")
    with op.batch_alter_table("feature_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_rows_ts"))

    op.drop_table("feature_rows")
    with op.batch_alter_table("drift_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_reports_set_kind_time")

    op.drop_table("drift_reports")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_articles_published_at"))

    op.drop_table("articles")
