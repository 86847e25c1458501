"""Changing a patient's care team: assigning (with a second administrator's confirmation
when the first one brought the provider in), confirming or cancelling, unassigning."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, get_or_404, require
from portal.db import utcnow
from portal.models import (
    AuditAction,
    CareAssignment,
    CareAssignmentRequest,
    Entity,
    PatientProfile,
    ProviderProfile,
    User,
)
from portal.services import messaging
from portal.services.accounts.addresses import brought_in_by
from portal.services.accounts.users import AccountError, active_providers_stmt
from portal.services.care_team import assignment_current
from portal.services.errors import N_


@dataclass(frozen=True, slots=True)
class CareTeamScreen:
    """The read model of the administrator's care-team screen: a patient's current assignments
    (a deactivated provider's too, so it can be ended), who may join, and what waits."""

    patient: PatientProfile
    members: list[ProviderProfile]
    #: Active providers not on the team yet: the ones `assign_provider` accepts.
    candidates: list[ProviderProfile]
    #: The patient's sign-in, once they have activated it.
    account: User | None
    #: Assignments waiting for a second administrator's confirmation.
    pending: list[CareAssignmentRequest]


def care_team_screen(session: Session, actor: Actor, patient_id: int) -> CareTeamScreen:
    """The patient's current team and who may join it; 404 for a patient outside the scope."""
    require(actor, Permission.CARE_TEAMS_MANAGE)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    members = list(
        session.scalars(
            select(ProviderProfile)
            .join(CareAssignment, CareAssignment.provider_id == ProviderProfile.id)
            # Every current assignment, a deactivated provider's too: the administrator
            # manages the assignments, and must be able to end one (`care_team.members` is
            # who is on the team).
            .where(CareAssignment.patient_id == patient.id, assignment_current())
            .order_by(ProviderProfile.display_name)
        )
    )
    on_team = {p.id for p in members}
    active = session.scalars(active_providers_stmt().order_by(ProviderProfile.display_name))
    account = session.get(User, patient.user_id) if patient.user_id is not None else None
    pending = list(
        session.scalars(
            select(CareAssignmentRequest)
            .where(
                CareAssignmentRequest.patient_id == patient.id,
                CareAssignmentRequest.decided_at.is_(None),
            )
            .order_by(CareAssignmentRequest.id)
        )
    )
    waiting = {r.provider_id for r in pending}
    candidates = [p for p in active if p.id not in on_team and p.id not in waiting]
    return CareTeamScreen(patient, members, candidates, account, pending)


def _may_confirm(
    session: Session, actor: Actor, row: CareAssignmentRequest, provider: ProviderProfile
) -> bool:
    """A second person: not the one who asked, nor one who brought the provider in, nor one
    whose own account the asker brought in (an admin account they made for themselves)."""
    return not (
        row.requested_by_id == actor.user_id
        or brought_in_by(session, actor.user_id, provider.user_id)
        or brought_in_by(session, row.requested_by_id, actor.user_id)
    )


def assign_provider(
    session: Session, actor: Actor | None, *, patient_id: int, provider_id: int
) -> CareAssignment | CareAssignmentRequest:
    """Put a provider on a patient's care team (again, if they were on it before).

    Only an active provider joins a team: a deactivated account could not sign in to care.
    When the administrator brought that provider's account in (created, invited it or set its
    address), the assignment waits for another administrator (`confirm_assignment`): no one
    person alone makes an account and opens a patient's records to it.
    """
    if actor is not None:
        require(actor, Permission.CARE_TEAMS_MANAGE)
    provider = session.scalar(active_providers_stmt().where(ProviderProfile.id == provider_id))
    if provider is None:
        raise AccountError("provider_id", N_("Choose an active provider."))
    if actor is not None and brought_in_by(session, actor.user_id, provider.user_id):
        return _request_assignment(session, actor, patient_id, provider)
    return _assign(session, actor, patient_id=patient_id, provider_id=provider_id)


def _assign(
    session: Session, actor: Actor | None, *, patient_id: int, provider_id: int, **detail: object
) -> CareAssignment:
    row = session.scalar(
        select(CareAssignment).where(
            CareAssignment.patient_id == patient_id, CareAssignment.provider_id == provider_id
        )
    )
    if row is None:
        row = CareAssignment(patient_id=patient_id, provider_id=provider_id, started_at=utcnow())
        session.add(row)
    else:
        row.ended_at = None
        row.started_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.ASSIGN,
        Entity.CARE_ASSIGNMENT,
        row.id,
        patient_id=patient_id,
        detail={"provider_id": provider_id, **detail},
        by="operator",
    )
    returning = session.scalar(
        select(ProviderProfile.user_id).where(ProviderProfile.id == provider_id)
    )
    if returning is not None:
        # Back on the team: their threads about the patient are theirs again, as they left them.
        messaging.take_back(session, actor, patient_id=patient_id, user_id=returning)
    return row


