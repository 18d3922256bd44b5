"""An index on each version's outcomes by the time they were recorded.

The hourly rollback check keeps the paired hours of the deployment it judges and reads only
the outcomes recorded since its last look (``mlops.retraining.deployment_pairing.DeploymentPairing``);
without this index that read scanned every row of both versions since the deployment, a cost
that grew by the hour for as long as a champion stayed deployed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_prediction_logs_version_recorded",
        "prediction_logs",
        ["model_version", "outcome_recorded_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_logs_version_recorded", table_name="prediction_logs")
