"""time zones and booking modes: a person's own time zone, each provider's booking mode

`user_account.time_zone` (an IANA name; empty reads times in the clinic's zone) and
`provider_profile.booking_mode` (`direct`, `request` (what patients did until now), `view`).

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("provider_profile", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "booking_mode",
                sa.Enum(
                    "direct",
                    "request",
                    "view",
                    name="bookingmode",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=False,
                server_default="request",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_profile", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_provider_profile_bookingmode"), type_="check")
        batch_op.drop_column("booking_mode")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