def _request_assignment(
    session: Session, actor: Actor, patient_id: int, provider: ProviderProfile
) -> CareAssignmentRequest:
    waiting = session.scalar(
        select(CareAssignmentRequest).where(
            CareAssignmentRequest.patient_id == patient_id,
            CareAssignmentRequest.provider_id == provider.id,
            CareAssignmentRequest.decided_at.is_(None),
        )
    )
    if waiting is not None:
        return waiting
    row = CareAssignmentRequest(
        patient_id=patient_id, provider_id=provider.id, requested_by_id=actor.user_id
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.ASSIGN,
        Entity.CARE_ASSIGNMENT_REQUEST,
        row.id,
        patient_id=patient_id,
        detail={"provider_id": provider.id, "waits_for": "a second administrator"},
    )
    return row


def decide_assignment(
    session: Session, actor: Actor, *, patient_id: int, request_id: int, confirm: bool
) -> CareAssignment | None:
    """Confirm (a second person: `_may_confirm`) or cancel (anyone who manages care teams) a
    waiting assignment. The request is claimed by one statement, so two administrators
    deciding at once decide it once."""
    require(actor, Permission.CARE_TEAMS_MANAGE)
    row = session.scalar(
        select(CareAssignmentRequest).where(
            CareAssignmentRequest.id == request_id,
            CareAssignmentRequest.patient_id == patient_id,
            CareAssignmentRequest.decided_at.is_(None),
        )
    )
    if row is None:
        raise AccountError(None, N_("That assignment was already decided."))
    provider = session.scalar(active_providers_stmt().where(ProviderProfile.id == row.provider_id))
    if confirm and provider is None:
        raise AccountError(None, N_("That provider's account is no longer active."))
    if confirm and provider is not None and not _may_confirm(session, actor, row, provider):
        raise AccountError(
            None, N_("Another administrator must confirm this: you brought this account in.")
        )
    outcome = "confirmed" if confirm else "cancelled"
    claimed = session.execute(
        update(CareAssignmentRequest)
        .where(CareAssignmentRequest.id == row.id, CareAssignmentRequest.decided_at.is_(None))
        .values(decided_at=utcnow(), decided_by_id=actor.user_id, outcome=outcome)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise AccountError(None, N_("That assignment was already decided."))
    if not confirm:
        audit.record(
            session,
            actor,
            AuditAction.CANCEL,
            Entity.CARE_ASSIGNMENT_REQUEST,
            row.id,
            patient_id=patient_id,
            detail={"provider_id": row.provider_id},
        )
        session.flush()
        return None
    return _assign(
        session,
        actor,
        patient_id=patient_id,
        provider_id=row.provider_id,
        requested_by=row.requested_by_id,
        request_id=row.id,
    )


def unassign_provider(session: Session, actor: Actor, *, patient_id: int, provider_id: int) -> None:
    require(actor, Permission.CARE_TEAMS_MANAGE)
    row = session.scalar(
        select(CareAssignment).where(
            CareAssignment.patient_id == patient_id,
            CareAssignment.provider_id == provider_id,
            assignment_current(),
        )
    )
    if row is None:
        return
    row.ended_at = utcnow()
    audit.record(
        session,
        actor,
        AuditAction.UNASSIGN,
        Entity.CARE_ASSIGNMENT,
        row.id,
        patient_id=patient_id,
        detail={"provider_id": provider_id},
    )
    session.flush()
    leaving = session.scalar(
        select(ProviderProfile.user_id).where(ProviderProfile.id == provider_id)
    )
    if leaving is not None:
        # Their threads about this patient go to the rest of the team (or close): in the same
        # unit of work, so no moment exists when a message reaches nobody.
        messaging.hand_over(session, actor, patient_id=patient_id, leaving_user_id=leaving)
