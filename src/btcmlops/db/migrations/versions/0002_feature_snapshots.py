"""Feature snapshots out of the prediction log.

Every prediction of an hour saw the same feature values; storing them (about 4 KB) in each
log row made the log wide and every accuracy query walk them. They move to
``feature_snapshots``, one row per distinct set of values, referenced by its sha256.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import btcmlops.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _digest(values: dict) -> tuple[dict, str]:
    # A frozen copy of mlops.predictions.records.snapshot_of: migrations never import app code.
    cleaned = {
        str(k): (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in values.items()
    }
    text = json.dumps(cleaned, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return cleaned, hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    op.create_table(
        "feature_snapshots",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("feature_set", sa.String(length=16), nullable=False),
        sa.Column("feature_ts", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.Column("feature_values", JSON, nullable=False),
        sa.Column("created_at", btcmlops.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_feature_snapshots")),
    )
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_prediction_logs_predicted_at_id", ["predicted_at", "id"], unique=False
        )

    logs = sa.table(
        "prediction_logs",
        sa.column("id", sa.BigInteger),
        sa.column("feature_set", sa.String),
        sa.column("feature_ts", sa.DateTime),
        sa.column("features_json", JSON),
        sa.column("features_sha256", sa.String),
    )
    snapshots = sa.table(
        "feature_snapshots",
        sa.column("sha256", sa.String),
        sa.column("feature_set", sa.String),
        sa.column("feature_ts", sa.DateTime),
        sa.column("feature_values", JSON),
        sa.column("created_at", sa.DateTime),
    )
    connection = op.get_bind()
    seen: set[str] = set()
    now = datetime.now(UTC).replace(tzinfo=None)  # migration bookkeeping, not domain time
    rows = connection.execute(
        sa.select(logs.c.id, logs.c.feature_set, logs.c.feature_ts, logs.c.features_json)
    ).all()
    for prediction_id, feature_set, feature_ts, values in rows:
        cleaned, digest = _digest(values or {})
        if digest not in seen:
            seen.add(digest)
            connection.execute(
                snapshots.insert().values(
                    sha256=digest,
                    feature_set=feature_set,
                    feature_ts=feature_ts,
                    feature_values=cleaned,
                    created_at=now,
                )
            )
        connection.execute(
            logs.update().where(logs.c.id == prediction_id).values(features_sha256=digest)
        )
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.drop_column("features_json")


def downgrade() -> None:
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features_json", JSON, nullable=True))
    op.execute(
        "UPDATE prediction_logs SET features_json = (SELECT feature_values FROM "
        "feature_snapshots WHERE feature_snapshots.sha256 = prediction_logs.features_sha256)"
    )
    with op.batch_alter_table("prediction_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_logs_predicted_at_id")
        batch_op.drop_column("features_sha256")
    op.drop_table("feature_snapshots")
