"""audit_sealed_by_the_app: entries signed as written, seals only at the chain's next position,
and where keying began recorded (issue 21, points 1-3)

- `audit_event.mac`: the application's HMAC of the entry as written (`chain.entry_mac`). The
  sealer seals only entries whose signature checks, so a row inserted straight into the table
  by someone with the application's database role is never sealed.
- The seal-once trigger now also requires the seal to take the chain's next position, link to
  the head's hash, carry a well-formed hash and (from `keyed_from` on) a well-formed key id:
  nobody can park an entry outside the chain (`seq = -id`) to delete it later unnoticed.
- A new trigger refuses an INSERT that arrives already sealed: every entry is written
  unsealed and goes through the sealer.
- `audit_chain_start` (one row, never changed) records the first position that must be keyed:
  1 on a database with no unkeyed entries; the position after the last unkeyed one otherwise.

Entries written unsealed by the previous release carry no signature, and the sealer would
refuse them: the upgrade refuses to run while any are waiting (stop the web processes, run
`flask --app wsgi audit seal`, then upgrade).

Revision ID: 0018
Revises: 0020
Create Date: 2026-12-08 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db

revision: str = "0018"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
SEAL = ("seq", "prev_hash", "hash", "key_id")
#: The content columns as of this revision (SQLite's trigger lists them; PostgreSQL's compares
#: whole rows less the seal, so it covers later columns by itself).
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
NEXT_SEAL_REFUSED = (
    "audit_event seal refused: only the next position of the chain, linked to its head, "
    "with a well-formed hash and key"
)
SEALED_INSERT_REFUSED = "audit_event entries are written unsealed: sealed INSERT refused"
START_FIXED = "audit_chain_start is written once: change refused"


def _sqlite_seal_triggers(content: Sequence[str], *, next_only: bool) -> None:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in content)
    op.execute(
        "CREATE TRIGGER audit_event_seal_once BEFORE UPDATE ON audit_event "
        f"WHEN OLD.seq IS NOT NULL OR NEW.seq IS NULL OR {changed} "
        "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END"
    )
    if not next_only:
        return
    # The head is the highest position (the trigger keeps positions contiguous from 1).
    not_hex = "GLOB '*[^0-9a-f]*'"
    op.execute(
        f"""
        CREATE TRIGGER audit_event_seal_next BEFORE UPDATE ON audit_event
        WHEN OLD.seq IS NULL AND NEW.seq IS NOT NULL AND (
            NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_event)
            OR NEW.prev_hash IS NOT coalesce(
                (SELECT hash FROM audit_event WHERE seq = NEW.seq - 1), '{GENESIS}')
            OR NEW.hash IS NULL OR length(NEW.hash) != 64 OR NEW.hash {not_hex}
            OR (NEW.key_id IS NULL OR length(NEW.key_id) != 12 OR NEW.key_id {not_hex})
               AND NEW.seq >= coalesce((SELECT keyed_from FROM audit_chain_start), 1)
        )
        BEGIN SELECT RAISE(ABORT, '{NEXT_SEAL_REFUSED}'); END
        """  # noqa: S608  (only this module's constants are interpolated)
    )


def upgrade() -> None:
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM audit_event WHERE seq IS NULL")).scalar()
    if waiting:
        raise RuntimeError(
            f"{waiting} audit entries are not sealed yet and carry no signature: stop the web "
            "processes, run `flask --app wsgi audit seal`, then upgrade"
        )
    postgres = bind.dialect.name == "postgresql"
    # A plain ADD COLUMN (no batch copy): the triggers stay and no entry is rewritten.
    op.add_column("audit_event", sa.Column("mac", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_chain_start",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("keyed_from", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", portal.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_start_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_start")),
    )
    # Keyed from the first keyed entry; with none keyed yet, from the next position (a new
    # database: 1).
    op.execute(
        "INSERT INTO audit_chain_start (id, keyed_from, recorded_at) SELECT 1, coalesce("
        "(SELECT min(seq) FROM audit_event WHERE key_id IS NOT NULL), "
        "(SELECT coalesce(max(seq), 0) + 1 FROM audit_event)), CURRENT_TIMESTAMP"
    )
    if postgres:
        _postgres_up()
    else:
        op.execute("DROP TRIGGER audit_event_seal_once")
        _sqlite_seal_triggers((*CONTENT, "mac"), next_only=True)
        op.execute(
            "CREATE TRIGGER audit_event_insert_unsealed BEFORE INSERT ON audit_event "
            "WHEN NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL "
            "OR NEW.key_id IS NOT NULL "
            f"BEGIN SELECT RAISE(ABORT, '{SEALED_INSERT_REFUSED}'); END"
        )
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_chain_start_no_{verb.lower()} BEFORE {verb} "
                f"ON audit_chain_start BEGIN SELECT RAISE(ABORT, '{START_FIXED}'); END"
            )


def _postgres_up() -> None:
    kept = " - ".join(f"'{c}'" for c in SEAL)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION audit_event_seal_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            top bigint;
            top_hash text;
            keyed bigint;
        BEGIN
            IF OLD.seq IS NOT NULL OR NEW.seq IS NULL
               OR (to_jsonb(NEW) - {kept}) IS DISTINCT FROM (to_jsonb(OLD) - {kept}) THEN
                RAISE EXCEPTION 'audit_event is append-only: UPDATE refused';
            END IF;
            -- The head is the highest position (this trigger keeps them contiguous from 1).
            SELECT seq, hash INTO top, top_hash FROM audit_event
                WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
            SELECT keyed_from INTO keyed FROM audit_chain_start;
            IF NEW.seq IS DISTINCT FROM coalesce(top, 0) + 1
               OR NEW.prev_hash IS DISTINCT FROM coalesce(top_hash, '{GENESIS}')
               OR NEW.hash IS NULL OR NEW.hash !~ '^[0-9a-f]{{64}}$'
               OR (NEW.key_id IS NULL OR NEW.key_id !~ '^[0-9a-f]{{12}}$')
                  AND NEW.seq >= coalesce(keyed, 1) THEN
                RAISE EXCEPTION '{NEXT_SEAL_REFUSED}';
            END IF;
            RETURN NEW;
        END $$;
        """  # noqa: S608  (only this module's constants are interpolated)
    )
    op.execute(
        f"""
        CREATE FUNCTION audit_event_insert_unsealed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL
               OR NEW.key_id IS NOT NULL THEN
                RAISE EXCEPTION '{SEALED_INSERT_REFUSED}';
            END IF;
            RETURN NEW;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_event_insert_unsealed BEFORE INSERT ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_insert_unsealed()"
    )
    op.execute(
        f"""
        CREATE FUNCTION audit_chain_start_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{START_FIXED}';
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_chain_start_fixed BEFORE UPDATE OR DELETE ON audit_chain_start "
        "FOR EACH ROW EXECUTE FUNCTION audit_chain_start_fixed()"
    )
    op.execute(
        "CREATE TRIGGER audit_chain_start_no_truncate BEFORE TRUNCATE ON audit_chain_start "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_start_fixed()"
    )


