"""appointment: one active (requested or scheduled) visit per provider and start

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here as at this revision (not imported from the models, which may move on).
HOLDS_SLOT = sa.text("status IN ('requested', 'scheduled')")


def upgrade() -> None:
    # Fails, rather than picks a winner, if two active visits already share a slot: which
    # patient keeps it is the clinic's call (docs/operations.md, "Migration 0005", finds them).
    op.create_index(
        "uq_appointment_provider_start_active",
        "appointment",
        ["provider_id", "start_at"],
        unique=True,
        postgresql_where=HOLDS_SLOT,
        sqlite_where=HOLDS_SLOT,
    )


def downgrade() -> None:
    op.drop_index("uq_appointment_provider_start_active", table_name="appointment")
