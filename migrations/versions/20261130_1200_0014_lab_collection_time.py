"""lab_collection_time: when a result's sample was taken, and the lists' order on it

Existing results are dated by their first publication (or creation, while preliminary): the
best this database knows of when the sample was taken.

Revision ID: 0014
Revises: 0009
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0014"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lab_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collected_at", portal.db.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE lab_result SET collected_at = COALESCE((SELECT MIN(v.published_at) "
        "FROM lab_result_version v WHERE v.lab_result_id = lab_result.id), created_at)"
    )
    with op.batch_alter_table("lab_result", schema=None) as batch_op:
        batch_op.alter_column("collected_at", existing_type=portal.db.UTCDateTime(), nullable=False)
        batch_op.create_index(
            "ix_lab_result_patient_collected", ["patient_id", "collected_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lab_result", schema=None) as batch_op:
        batch_op.drop_index("ix_lab_result_patient_collected")
        batch_op.drop_column("collected_at")
