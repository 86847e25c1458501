"""keyed_audit_closed_threads: the id of the HMAC key that signed each audit entry; closed threads

conversation.closed_at: a thread whose last clinician left the care team with nobody to take
it over takes no more replies.

Entries written before this migration keep a null key id: their hash is the plain SHA-256
link they were written with, and they still verify. A plain ADD COLUMN (no batch copy), so
the append-only triggers on audit_event stay in place and no entry is rewritten.

Revision ID: 0012
Revises: 0014
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0012"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("key_id", sa.String(length=16), nullable=True))
    op.add_column("conversation", sa.Column("closed_at", portal.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # SQLite: DROP COLUMN (3.35+) without a batch copy, for the same reasons.
    op.drop_column("audit_event", "key_id")
    op.drop_column("conversation", "closed_at")