def downgrade() -> None:
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM audit_event WHERE seq IS NULL")).scalar()
    if waiting:
        raise RuntimeError(f"{waiting} audit entries are not sealed yet: run the sealer first")
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_chain_start_no_truncate ON audit_chain_start")
        op.execute("DROP TRIGGER audit_chain_start_fixed ON audit_chain_start")
        op.execute("DROP FUNCTION audit_chain_start_fixed()")
        op.execute("DROP TRIGGER audit_event_insert_unsealed ON audit_event")
        op.execute("DROP FUNCTION audit_event_insert_unsealed()")
        kept = " - ".join(f"'{c}'" for c in SEAL)
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION audit_event_seal_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.seq IS NOT NULL OR NEW.seq IS NULL
                   OR (to_jsonb(NEW) - {kept}) IS DISTINCT FROM (to_jsonb(OLD) - {kept}) THEN
                    RAISE EXCEPTION 'audit_event is append-only: UPDATE refused';
                END IF;
                RETURN NEW;
            END $$;
            """
        )
    else:
        op.execute("DROP TRIGGER audit_chain_start_no_update")
        op.execute("DROP TRIGGER audit_chain_start_no_delete")
        op.execute("DROP TRIGGER audit_event_insert_unsealed")
        op.execute("DROP TRIGGER audit_event_seal_next")
        op.execute("DROP TRIGGER audit_event_seal_once")
    op.drop_table("audit_chain_start")
    # SQLite: DROP COLUMN (3.35+) without a batch copy, so the other triggers stay.
    op.drop_column("audit_event", "mac")
    if bind.dialect.name != "postgresql":
        _sqlite_seal_triggers(CONTENT, next_only=False)
