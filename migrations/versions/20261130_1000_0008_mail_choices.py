"""mail choices: patients choose email notices per kind, providers may opt in for messages

Replaces the patient's single `notify_by_email` switch with one per kind (each starts as the
switch was), and adds the provider's `mail_messages` (off).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("mail_lab_results", "mail_messages", "mail_appointments", "mail_plans")


def upgrade() -> None:
    with op.batch_alter_table("patient_profile", schema=None) as batch_op:
        for name in KINDS:
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.true())
            )
    op.execute(
        "UPDATE patient_profile SET mail_lab_results = notify_by_email, "
        "mail_messages = notify_by_email, mail_appointments = notify_by_email, "
        "mail_plans = notify_by_email"
    )
    with op.batch_alter_table("patient_profile", schema=None) as batch_op:
        batch_op.drop_column("notify_by_email")
    with op.batch_alter_table("provider_profile", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mail_messages", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_profile", schema=None) as batch_op:
        batch_op.drop_column("mail_messages")
    with op.batch_alter_table("patient_profile", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notify_by_email", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.execute(
        "UPDATE patient_profile SET notify_by_email = "
        "(mail_lab_results OR mail_messages OR mail_appointments OR mail_plans)"
    )
    with op.batch_alter_table("patient_profile", schema=None) as batch_op:
        for name in KINDS:
            batch_op.drop_column(name)
