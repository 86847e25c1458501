"""lab_collection_and_sealing: when a result's sample was taken, and the lists' order on it; the
attachments' sealing bound to their row and patient

Existing results are dated by their first publication (or creation, while preliminary): the
best this database knows of when the sample was taken. Existing attachments keep the sealing
they were written with (seal_version 1: the content's digest only) and no blob_id; new ones are
sealed with version 2 (services.attachments.associated_data).

Revision ID: 0014
Revises: 0010
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0014"
down_revision: str | None = "0010"
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
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blob_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("seal_version", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_attachment_blob_id"), ["blob_id"])
    op.execute("UPDATE attachment SET seal_version = 1")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.alter_column("seal_version", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_attachment_blob_id"), type_="unique")
        batch_op.drop_column("seal_version")
        batch_op.drop_column("blob_id")
    with op.batch_alter_table("lab_result", schema=None) as batch_op:
        batch_op.drop_index("ix_lab_result_patient_collected")
        batch_op.drop_column("collected_at")
