"""Audit entries are append-only: the ORM refuses changes, and so does the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal import audit
from portal.audit import AuditLogImmutableError, chain
from portal.models import AuditAction, AuditEvent, Entity
from portal.models.owned import ImmutableRowError


@pytest.fixture
def entry(session: Session) -> AuditEvent:
    made = audit.record(session, None, AuditAction.EXPORT, Entity.AUDIT_LOG, by="admin")
    session.commit()
    return made


def test_changing_an_entry_through_the_orm_is_refused(session: Session, entry: AuditEvent) -> None:
    entry.entity_id = "forged"
    with pytest.raises(AuditLogImmutableError, match="append-only"):
        session.flush()
    session.rollback()


def test_deleting_an_entry_through_the_orm_is_refused(session: Session, entry: AuditEvent) -> None:
    session.delete(entry)
    with pytest.raises(ImmutableRowError, match="append-only"):
        session.flush()
    session.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEvent).values(entity_id="forged"),
        delete(AuditEvent),
    ],
    ids=["bulk update", "bulk delete"],
)
def test_bulk_orm_changes_to_entries_are_refused(
    session: Session, entry: AuditEvent, statement: object
) -> None:
    with pytest.raises(AuditLogImmutableError):
        session.execute(statement.where(AuditEvent.id == entry.id))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET entity_id = 'forged' WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
    ],
    ids=["UPDATE", "DELETE"],
)
def test_the_database_refuses_raw_sql_changes_to_entries(
    session: Session, entry: AuditEvent, sql: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text(sql), {"id": entry.id})
    still = session.execute(
        select(AuditEvent.entity_id, AuditEvent.hash).where(AuditEvent.id == entry.id)
    ).one()
    assert tuple(still) == (entry.entity_id, entry.hash)


def test_postgresql_refuses_truncating_the_log(session: Session, entry: AuditEvent) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite has no such statement")
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("TRUNCATE audit_event"))


def test_an_insert_and_select_only_role_can_append_but_not_alter(
    session: Session, entry: AuditEvent
) -> None:
    """The GRANTs in docs/operations.md ("Audit log privileges"), tried on a throwaway role."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("roles and privileges are PostgreSQL's")
    # Arrange: the role exists only inside the test's transaction.
    for statement in (
        "CREATE ROLE portal_app_probe NOLOGIN",
        "GRANT USAGE ON SCHEMA public TO portal_app_probe",
        "GRANT SELECT, INSERT ON audit_event TO portal_app_probe",
        "GRANT UPDATE (seq, prev_hash, hash, key_id) ON audit_event TO portal_app_probe",
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO portal_app_probe",
        "GRANT SELECT ON user_account, patient_profile, audit_chain_start TO portal_app_probe",
        "SET LOCAL ROLE portal_app_probe",
    ):
        # On the connection: DDL naming patient_profile is no read of it (the ORM guard would
        # judge the text as one).
        session.connection().execute(text(statement))
    # Act / Assert: appending and sealing work ...
    with session.begin_nested():
        audit.record(session, None, AuditAction.EXPORT, Entity.AUDIT_LOG, by="admin")
        chain.seal(session)
    # ... changing, removing or lifting the triggers does not.
    for sql in (
        "UPDATE audit_event SET entity_id = 'forged' WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
        "ALTER TABLE audit_event DISABLE TRIGGER USER",
    ):
        with (
            pytest.raises(DBAPIError, match="permission denied|must be owner"),
            session.begin_nested(),
        ):
            session.execute(text(sql), {"id": entry.id})
    session.execute(text("RESET ROLE"))
