"""care_assignment_request: a care-team assignment a second administrator confirms; mail to a
patient who has no sign-in yet (mail_outbox.user_id may be empty); audit entries by entity

Revision ID: 0011
Revises: 0012
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0011"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "care_assignment_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("created_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["user_account.id"],
            name=op.f("fk_care_assignment_request_decided_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient_profile.id"],
            name=op.f("fk_care_assignment_request_patient_id_patient_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider_profile.id"],
            name=op.f("fk_care_assignment_request_provider_id_provider_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["user_account.id"],
            name=op.f("fk_care_assignment_request_requested_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_assignment_request")),
    )
    with op.batch_alter_table("care_assignment_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_assignment_request_patient_id"), ["patient_id"], unique=False
        )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
    # Not in a batch: on SQLite a batch could copy the table, and its append-only triggers.
    op.create_index("ix_audit_event_entity", "audit_event", ["entity_type", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_entity", table_name="audit_event")
    op.execute("DELETE FROM mail_outbox WHERE user_id IS NULL")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("care_assignment_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_assignment_request_patient_id"))
    op.drop_table("care_assignment_request")
