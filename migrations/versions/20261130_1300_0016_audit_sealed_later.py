"""audit_sealed_later: entries are written unsealed and sealed into the chain by the worker

A page view no longer waits for the chain's lock: its entry is inserted with its seal (`seq`,
`prev_hash`, `hash`, `key_id`) empty, and the sealer fills it in within seconds, in the order
entries committed. Existing entries are numbered in id order, the order they were chained in.

The append-only triggers are replaced: an UPDATE may now fill an empty seal once, and change
nothing else; DELETE (and on PostgreSQL TRUNCATE) is still refused.

Revision ID: 0016
Revises: 0013
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The seal's columns: the only ones an UPDATE may fill, and only while `seq` is empty.
SEAL = ("seq", "prev_hash", "hash", "key_id")
#: Every other column of audit_event as of this revision (SQLite's trigger lists them; the
#: PostgreSQL trigger compares whole rows, so it covers columns added later by itself).
CONTENT = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_role",
    "action",
    "entity_type",
    "entity_id",
    "patient_id",
    "outcome",
    "request_id",
    "client_addr",
    "user_agent",
    "detail",
)
NUMBER_EXISTING = (
    "UPDATE audit_event SET seq = numbered.n FROM "
    "(SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_event) AS numbered "
    "WHERE audit_event.id = numbered.id"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER audit_event_no_update ON audit_event")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
    op.execute(NUMBER_EXISTING)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_seq"), ["seq"])
    op.create_index(
        "ix_audit_event_unsealed",
        "audit_event",
        ["id"],
        unique=False,
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )
    if postgres:
        kept = " - ".join(f"'{c}'" for c in SEAL)
        op.execute(
            f"""
            CREATE FUNCTION audit_event_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.seq IS NOT NULL OR NEW.seq IS NULL
                   OR (to_jsonb(NEW) - {kept}) IS DISTINCT FROM (to_jsonb(OLD) - {kept}) THEN
                    RAISE EXCEPTION 'audit_event is append-only: UPDATE refused';
                END IF;
                RETURN NEW;
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER audit_event_seal_once BEFORE UPDATE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_seal_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT)
        op.execute(
            "CREATE TRIGGER audit_event_seal_once BEFORE UPDATE ON audit_event "
            f"WHEN OLD.seq IS NOT NULL OR NEW.seq IS NULL OR {changed} "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: DELETE refused'); END"
        )


def downgrade() -> None:
    # Entries written unsealed since cannot go back to a schema that requires a hash: refuse.
    bind = op.get_bind()
    unsealed = bind.execute(sa.text("SELECT count(*) FROM audit_event WHERE seq IS NULL")).scalar()
    if unsealed:
        raise RuntimeError(f"{unsealed} audit entries are not sealed yet: run the sealer first")
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER audit_event_seal_once ON audit_event")
        op.execute("DROP TRIGGER audit_event_no_delete ON audit_event")
        op.execute("DROP FUNCTION audit_event_seal_only()")
    else:
        op.execute("DROP TRIGGER audit_event_seal_once")
        op.execute("DROP TRIGGER audit_event_no_delete")
    op.drop_index("ix_audit_event_unsealed", table_name="audit_event")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_seq"), type_="unique")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("seq")
    if postgres:
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {verb} refused'); END"
            )
