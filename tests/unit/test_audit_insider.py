"""The audit chain holds against an insider with the application's own database role
(issue 21, points 1-3): a row inserted straight into `audit_event` is never sealed and
`audit verify` names it; no entry can be parked outside the chain; a chain keyed from the
start refuses unkeyed seals, and a keyed chain without a checkpoint does not pass.

On PostgreSQL each attack runs as a role with exactly the grants docs/operations.md gives
`portal_app`; SQLite has no roles, so there the application's connection is the insider's.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal import audit, create_app
from portal.audit import chain
from portal.cli import alembic_config
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditChainStart, AuditEvent, AuditOutcome, Entity
from tests.conftest import Demo
from tests.support import app_config, new_database
from tests.unit.test_audit_chain import (
    _record,
    disable_append_only_triggers,
    run_verify,
    sealed,
    take_checkpoint,
    verify_checkpointed,
)

TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]

#: docs/operations.md, "Audit log privileges": what the application's role is granted.
APP_ROLE_GRANTS = (
    "CREATE ROLE portal_app_insider NOLOGIN",
    "GRANT USAGE ON SCHEMA public TO portal_app_insider",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portal_app_insider",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portal_app_insider",
    "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_event FROM portal_app_insider",
    "GRANT UPDATE (seq, prev_hash, hash, key_id) ON audit_event TO portal_app_insider",
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit_chain_start FROM portal_app_insider",
)

#: The issue's forged entry: Dr Okafor (not alice's clinician) viewing her lab result.
FORGE = text(
    "INSERT INTO audit_event (occurred_at, actor_id, actor_role, action, entity_type, "
    "entity_id, patient_id, outcome, detail, mac) VALUES (:at, :actor, 'provider', 'view', "
    "'lab_result', '1', :patient, 'success', '{}', :mac)"
)


@pytest.fixture
def app_role(session: Session) -> Iterator[None]:
    """Act as the application's database role from here on (PostgreSQL); the role exists only
    inside the test's transaction."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        for statement in (*APP_ROLE_GRANTS, "SET LOCAL ROLE portal_app_insider"):
            session.connection().execute(text(statement))
    yield
    if postgres:
        session.connection().execute(text("RESET ROLE"))


def _forge(session: Session, people: Demo, mac: str | None = None) -> int:
    alice = people.user("alice")
    assert alice.patient is not None
    session.connection().execute(
        FORGE,
        {
            # Naive UTC, as the column stores it: this is raw SQL, not the app's types.
            "at": utcnow().replace(tzinfo=None),
            "actor": people.user("dr_okafor").id,
            "patient": alice.patient.id,
            "mac": mac,
        },
    )
    found = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    assert found is not None
    return found


def _seq_of(session: Session, entry_id: int) -> int | None:
    return session.connection().scalar(select(TABLE.c.seq).where(TABLE.c.id == entry_id))


# --- 1. Forged entries are never sealed -------------------------------------------------------


@pytest.mark.parametrize("mac", [None, "0" * 64, "copied"], ids=["unsigned", "made-up", "copied"])
def test_an_entry_inserted_straight_into_the_table_is_never_sealed(
    app_ctx: Flask,
    session: Session,
    people: Demo,
    app_role: None,
    caplog: pytest.LogCaptureFixture,
    mac: str,
) -> None:
    # Arrange: a genuine entry, whose signature the insider may copy onto a forged one
    (genuine,) = _record(session, 1)
    if mac == "copied":
        mac = session.connection().scalar(select(TABLE.c.mac).where(TABLE.c.id == genuine.id))
    forged = _forge(session, people, mac)
    audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    # Act: the worker's sealer runs
    with caplog.at_level(logging.ERROR, logger="portal.audit"):
        done = sealed(session)
    # Assert: the application's entry is sealed, the forged one refused with an alarm ...
    assert done == 1
    assert _seq_of(session, forged) is None
    assert f"audit entry {forged} refused by the sealer" in caplog.text
    # ... and it stays refused on every later run
    assert sealed(session) == 0
    assert _seq_of(session, forged) is None
    # ... and verify names it, though the chain itself is intact
    take_checkpoint(app_ctx)
    code, output = run_verify(app_ctx)
    assert code != 0
    assert f"entry {forged}: was not written by the application" in output


def test_the_sealer_goes_on_past_a_heap_of_forged_entries(
    session: Session, people: Demo, app_role: None
) -> None:
    forged = [_forge(session, people) for _ in range(5)]
    genuine = audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    session.flush()

    assert chain.seal(session, batch=2) == 1

    assert _seq_of(session, genuine.id) is not None
    assert all(_seq_of(session, f) is None for f in forged)


