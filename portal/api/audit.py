"""The audit log (docs/api.md): the administrators' report and a patient's own access log.

Both answer from `portal.audit.report`, the same functions as the admin page, its CSV export
and the patient's profile page; who may read which is theirs to decide (403 otherwise).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.api import bp
from portal.api.operations import operation
from portal.api.schemas import Instant, PageOut, PageQuery, RecordId, Schema, with_example
from portal.audit import audited, report
from portal.models import AuditAction, AuditOutcome, Entity

TAG = "Audit"


class AuditEventOut(Schema):
    """One entry of the append-only log. Entries never change: `createdAt`, `updatedAt` and
    `occurredAt` are the same moment."""

    model_config = with_example(
        {
            "id": 120431,
            "createdAt": "2026-11-03T11:06:12Z",
            "updatedAt": "2026-11-03T11:06:12Z",
            "occurredAt": "2026-11-03T11:06:12Z",
            "actorId": 2,
            "actorEmail": "dr.chen@example.org",
            "actorRole": "provider",
            "action": "view",
            "entityType": "lab_result",
            "entityId": "4815",
            "patientId": 5,
            "patientName": "Sam Example",
            "patientMrn": "EX-000042",
            "outcome": "success",
            "requestId": "5f0c2a9e8b7d4c1fa3e6b2d9c8a7f410",
            # A documentation address (RFC 5737), not anyone's.
            "clientAddr": "203.0.113.24",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
            "metadata": {"channel": "api", "via": "token"},
            "summary": "dr.chen@example.org (provider) view lab_result 4815",
        }
    )

    id: int
    created_at: Instant
    updated_at: Instant
    occurred_at: Instant
    #: Who acted, by user id (null for the system).
    actor_id: int | None
    actor_email: str | None
    actor_role: str | None
    action: AuditAction
    entity_type: str
    entity_id: str | None
    #: The patient concerned (PatientProfile id), with their name and MRN.
    patient_id: int | None
    patient_name: str | None
    patient_mrn: str | None
    outcome: AuditOutcome
    request_id: str | None
    client_addr: str | None
    user_agent: str | None
    #: Non-PHI context: `via` (session or token), `channel` (page or api), versions, reasons.
    metadata: dict[str, Any]
    #: The entry in one line, as the seed's `summary`: who (email and role, or "system"),
    #: the action, what it was about, and the outcome when it was not a success. Ids only:
    #: never a patient's name or a record's content.
    summary: str = ""


class AuditEventsQuery(PageQuery):
    """Filters; `from` and `to` are UTC dates, both included."""

    actor_id: RecordId | None = None
    patient_id: RecordId | None = None
    action: AuditAction | None = None
    since: date | None = Field(default=None, alias="from")
    until: date | None = Field(default=None, alias="to")


class AccessLogOut(Schema):
    """Who viewed or changed the caller's records, in plain words (no internal ids)."""

    model_config = with_example(
        {
            "occurredAt": "2026-11-03T11:06:12Z",
            "who": "Dr Mei Chen",
            "role": "Provider",
            "action": "Viewed",
            "record": "a lab result",
            "proxy": False,
        }
    )

    occurred_at: Instant
    who: str
    role: str
    action: str
    record: str
    #: Someone acting for the caller under a proxy grant.
    proxy: bool


def _event(row: report.AuditRow) -> AuditEventOut:
    return AuditEventOut(
        id=row.id,
        created_at=row.occurred_at,
        updated_at=row.occurred_at,
        occurred_at=row.occurred_at,
        actor_id=row.actor_id,
        actor_email=row.actor_email,
        actor_role=row.actor_role,
        action=AuditAction(row.action),
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        patient_id=row.patient_id,
        patient_name=row.patient_name,
        patient_mrn=row.patient_mrn,
        outcome=AuditOutcome(row.outcome),
        request_id=row.request_id,
        client_addr=row.client_addr,
        user_agent=row.user_agent,
        metadata=json.loads(row.detail),
        summary=_summary(row),
    )


def _summary(row: report.AuditRow) -> str:
    who = f"{row.actor_email} ({row.actor_role})" if row.actor_email else "system"
    about = " ".join(p for p in (row.entity_type, row.entity_id) if p)
    line = f"{who} {row.action} {about}".strip()
    return line if row.outcome == AuditOutcome.SUCCESS else f"{line}: {row.outcome}"


@operation(
    bp,
    "GET",
    "/audit-events",
    summary="Audit entries",
    tag=TAG,
    query=AuditEventsQuery,
    response=PageOut[AuditEventOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.AUDIT_LOG)
def list_audit_events(
    session: Session, actor: Actor, *, query: AuditEventsQuery
) -> PageOut[AuditEventOut]:
    """Entries matching every filter given, newest first. Administrators only."""
    filters = report.AuditFilters(
        actor_id=query.actor_id,
        patient_id=query.patient_id,
        action=query.action,
        date_from=query.since,
        date_to=query.until,
    )
    page = report.audit_events(session, actor, filters, cursor=query.cursor, limit=query.limit)
    return PageOut[AuditEventOut](
        items=[_event(r) for r in page.rows], next_cursor=page.next_cursor
    )


@operation(
    bp,
    "GET",
    "/me/access-log",
    summary="Who viewed or changed my records",
    tag=TAG,
    query=PageQuery,
    response=PageOut[AccessLogOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE)
def my_access_log(session: Session, actor: Actor, *, query: PageQuery) -> PageOut[AccessLogOut]:
    """Staff and administrators who viewed or changed the caller's records, newest first (the
    caller's own actions are not listed). Patients only."""
    page = report.access_log_for_patient(session, actor, limit=query.limit, cursor=query.cursor)
    return PageOut[AccessLogOut](
        items=[AccessLogOut.model_validate(e) for e in page.rows], next_cursor=page.next_cursor
    )
