"""audit action "delete" (retention purge)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 08:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_audit_event_auditaction"
ACTIONS = [
    "view", "create", "update", "publish", "correct", "release", "review", "acknowledge",
    "download", "send", "cancel", "activate", "complete", "assign", "unassign", "deactivate",
    "export", "sign_in", "sign_in_failed", "sign_out", "password_change", "access_denied",
]  # fmt: skip


def _set_actions(actions: list[str]) -> None:
    condition = sa.column("action").in_(actions)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(CHECK), "audit_event", type_="check")
        op.create_check_constraint(op.f(CHECK), "audit_event", condition)
        return
    # SQLite cannot alter a CHECK: batch mode rebuilds the table, which drops its triggers,
    # so the append-only triggers of revision 0001 are created again right after.
    with op.batch_alter_table("audit_event", recreate="always") as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), condition)
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
            f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {verb} refused'); END"
        )


def upgrade() -> None:
    _set_actions([*ACTIONS, "delete"])


def downgrade() -> None:
    _set_actions(ACTIONS)