def test_entries_the_application_writes_by_either_door_are_signed(
    app_ctx: Flask, session: Session, app_role: None
) -> None:
    # The ORM's `record` and the read hook's `chain.append` both sign what they insert.
    audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    row = {name: None for name in chain.CONTENT if name not in ("key_id", "mac")} | {
        "occurred_at": utcnow(),
        "action": AuditAction.VIEW,
        "entity_type": "lab_result",
        "outcome": AuditOutcome.SUCCESS,
        "detail": "{}",
    }
    chain.append(session.connection(), row)
    keyring = chain.configured()
    newest = session.connection().execute(select(TABLE).order_by(TABLE.c.id.desc()).limit(2))
    assert all(chain.written_by_app(r._mapping, keyring) for r in newest)
    assert sealed(session) >= 2


# --- 2. No entry can be kept out of the chain -------------------------------------------------


def test_an_entry_cannot_be_parked_outside_the_chain(
    session: Session, people: Demo, app_role: None
) -> None:
    # Arrange: a genuine entry not sealed yet, which the insider wants to delete later
    _record(session, 1)
    waiting = audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    session.flush()
    top = chain.head(session)
    assert top is not None
    seq, head_hash = top
    key_id = chain.configured().current.id
    good = {"seq": seq + 1, "prev_hash": head_hash, "hash": "a" * 64, "key_id": key_id}
    attempts = {
        # The exemption: a position outside the chain.
        "outside": {"seq": -waiting.id, "prev_hash": "x", "hash": f"hidden-{waiting.id}"},
        "skips a position": good | {"seq": seq + 2},
        "links elsewhere": good | {"prev_hash": "b" * 64},
        "malformed hash": good | {"hash": f"hidden-{waiting.id}"},
        "malformed key": good | {"key_id": "x"},
    }
    # Act / Assert: each is refused by the database
    for name, values in attempts.items():
        with (
            pytest.raises(DBAPIError, match="seal refused|append-only"),
            session.begin_nested(),
        ):
            session.connection().execute(
                update(TABLE).where(TABLE.c.id == waiting.id).values(values)
            )
        assert _seq_of(session, waiting.id) is None, name
    # ... and the 20 ms loop statement, on every unsealed row at once
    with pytest.raises(DBAPIError, match="seal refused|append-only"), session.begin_nested():
        session.connection().execute(
            text(
                "UPDATE audit_event SET seq = -id, prev_hash = 'x', hash = 'hidden-' || id, "
                "key_id = 'x' WHERE seq IS NULL"
            )
        )
    # The sealer still seals it, at the next position
    assert sealed(session) == 1
    assert _seq_of(session, waiting.id) == seq + 1


def test_an_entry_cannot_be_inserted_already_sealed(
    session: Session, people: Demo, app_role: None
) -> None:
    with pytest.raises(DBAPIError, match="written unsealed"), session.begin_nested():
        session.connection().execute(
            insert(TABLE).values(
                occurred_at=utcnow(),
                action=AuditAction.VIEW,
                entity_type="lab_result",
                outcome=AuditOutcome.SUCCESS,
                detail="{}",
                seq=-1,
                prev_hash="x",
                hash="hidden",
                key_id="x",
            )
        )


def test_verify_accounts_for_every_row(app_ctx: Flask, session: Session) -> None:
    # Arrange: the owner (who can lift the triggers) parks an entry outside the chain
    _record(session, 2)
    hidden = audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    session.commit()
    take_checkpoint(app_ctx)
    disable_append_only_triggers(session)
    session.connection().execute(
        update(TABLE)
        .where(TABLE.c.id == hidden.id)
        .values(seq=-hidden.id, prev_hash="x", hash=f"hidden-{hidden.id}", key_id="x")
    )
    # Act
    code, output = run_verify(app_ctx)
    # Assert: rows = sealed + unsealed no longer holds
    assert code != 0
    assert f"entry {hidden.id}: is one of 1 entries neither in the chain nor waiting" in output


# --- 3. No unkeyed rewrite passes -------------------------------------------------------------


