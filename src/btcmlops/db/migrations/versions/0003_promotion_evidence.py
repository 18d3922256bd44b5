"""Promotion evidence on retraining runs; prediction logs indexed by model version and hour.

The promotion rule (``mlops.retraining.promotion``) stores the evidence of each decision:
paired hours, discordant counts, the e-value and its threshold. Shadow scoring and paired
rollback join one model version's outcomes with another's by target hour.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("retraining_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", JSON, nullable=True))
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_logs_version_target", ["model_version", "target_ts"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_logs_version_target")
    with op.batch_alter_table("retraining_runs", schema=None) as batch_op:
        batch_op.drop_column("evidence")
