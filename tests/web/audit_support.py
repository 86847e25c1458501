"""Shared by the audit web tests: find demo records and the entries a request wrote."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import RoleScope, reader
from portal.models import AuditEvent, Conversation, LabResult


def entries_for(session: Session, response) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    """The audit entries written while answering `response` (by its request id)."""
    request_id = response.headers["X-Request-ID"]
    assert request_id
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.request_id == request_id)
        .order_by(AuditEvent.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(stmt))


def a_result_of(session: Session, people, name: str) -> LabResult:  # type: ignore[no-untyped-def]
    """A lab result the patient `name` can see (read with that patient's own scope)."""
    patient = people.actor(name)
    stmt = select(LabResult).where(LabResult.patient_id == patient.patient_id)
    stmt = RoleScope(patient.role).scope(stmt.order_by(LabResult.id), LabResult)
    result = session.scalars(stmt, reader(patient)).first()
    assert result is not None
    return result


def a_conversation_of(session: Session, people, name: str) -> Conversation:  # type: ignore[no-untyped-def]
    patient = people.actor(name)
    stmt = select(Conversation).where(Conversation.patient_id == patient.patient_id)
    stmt = RoleScope(patient.role).scope(stmt.order_by(Conversation.id), Conversation)
    conversation = session.scalars(stmt, reader(patient)).first()
    assert conversation is not None
    return conversation