def test_a_database_created_keyed_refuses_an_unkeyed_seal(session: Session, app_role: None) -> None:
    assert chain.keyed_from(session) == 1  # the suite's database was created keyed
    _record(session, 1)
    waiting = audit.record(session, None, AuditAction.VIEW, Entity.DASHBOARD)
    session.flush()
    top = chain.head(session)
    assert top is not None
    seq, prev = top
    conn = session.connection()
    row = conn.execute(select(TABLE).where(TABLE.c.id == waiting.id)).one()
    # A perfectly linked seal, in the pre-keying scheme that anyone can compute.
    plain = chain.entry_hash(prev, chain.canonical_row(row._mapping), None)
    with pytest.raises(DBAPIError, match="seal refused"), session.begin_nested():
        session.connection().execute(
            update(TABLE)
            .where(TABLE.c.id == waiting.id)
            .values(seq=seq + 1, prev_hash=prev, hash=plain, key_id=None)
        )
    assert _seq_of(session, waiting.id) is None


def test_where_keying_began_cannot_be_changed(session: Session, app_role: None) -> None:
    for sql in (
        "UPDATE audit_chain_start SET keyed_from = 1000000",
        "DELETE FROM audit_chain_start",
    ):
        with (
            pytest.raises(DBAPIError, match="written once|permission denied"),
            session.begin_nested(),
        ):
            session.connection().execute(text(sql))
    assert chain.keyed_from(session) == 1


def _rewrite_unkeyed(session: Session) -> None:
    """The whole chain re-linked with plain SHA-256 from position 1, as someone without the
    key would rebuild it (after lifting the triggers)."""
    conn = session.connection()
    prev = chain.GENESIS
    for row in conn.execute(select(TABLE).where(TABLE.c.seq.is_not(None)).order_by(TABLE.c.seq)):
        values = dict(row._mapping) | {"key_id": None}
        new = chain.entry_hash(prev, chain.canonical_row(values), None)
        conn.execute(
            update(TABLE).where(TABLE.c.id == row.id).values(key_id=None, prev_hash=prev, hash=new)
        )
        prev = new


def test_verify_refuses_a_chain_rebuilt_unkeyed_on_a_database_created_keyed(
    app_ctx: Flask, session: Session
) -> None:
    _record(session, 2)
    session.commit()
    disable_append_only_triggers(session)
    _rewrite_unkeyed(session)
    first = session.connection().scalar(select(TABLE.c.id).where(TABLE.c.seq == 1))

    # No checkpoint to compare with: the record of where keying began is enough.
    count, problem = chain.verify(session, checkpoints=[])

    assert problem is not None
    assert count == 1
    assert problem.entry_id == first
    assert "is unkeyed where the chain is keyed" in problem.reason


def test_verify_fails_on_a_keyed_chain_without_a_checkpoint(
    app_ctx: Flask, session: Session
) -> None:
    _record(session, 2)
    session.commit()

    code, output = run_verify(app_ctx)

    assert code != 0
    assert "ends a keyed chain of which no checkpoint exists" in output
    # ... and passes once one is taken
    take_checkpoint(app_ctx)
    assert run_verify(app_ctx)[0] == 0


def test_0018_records_where_keying_began(tmp_path: Path) -> None:
    # Arrange: a database from before keying, with three unkeyed entries sealed in it
    url = new_database(tmp_path, "keying_began")
    cfg = alembic_config(url)
    command.upgrade(cfg, "0009")
    app = create_app(app_config(url))
    with app.app_context(), db.engine.begin() as conn:
        prev = chain.GENESIS
        for n in range(3):
            row = {name: None for name in chain.CONTENT} | {
                "occurred_at": utcnow() + timedelta(seconds=n),
                "action": AuditAction.VIEW,
                "entity_type": "lab_result",
                "entity_id": str(n),
                "outcome": AuditOutcome.SUCCESS,
                "detail": "{}",
            }
            digest = hashlib.sha256((prev + "\n" + chain.canonical_row(row)).encode()).hexdigest()
            legacy = {k: v for k, v in row.items() if k not in ("key_id", "mac")}
            conn.execute(insert(TABLE).values(legacy | {"prev_hash": prev, "hash": digest}))
            prev = digest
    # Act
    command.upgrade(cfg, "head")
    # Assert: keyed from the next position on, and the old entries still verify
    with app.app_context():
        assert db.session.scalar(select(AuditChainStart.keyed_from)) == 4
        audit.record(db.session, None, AuditAction.VIEW, Entity.DASHBOARD)
        db.session.commit()
        chain.seal(db.session)
        db.session.commit()
        assert verify_checkpointed(db.session) == (4, None)
    app.extensions["portal.db"]["engine"].dispose()
