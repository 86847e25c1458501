"""proxy_grant: a person allowed to open another patient's record (a parent, a guardian, a
caregiver), within scopes and a period, with who granted it and who ended it and why.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0020"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proxy_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("proxy_user_id", sa.Integer(), nullable=False),
        sa.Column(
            "relationship",
            sa.Enum(
                "parent",
                "guardian",
                "caregiver",
                "other",
                name="proxyrelationship",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("legal_basis", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("starts_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("ends_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=False),
        sa.Column("ended_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_proxy_grant_period")),
        sa.ForeignKeyConstraint(
            ["ended_by_id"],
            ["user_account.id"],
            name=op.f("fk_proxy_grant_ended_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"],
            ["user_account.id"],
            name=op.f("fk_proxy_grant_granted_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient_profile.id"],
            name=op.f("fk_proxy_grant_patient_id_patient_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["proxy_user_id"],
            ["user_account.id"],
            name=op.f("fk_proxy_grant_proxy_user_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_grant")),
    )
    with op.batch_alter_table("proxy_grant", schema=None) as batch_op:
        batch_op.create_index("ix_proxy_grant_patient", ["patient_id"], unique=False)
        batch_op.create_index(
            "ix_proxy_grant_proxy_ended", ["proxy_user_id", "ended_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("proxy_grant", schema=None) as batch_op:
        batch_op.drop_index("ix_proxy_grant_proxy_ended")
        batch_op.drop_index("ix_proxy_grant_patient")

    op.drop_table("proxy_grant")
