"""Reading the audit log: the admin report (page, CSV, API) and a patient's own access log.

One query function per audience, so the admin page and its CSV export answer from the same
rules (and so will the JSON API). Lists are `paging.Page`s, a keyset on the entry id, newest
first: stable while new entries arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import LazyString, gettext, pgettext
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _p
from sqlalchemy import Integer, Select, String, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from portal.access import Actor, Permission, RoleScope, reader, require, scoped
from portal.db import UTCDateTime
from portal.models import (
    Attachment,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    Entity,
    LabResult,
    LabResultVersion,
    PatientProfile,
    ProviderProfile,
    Role,
    TreatmentPlan,
    TreatmentPlanVersion,
    User,
)
from portal.models.owned import PatientOwned
from portal.services import paging

AnySelect = Select[*tuple[Any, ...]]


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
    #: Who acted, by user id (None for the system); the API names people so.
    actor_id: int | None = None
    #: The entry's non-PHI context as its canonical JSON text (e.g. {"via": "token"}).
    detail: str = "{}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


#: The report's filters as bind parameters; which of them a statement has is its shape.
_PATIENT_ID = bindparam("patient_id", type_=Integer)
_NEEDLE = bindparam("needle", type_=String)
_LIKE = bindparam("like", type_=String)
_ACTOR_ID = bindparam("actor_id", type_=Integer)
_ACTOR_EMAIL = bindparam("actor_email", type_=String)
_ACTION = bindparam("action", type_=String)
_SINCE = bindparam("since", type_=UTCDateTime)
_UNTIL = bindparam("until", type_=UTCDateTime)


def _shape(filters: AuditFilters) -> tuple[bool, ...]:
    return (
        filters.patient_id is not None,
        bool(filters.patient),
        filters.actor_id is not None,
        bool(filters.actor_email),
        filters.action is not None,
        filters.date_from is not None,
        filters.date_to is not None,
    )


def _params(actor: Actor, filters: AuditFilters) -> dict[str, Any]:
    params = reader(actor)
    if filters.patient_id is not None:
        params["patient_id"] = filters.patient_id
    if filters.patient:
        needle = filters.patient.strip().lower()
        params["needle"] = needle
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["like"] = f"%{escaped}%"
    if filters.actor_id is not None:
        params["actor_id"] = filters.actor_id
    if filters.actor_email:
        params["actor_email"] = filters.actor_email.strip().lower()
    if filters.action is not None:
        params["action"] = str(filters.action)
    if filters.date_from is not None:
        params["since"] = _day_start(filters.date_from)
    if filters.date_to is not None:
        params["until"] = (
            # The last day there is: no next day to stop at (`date.max + 1 day` overflows).
            datetime.max.replace(tzinfo=UTC)
            if filters.date_to == date.max
            else _day_start(filters.date_to + timedelta(days=1))
        )
    return params


def _report(
    rs: RoleScope,
    by_patient_id: bool,
    by_patient: bool,
    by_actor_id: bool,
    by_actor_email: bool,
    by_action: bool,
    since: bool,
    until: bool,
) -> paging.KeysetStatements:
    """The report for one shape of filters, newest first."""
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
            AuditEvent.actor_id,
            AuditEvent.detail,
        )
        .outerjoin(actor_user, actor_user.id == AuditEvent.actor_id)
        .outerjoin(PatientProfile, PatientProfile.id == AuditEvent.patient_id)
    )
    if by_patient_id:
        stmt = stmt.where(AuditEvent.patient_id == _PATIENT_ID)
    if by_patient:
        matching = select(PatientProfile.id).where(
            or_(
                func.lower(PatientProfile.medical_record_number) == _NEEDLE,
                func.lower(PatientProfile.display_name).like(_LIKE, escape="\\"),
            )
        )
        stmt = stmt.where(AuditEvent.patient_id.in_(rs.patients(matching)))
    if by_actor_id:
        stmt = stmt.where(AuditEvent.actor_id == _ACTOR_ID)
    if by_actor_email:
        by_email = select(User.id).where(User.email == _ACTOR_EMAIL)
        stmt = stmt.where(AuditEvent.actor_id.in_(by_email))
    if by_action:
        stmt = stmt.where(AuditEvent.action == _ACTION)
    if since:
        stmt = stmt.where(AuditEvent.occurred_at >= _SINCE)
    if until:
        stmt = stmt.where(AuditEvent.occurred_at < _UNTIL)
    # The report names the patient concerned: demographics, which admins see of every patient
    # (for anyone else the scope would keep only their patients' entries).
    keyset = paging.Keyset("audit_events", ((AuditEvent.id, True),))
    return keyset.statements(rs.patients(stmt))


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
        actor_id=r[14],
        detail=r[15],
    )


def audit_events(
    session: Session,
    actor: Actor,
    filters: AuditFilters,
    cursor: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
) -> paging.Page[AuditRow]:
    """Entries matching `filters`, newest first, one page from `cursor`. Admins only (403)."""
    require(actor, Permission.AUDIT_READ)
    page = scoped(_report, actor, *_shape(filters)).page(
        session,
        _params(actor, filters),
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (row[0],),
    )
    return replace(page, rows=[_to_row(r) for r in page.rows])


def iter_audit_events(session: Session, actor: Actor, filters: AuditFilters) -> Iterator[AuditRow]:
    """Every matching entry, newest first, read a page at a time (for the CSV export)."""
    cursor: str | None = None
    while True:
        page = audit_events(session, actor, filters, cursor, paging.MAX_LIMIT)
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
        actor,
        AuditAction.EXPORT,
        Entity.AUDIT_LOG,
        patient_id=filters.patient_id,
        detail=filters.as_detail(),
    )


# --- A patient's access log ------------------------------------------------------------------

#: What a patient reads for each action: plain words, no internal names, in the reader's
#: language. Each takes the record as its object ("Viewed" + "a lab result"); the page joins
#: them with a pattern the translators may reorder (`_access_log.html`). A context of their
#: own: "Cancelled" here is a verb, elsewhere a status.
ACTION_WORDS: dict[AuditAction, LazyString] = {
    AuditAction.VIEW: _p("access log", "Viewed"),
    AuditAction.DOWNLOAD: _p("access log", "Downloaded"),
    AuditAction.CREATE: _p("access log", "Created"),
    AuditAction.UPDATE: _p("access log", "Changed"),
    AuditAction.PUBLISH: _p("access log", "Published"),
    AuditAction.CORRECT: _p("access log", "Corrected"),
    AuditAction.RELEASE: _p("access log", "Released"),
    AuditAction.REVIEW: _p("access log", "Reviewed"),
    AuditAction.ACKNOWLEDGE: _p("access log", "Acknowledged"),
    AuditAction.SEND: _p("access log", "Sent"),
    AuditAction.CANCEL: _p("access log", "Cancelled"),
    AuditAction.ACTIVATE: _p("access log", "Activated"),
    AuditAction.COMPLETE: _p("access log", "Completed"),
    AuditAction.ASSIGN: _p("access log", "Added a provider to"),
    AuditAction.UNASSIGN: _p("access log", "Removed a provider from"),
    AuditAction.DEACTIVATE: _p("access log", "Deactivated"),
    AuditAction.EXPORT: _p("access log", "Exported"),
    AuditAction.DELETE: _p("access log", "Deleted"),
    AuditAction.PASSWORD_CHANGE: _p("access log", "Changed the password of"),
}

#: What a patient reads for each kind of record.
ENTITY_WORDS: dict[str, LazyString] = {
    "dashboard": _l("your dashboard"),
    "patient_profile": _l("your profile"),
    "patient_list": _l("a patient list including you"),
    "lab_result": _l("a lab result"),
    "lab_result_version": _l("a lab result"),
    "lab_result_list": _l("your lab results"),
    "attachment": _l("an attachment"),
    "treatment_plan": _l("a treatment plan"),
    "treatment_plan_version": _l("a treatment plan"),
    "treatment_plan_list": _l("your treatment plans"),
    "conversation": _l("a message thread"),
    "conversation_list": _l("your messages"),
    "message": _l("a message"),
    "appointment": _l("an appointment"),
    "appointment_list": _l("your appointments"),
    "care_assignment": _l("your care team"),
    "care_team": _l("your care team"),
    "proxy_grant": _l("who can see your record"),
    "user_account": _l("your account"),
    "user_account.email": _l("your account's email address"),
    "patient_profile.contact_email": _l("your contact email address"),
    "care_assignment_request": _l("your care team (waiting for a second administrator)"),
    "activation_code": _l("an activation code for your account"),
    "password_reset": _l("a link to set a new password"),
    "sign_in_throttle": _l("your account's sign-in pause"),
    "user_session": _l("your signed-in devices"),
    "patient_record": _l("your record"),
    "notification": _l("a notification about your records"),
}

ROLE_WORDS = {"provider": _l("Provider"), "admin": _l("Administrator"), "patient": _l("You")}
#: Another patient's account acting on this record: only a proxy grant lets one.
PROXY_WORD = _l("Proxy")

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
    #: Someone acting for the patient under a proxy grant (a parent, a caregiver).
    proxy: bool = False


def _staff_name(role: str | None, provider_name: str | None) -> str:
    if provider_name:
        return provider_name
    if role == Role.ADMIN:
        return gettext("Portal administrator")
    return gettext("Portal staff")


#: Entries about these kinds of record name one the patient may not see (a draft plan, a held
#: or provider-only result, its attachment): the log lists them only once the patient can.
_HIDEABLE: dict[str, type[PatientOwned]] = {
    "lab_result": LabResult,
    "lab_result_version": LabResultVersion,
    "treatment_plan": TreatmentPlan,
    "treatment_plan_version": TreatmentPlanVersion,
    "attachment": Attachment,
}


def _access_log(rs: RoleScope) -> paging.KeysetStatements:
    """Other people's successful actions on the reader's own patient record, newest first,
    about records the reader may see (scoped in the statement: nothing is filtered after)."""
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.occurred_at,
            AuditEvent.actor_role,
            AuditEvent.action,
            AuditEvent.entity_type,
            ProviderProfile.display_name,
            PatientProfile.display_name.label("proxy_name"),
        )
        .outerjoin(ProviderProfile, ProviderProfile.user_id == AuditEvent.actor_id)
        # Another patient's account here acted under a proxy grant: named, as a proxy.
        .outerjoin(PatientProfile, PatientProfile.user_id == AuditEvent.actor_id)
        .where(
            AuditEvent.patient_id == rs.patient_id,
            AuditEvent.actor_id.is_not(None),
            AuditEvent.actor_id != rs.user_id,
            AuditEvent.outcome == AuditOutcome.SUCCESS,
            AuditEvent.action.not_in(_NOT_RECORD_ACCESS),
        )
    )
    stmt = rs.naming_visible(stmt, AuditEvent.entity_type, AuditEvent.entity_id, _HIDEABLE)
    return paging.Keyset("access_log", ((AuditEvent.id, True),)).statements(stmt)


def access_log_for_patient(
    session: Session, actor: Actor, limit: int | None = 20, cursor: str | None = None
) -> paging.Page[AccessLogEntry]:
    """Staff and administrators who viewed or changed the actor's records, newest first.

    Only entries about the actor's own patient record, only other people's actions (the
    patient's own are theirs to know already), and only names, roles, actions and times:
    no internal ids, addresses or other patients.
    """
    require(actor, Permission.READ_OWN_RECORDS)
    page = scoped(_access_log, actor).page(
        session, reader(actor), cursor=cursor, limit=paging.clamp(limit), key_of=lambda r: (r[0],)
    )
    return replace(page, rows=[_access_log_entry(r) for r in page.rows])


def _access_log_entry(r: Any) -> AccessLogEntry:
    """One row in words, in the reader's language now (the API's stays English)."""
    if r.actor_role == Role.PATIENT:  # another patient's account: a proxy, by name
        who, role, proxy = r.proxy_name, str(PROXY_WORD), True
    else:
        who = _staff_name(r.actor_role, r.display_name)
        role, proxy = str(ROLE_WORDS.get(r.actor_role or "") or gettext("Staff")), False
    return AccessLogEntry(
        occurred_at=r.occurred_at,
        who=who,
        role=role,
        action=str(ACTION_WORDS.get(r.action) or pgettext("access log", "Changed")),
        record=str(ENTITY_WORDS.get(r.entity_type) or gettext("your records")),
        proxy=proxy,
    )
