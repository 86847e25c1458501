"""language_unset: a patient who never chose a language reads in their browser's

`patient_profile.preferred_language` becomes nullable with no default: empty means "the same
as my browser" (its `Accept-Language`), where every new account used to get 'en' and so was
never served the browser's language. Existing rows keep their value: an 'en' written by the
old default cannot be told from one a patient chose without reading the audit log, and
English is what those patients have been reading; they can pick "Same as my browser" on
their profile.

Revision ID: 0017
Revises: 0015
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient_profile", schema=None) as batch_op:
        batch_op.alter_column(
            "preferred_language", existing_type=sa.String(length=16), nullable=True
        )


def downgrade() -> None:
    # The old schema has no "browser's language": those patients read English again.
    op.execute(
        "UPDATE patient_profile SET preferred_language = 'en' WHERE preferred_language IS NULL"
    )
    with op.batch_alter_table("patient_profile", schema=None) as batch_op:
        batch_op.alter_column(
            "preferred_language", existing_type=sa.String(length=16), nullable=False
        )
