"""Proxy access: grants to open another patient's record, the records a person may open, and
opening one (an `Actor` acting for that patient, narrowed by the grant: `access`).

A patient grants access to their own record; a grant's holder may end it too. The rules of
what a grant lets its holder see and do are `access.py`'s (`delegation_for`, `Narrowing`),
decided again at every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit
from portal.access import (
    Actor,
    Permission,
    RoleScope,
    acting_for,
    delegation_for,
    get_or_404,
    reader,
    require,
    scoped,
)
from portal.actor import Delegation
from portal.db import utcnow
from portal.models import (
    AuditAction,
    Entity,
    PatientProfile,
    ProxyGrant,
    ProxyRelationship,
    ProxyScope,
    User,
)
from portal.services.accounts.addresses import brought_in_by
from portal.services.errors import ServiceError

#: How long a grant lasts unless its maker says otherwise, and at most (NHS England's proxy
#: service records a period; one year in its example).
DEFAULT_LENGTH = timedelta(days=365)
LONGEST = timedelta(days=2 * 365)


class ProxyError(ServiceError):
    """A grant that cannot be made or ended as asked."""


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """A record the reader may open for someone else, now."""

    patient_id: int
    display_name: str
    relationship: ProxyRelationship
    delegation: Delegation


def _held(rs: RoleScope) -> Select[ProxyGrant, PatientProfile]:
    stmt = select(ProxyGrant, PatientProfile).join(
        PatientProfile, PatientProfile.id == ProxyGrant.patient_id
    )
    return rs.held(stmt.order_by(PatientProfile.display_name, ProxyGrant.id))


def held_records(session: Session, actor: Actor) -> list[HeldRecord]:
    """The records `actor` may open for someone else now (grants not begun, ended, expired or
    outgrown are left out), by the patient's name."""
    now = utcnow()
    found: list[HeldRecord] = []
    for grant, patient in session.execute(scoped(_held, actor), reader(actor)):
        delegation = delegation_for(grant, patient.date_of_birth, patient.user_id, now)
        if delegation is not None and all(h.patient_id != patient.id for h in found):
            found.append(
                HeldRecord(patient.id, patient.display_name, grant.relationship, delegation)
            )
    return found


def held_record(session: Session, actor: Actor, patient_id: int) -> HeldRecord:
    """The record of patient `patient_id` that `actor` may open now; 404 when they hold no
    grant in force for it (as for anything not theirs)."""
    for held in held_records(session, actor):
        if held.patient_id == patient_id:
            return held
    raise NotFound()


def open_record(session: Session, actor: Actor, patient_id: int) -> Actor:
    """`actor` acting for patient `patient_id` under a grant in force now (404 without one)."""
    return acting_for(actor, held_record(session, actor, patient_id).delegation)


def _mine(rs: RoleScope) -> Select[ProxyGrant, User]:
    stmt = select(ProxyGrant, User).join(User, User.id == ProxyGrant.proxy_user_id)
    return rs.scope(stmt.where(ProxyGrant.ended_at.is_(None)).order_by(ProxyGrant.id), ProxyGrant)


def grants_on_my_record(session: Session, actor: Actor) -> list[tuple[ProxyGrant, User]]:
    """Who may open the actor's own record ("Who can see my record"), with each grant; a
    teenager sees the grants their parents hold too."""
    require(actor, Permission.READ_OWN_RECORDS)
    return [(grant, user) for grant, user in session.execute(scoped(_mine, actor), reader(actor))]


def grant(
    session: Session,
    actor: Actor,
    proxy: User,
    relationship: ProxyRelationship,
    scopes: frozenset[ProxyScope],
    *,
    ends_at: datetime | None = None,
    legal_basis: str = "the patient's own choice",
) -> ProxyGrant:
    """The actor lets `proxy` open their own record within `scopes` until `ends_at` (a year
    from now unless said; two at most)."""
    require(actor, Permission.SHARE_OWN_RECORD)  # the patient themself, at the sign-in page
    assert actor.patient_id is not None  # every patient account has its profile
    ends_at = ends_at or utcnow() + DEFAULT_LENGTH
    return _made(
        session, actor, actor.patient_id, proxy, relationship, scopes, legal_basis, ends_at
    )


