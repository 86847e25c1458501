"""Reading the audit log: the admin report (page, CSV, API) and a patient's own access log.

One query function per audience, so the admin page, its CSV export and the JSON API
(`GET /api/v1/audit-events`, `GET /api/v1/me/access-log`) answer from the same rules.
Pagination is a keyset on the entry id, newest first: stable while new entries arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from portal.access import Actor, Permission, require, scope_patients
from portal.models import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    PatientProfile,
    ProviderProfile,
    Role,
    User,
)

T = TypeVar("T")
AnySelect = Select[*tuple[Any, ...]]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class InvalidCursor(ValueError):
    """A cursor that this module did not hand out."""


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What the admin asked to see. Empty fields do not filter."""

    #: An MRN (exact) or part of a patient's name.
    patient: str | None = None
    patient_id: int | None = None
    #: The actor's email (exact, case-insensitive).
    actor_email: str | None = None
    actor_id: int | None = None
    action: AuditAction | None = None
    #: Inclusive UTC dates.
    date_from: date | None = None
    date_to: date | None = None

    def as_detail(self) -> dict[str, Any]:
        """Which filters were used, for the export's own audit entry: names, never search text."""
        return {
            "filters": sorted(
                name
                for name in (
                    "patient",
                    "patient_id",
                    "actor_email",
                    "actor_id",
                    "action",
                    "date_from",
                    "date_to",
                )
                if getattr(self, name) not in (None, "")
            )
        }


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One entry as the admin report shows it."""

    id: int
    occurred_at: datetime
    actor_email: str | None
    actor_role: str | None
    action: str
    entity_type: str
    entity_id: str | None
    patient_id: int | None
    patient_name: str | None
    patient_mrn: str | None
    outcome: str
    request_id: str | None
    client_addr: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T] = field(default_factory=list)
    next_cursor: str | None = None


#: An entry id as this module hands it out: ASCII digits (`int()` also reads "٣" or " 3 "),
#: and short enough to bind as a 64-bit integer.
_CURSOR = re.compile(r"[0-9]{1,18}")


def _cursor_id(cursor: str | None) -> int | None:
    """The entry id a cursor names; `InvalidCursor` for anything this module did not hand out."""
    if not cursor:
        return None
    if not _CURSOR.fullmatch(cursor) or int(cursor) <= 0:
        raise InvalidCursor(cursor)
    return int(cursor)


def _clamp(limit: int | None) -> int:
    return max(1, min(MAX_LIMIT, limit or DEFAULT_LIMIT))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _filtered(stmt: AnySelect, actor: Actor, filters: AuditFilters) -> AnySelect:
    if filters.patient_id is not None:
        stmt = stmt.where(AuditEvent.patient_id == filters.patient_id)
    if filters.patient:
        needle = filters.patient.strip().lower()
        like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        patients = scope_patients(
            select(PatientProfile.id).where(
                or_(
                    func.lower(PatientProfile.medical_record_number) == needle,
                    func.lower(PatientProfile.display_name).like(like, escape="\\"),
                )
            ),
            actor,
        )
        stmt = stmt.where(AuditEvent.patient_id.in_(patients))
    if filters.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
    if filters.actor_email:
        by_email = select(User.id).where(User.email == filters.actor_email.strip().lower())
        stmt = stmt.where(AuditEvent.actor_id.in_(by_email))
    if filters.action is not None:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.date_from is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= _day_start(filters.date_from))
    if filters.date_to is not None:
        stmt = stmt.where(AuditEvent.occurred_at < _day_start(filters.date_to + timedelta(days=1)))
    return stmt


def _report_select(actor: Actor) -> AnySelect:
    actor_user = aliased(User)
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.occurred_at,
            actor_user.email,
            AuditEvent.actor_role,
            AuditEvent.action,
            AuditEvent.entity_type,
            AuditEvent.entity_id,
            AuditEvent.patient_id,
            PatientProfile.display_name,
            PatientProfile.medical_record_number,
            AuditEvent.outcome,
            AuditEvent.request_id,
            AuditEvent.client_addr,
            AuditEvent.user_agent,
        )
        .outerjoin(actor_user, actor_user.id == AuditEvent.actor_id)
        .outerjoin(PatientProfile, PatientProfile.id == AuditEvent.patient_id)
    )
    # The report names the patient concerned: demographics, which admins see of every patient
    # (for anyone else the scope would keep only their patients' entries).
    return scope_patients(stmt, actor)


def _to_row(r: Any) -> AuditRow:
    return AuditRow(
        id=r[0],
        occurred_at=r[1],
        actor_email=r[2],
        actor_role=r[3],
        action=str(r[4]),
        entity_type=r[5],
        entity_id=r[6],
        patient_id=r[7],
        patient_name=r[8],
        patient_mrn=r[9],
        outcome=str(r[10]),
        request_id=r[11],
        client_addr=r[12],
        user_agent=r[13],
    )


def audit_events(
    session: Session,
    actor: Actor,
    filters: AuditFilters,
    cursor: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
) -> Page[AuditRow]:
    """Entries matching `filters`, newest first, one page after `cursor`. Admins only (403)."""
    require(actor, Permission.AUDIT_READ)
    size = _clamp(limit)
    stmt = _filtered(_report_select(actor), actor, filters)
    after = _cursor_id(cursor)
    if after is not None:
        stmt = stmt.where(AuditEvent.id < after)
    rows = [
        _to_row(r) for r in session.execute(stmt.order_by(AuditEvent.id.desc()).limit(size + 1))
    ]
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows=rows, next_cursor=str(rows[-1].id) if more and rows else None)


def iter_audit_events(
    session: Session, actor: Actor, filters: AuditFilters, batch: int = MAX_LIMIT
) -> Iterator[AuditRow]:
    """Every matching entry, newest first, read a page at a time (for the CSV export)."""
    cursor: str | None = None
    while True:
        page = audit_events(session, actor, filters, cursor, batch)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def record_export(session: Session, actor: Actor, filters: AuditFilters) -> None:
    """Record that `actor` exported the audit log (which filters, not their values)."""
    from portal import audit

    require(actor, Permission.AUDIT_READ)
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=str(actor.role),
        action=AuditAction.EXPORT,
        entity_type="audit_log",
        patient_id=filters.patient_id,
        detail=filters.as_detail(),
    )


# --- A patient's access log ------------------------------------------------------------------

#: What a patient reads for each action: plain words, no internal names.
ACTION_WORDS: dict[AuditAction, str] = {
    AuditAction.VIEW: "Viewed",
    AuditAction.DOWNLOAD: "Downloaded",
    AuditAction.CREATE: "Created",
    AuditAction.UPDATE: "Changed",
    AuditAction.PUBLISH: "Published",
    AuditAction.CORRECT: "Corrected",
    AuditAction.RELEASE: "Released",
    AuditAction.REVIEW: "Reviewed",
    AuditAction.ACKNOWLEDGE: "Acknowledged",
    AuditAction.SEND: "Sent",
    AuditAction.CANCEL: "Cancelled",
    AuditAction.ACTIVATE: "Activated",
    AuditAction.COMPLETE: "Completed",
    AuditAction.ASSIGN: "Assigned to your care team",
    AuditAction.UNASSIGN: "Removed from your care team",
    AuditAction.DEACTIVATE: "Deactivated",
    AuditAction.EXPORT: "Exported",
    AuditAction.PASSWORD_CHANGE: "Changed the password",
}

#: What a patient reads for each kind of record.
ENTITY_WORDS: dict[str, str] = {
    "dashboard": "your dashboard",
    "patient_profile": "your profile",
    "patient_list": "a patient list including you",
    "lab_result": "a lab result",
    "lab_result_version": "a lab result",
    "lab_result_list": "your lab results",
    "attachment": "an attachment",
    "treatment_plan": "a treatment plan",
    "treatment_plan_version": "a treatment plan",
    "treatment_plan_list": "your treatment plans",
    "conversation": "a message thread",
    "conversation_list": "your messages",
    "message": "a message",
    "appointment": "an appointment",
    "appointment_list": "your appointments",
    "care_assignment": "your care team",
    "care_team": "your care team",
    "user_account": "your account",
}

ROLE_WORDS = {"provider": "Provider", "admin": "Administrator", "patient": "You"}

# Sign-ins, sign-outs and refused attempts are about the account, not about records.
_NOT_RECORD_ACCESS = (
    AuditAction.SIGN_IN,
    AuditAction.SIGN_IN_FAILED,
    AuditAction.SIGN_OUT,
    AuditAction.ACCESS_DENIED,
)


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    """One line of "who viewed or changed my records", in words a patient reads."""

    occurred_at: datetime
    who: str
    role: str
    action: str
    record: str


def _staff_name(role: str | None, provider_name: str | None) -> str:
    if provider_name:
        return provider_name
    if role == Role.ADMIN:
        return "Portal administrator"
    return "Portal staff"


def access_log_for_patient(
    session: Session, actor: Actor, limit: int | None = 20, cursor: str | None = None
) -> Page[AccessLogEntry]:
    """Staff and administrators who viewed or changed the actor's records, newest first.

    Only entries about the actor's own patient record, only other people's actions (the
    patient's own are theirs to know already), and only names, roles, actions and times:
    no internal ids, addresses or other patients. `next_cursor` is opaque.
    """
    require(actor, Permission.READ_OWN_RECORDS)
    size = _clamp(limit)
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.occurred_at,
            AuditEvent.actor_role,
            AuditEvent.action,
            AuditEvent.entity_type,
            ProviderProfile.display_name,
        )
        .outerjoin(ProviderProfile, ProviderProfile.user_id == AuditEvent.actor_id)
        .where(
            AuditEvent.patient_id == actor.patient_id,
            AuditEvent.actor_id.is_not(None),
            AuditEvent.actor_id != actor.user_id,
            AuditEvent.outcome == AuditOutcome.SUCCESS,
            AuditEvent.action.not_in(_NOT_RECORD_ACCESS),
        )
    )
    after = _cursor_id(cursor)
    if after is not None:
        stmt = stmt.where(AuditEvent.id < after)
    found = session.execute(stmt.order_by(AuditEvent.id.desc()).limit(size + 1)).all()
    more = len(found) > size
    found = found[:size]
    entries = [
        AccessLogEntry(
            occurred_at=r.occurred_at,
            who=_staff_name(r.actor_role, r.display_name),
            role=ROLE_WORDS.get(r.actor_role or "", "Staff"),
            action=ACTION_WORDS.get(r.action, str(r.action).replace("_", " ").capitalize()),
            record=ENTITY_WORDS.get(r.entity_type, "your records"),
        )
        for r in found
    ]
    return Page(rows=entries, next_cursor=str(found[-1].id) if more and found else None)


def access_log_context(session: Session, actor: Actor) -> dict[str, Any]:
    """What `templates/patient/_access_log.html` needs, for the profile view to pass on."""
    return {"access_log": access_log_for_patient(session, actor)}
