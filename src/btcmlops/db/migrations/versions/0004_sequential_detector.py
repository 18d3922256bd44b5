"""The hourly sequential drift detector of each feature set and its hourly points.

``sequential_detectors`` holds every fit (the newest of a feature set is the current one):
its windows, parameters and hour-to-hour state, so a restarted process refits it from the
stored feature rows and continues where it stopped. ``sequential_points`` holds its evidence
after each feature row, for the Drift view's chart.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import btcmlops.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC = btcmlops.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "sequential_detectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("feature_version", sa.String(length=32), nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.Column("fitted_at", UTC(), nullable=False),
        sa.Column("fit_reason", sa.Text(), nullable=False),
        sa.Column("history_start", UTC(), nullable=False),
        sa.Column("reference_start", UTC(), nullable=False),
        sa.Column("reference_end", UTC(), nullable=False),
        sa.Column("mtbf_hours", sa.Float(), nullable=False),
        sa.Column("smoothing", sa.Float(), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("last_hour", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("alarm_at", UTC(), nullable=True),
        sa.Column("change_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequential_detectors")),
    )
    with op.batch_alter_table("sequential_detectors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sequential_detectors_set_time", ["feature_set", "fitted_at"], unique=False
        )

    op.create_table(
        "sequential_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("detector_id", sa.Integer(), nullable=False),
        sa.Column("hour", UTC(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("alarm", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["detector_id"],
            ["sequential_detectors.id"],
            name=op.f("fk_sequential_points_detector_id_sequential_detectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequential_points")),
        sa.UniqueConstraint(
            "detector_id", "hour", name=op.f("uq_sequential_points_detector_id_hour")
        ),
    )
    with op.batch_alter_table("sequential_points", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sequential_points_set_hour", ["feature_set", "hour"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sequential_points", schema=None) as batch_op:
        batch_op.drop_index("ix_sequential_points_set_hour")
    op.drop_table("sequential_points")
    with op.batch_alter_table("sequential_detectors", schema=None) as batch_op:
        batch_op.drop_index("ix_sequential_detectors_set_time")
    op.drop_table("sequential_detectors")