def record_grant(
    session: Session,
    actor: Actor,
    patient_id: int,
    proxy: User,
    relationship: ProxyRelationship,
    scopes: frozenset[ProxyScope],
    *,
    legal_basis: str,
    ends_at: datetime,
) -> ProxyGrant:
    """An administrator records a grant the patient could not make themself (a parent's or a
    guardian's for a child), with its legal basis. No one person alone: an administrator who
    brought the proxy's account in (created, invited or re-addressed it) may not open a
    record to it; another administrator must."""
    require(actor, Permission.CARE_TEAMS_MANAGE)
    if not legal_basis.strip():
        raise ProxyError("legal_basis", "Say on what basis this person may act for the patient.")
    if brought_in_by(session, actor.user_id, proxy.id):
        raise ProxyError(
            None, "You brought this account into the portal: another administrator records this."
        )
    get_or_404(session, PatientProfile, patient_id, actor)
    return _made(session, actor, patient_id, proxy, relationship, scopes, legal_basis, ends_at)


def _made(
    session: Session,
    actor: Actor,
    patient_id: int,
    proxy: User,
    relationship: ProxyRelationship,
    scopes: frozenset[ProxyScope],
    legal_basis: str,
    ends_at: datetime,
) -> ProxyGrant:
    """The grant, checked (someone else, something to open, an end within two years), and its
    audit entry."""
    if proxy.patient is not None and proxy.patient.id == patient_id:
        raise ProxyError("email", "You already see your own record.")
    if not scopes:
        raise ProxyError("scopes", "Choose at least one part of the record to share.")
    now = utcnow()
    if not now < ends_at <= now + LONGEST:
        raise ProxyError("ends_at", "Choose an end date within the next two years.")
    row = ProxyGrant(
        patient_id=patient_id,
        proxy_user_id=proxy.id,
        relationship=relationship,
        legal_basis=legal_basis.strip()[:200],
        scopes=" ".join(sorted(scopes)),
        starts_at=now,
        ends_at=ends_at,
        granted_by_id=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.CREATE,
        Entity.PROXY_GRANT,
        row.id,
        patient_id=patient_id,
        detail={"proxy_user_id": proxy.id, "scopes": sorted(scopes), "basis": row.legal_basis},
    )
    return row


def _one(rs: RoleScope) -> Select[ProxyGrant]:
    by_id = select(ProxyGrant).where(ProxyGrant.id == bindparam("grant_id", type_=Integer))
    return rs.scope(by_id, ProxyGrant)


def _one_held(rs: RoleScope) -> Select[ProxyGrant]:
    return rs.held(select(ProxyGrant).where(ProxyGrant.id == bindparam("grant_id", type_=Integer)))


def end(session: Session, actor: Actor, grant_id: int, reason: str) -> ProxyGrant:
    """End a grant now: the patient on their own record, or its holder giving it up. 404
    for anyone else's; effective at the holder's next request on every door."""
    if actor.acting_for is not None:
        raise NotFound()
    params = reader(actor, grant_id=grant_id)
    row = session.scalar(scoped(_one, actor), params) or session.scalar(
        scoped(_one_held, actor), params
    )
    if row is None or row.ended_at is not None:
        raise NotFound()
    row.ended_at = utcnow()
    row.ended_by_id = actor.user_id
    row.end_reason = reason[:200] or None
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.DELETE,
        Entity.PROXY_GRANT,
        row.id,
        patient_id=row.patient_id,
        detail={"reason": row.end_reason},
    )
    return row


__all__ = [
    "DEFAULT_LENGTH",
    "LONGEST",
    "HeldRecord",
    "ProxyError",
    "end",
    "grant",
    "grants_on_my_record",
    "held_record",
    "held_records",
    "open_record",
    "record_grant",
]
