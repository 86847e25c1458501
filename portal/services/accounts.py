"""Accounts: patients, providers and admins, activation codes, invitations, care teams."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.orm import Session

from portal import audit
from portal.access import (
    MAX_ID,
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    scoped,
    unscoped,
)
from portal.auth.passwords import hash_password, password_problems, verify_password
from portal.db import utcnow
from portal.models import (
    ActivationCode,
    AuditAction,
    AuditOutcome,
    CareAssignment,
    Invitation,
    PatientProfile,
    ProviderProfile,
    Role,
    User,
)
from portal.services import messaging, sessions, throttle, two_factor
from portal.services.errors import ServiceError

ACTIVATION_VALIDITY = timedelta(days=14)
INVITATION_VALIDITY = timedelta(days=7)


class AccountError(ServiceError):
    """Input that cannot make a valid account."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


FAILED_SIGN_IN = "That email and password do not match an active account."


@dataclass(frozen=True, slots=True)
class SignIn:
    """What an attempt to sign in came to: the account, or the message to show instead (and,
    when sign-in is paused, how many seconds to wait: the page and the API answer 429)."""

    user: User | None
    refusal: str | None = None
    retry_after: int | None = None
    #: The password was right and the account uses two-step sign-in: a code must follow.
    needs_code: bool = False


def _record_failed_sign_in(session: Session, user: User | None, reason: str) -> None:
    audit.record(
        session,
        actor_id=user.id if user else None,
        actor_role=str(user.role) if user else None,
        action=AuditAction.SIGN_IN_FAILED,
        entity_type="user_account",
        entity_id=user.id if user else None,
        outcome=AuditOutcome.DENIED,
        detail={"reason": reason},
    )
    session.flush()


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    limits: throttle.Limits,
    client_address: str | None = None,
) -> SignIn:
    """The active account these credentials open, or a refusal that never says which part was
    wrong, nor whether the address has an account. Failures count per email address and per
    client address (`throttle`); past a limit the attempt is answered with a pause, without
    looking at the password, the same for every address. Upgrades an outdated hash and
    records the attempt; it raises nothing, so the caller commits a failure as surely as a
    success.
    """
    now = utcnow()
    keys = throttle.keys_for(email, client_address, limits)
    wait = throttle.wait_seconds(session, keys, now)
    if wait is not None:
        _record_failed_sign_in(session, None, "paused")
        return SignIn(None, throttle.paused_message(wait), wait)
    user = find_user_by_email(session, email)
    ok, new_hash = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        throttle.count_failure(session, keys, limits, now)
        _record_failed_sign_in(session, user, "credentials")
        return SignIn(None, FAILED_SIGN_IN)
    if new_hash:
        user.password_hash = new_hash
    if two_factor.is_on(user):
        session.flush()
        return SignIn(user, needs_code=True)
    return _signed_in(session, user, email, now, factor=None)


def authenticate_code(
    session: Session,
    *,
    user_id: int,
    code: str,
    limits: throttle.Limits,
    client_address: str | None = None,
) -> SignIn:
    """The second step for an account whose password was just accepted: a code from its app
    or a recovery code. A wrong code counts toward the same pauses as a wrong password."""
    user = session.get(User, user_id)
    if user is None or not user.is_active or not two_factor.is_on(user):
        return SignIn(None, FAILED_SIGN_IN)
    now = utcnow()
    keys = throttle.keys_for(user.email, client_address, limits)
    wait = throttle.wait_seconds(session, keys, now)
    if wait is not None:
        _record_failed_sign_in(session, user, "paused")
        return SignIn(None, throttle.paused_message(wait), wait)
    factor = two_factor.check_sign_in_code(session, user, code)
    if factor is None:
        throttle.count_failure(session, keys, limits, now)
        _record_failed_sign_in(session, user, "code")
        return SignIn(None, two_factor.WRONG_CODE)
    return _signed_in(session, user, user.email, now, factor=factor)


def _signed_in(
    session: Session, user: User, email: str, now: datetime, *, factor: str | None
) -> SignIn:
    throttle.clear(session, email)
    user.previous_login_at = user.last_login_at
    user.last_login_at = now
    audit.record(
        session,
        actor_id=user.id,
        actor_role=str(user.role),
        action=AuditAction.SIGN_IN,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=user.patient.id if user.patient else None,
        detail={"second_factor": factor} if factor else None,
    )
    session.flush()
    return SignIn(user)


def _check_new_email(session: Session, email: str) -> str:
    email = normalise_email(email)
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise AccountError("email", "An account with this email already exists.")
    return email


def check_new_password(password: str, email: str) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise AccountError("password", " ".join(problems))


def create_user(
    session: Session, *, email: str, role: Role, password: str | None, check: bool = True
) -> User:
    """A user with an argon2id hash (or none yet, for an invitation to complete)."""
    email = _check_new_email(session, email)
    if password is not None and check:
        check_new_password(password, email)
    user = User(
        email=email,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    return user


def _patients_with_mrn(rs: RoleScope) -> Select[int]:
    """How many patients the reader may see have the MRN `:mrn`."""
    mrn = bindparam("mrn", type_=String)
    return rs.patients(select(func.count()).where(PatientProfile.medical_record_number == mrn))


def register_patient(
    session: Session,
    actor: Actor,
    *,
    medical_record_number: str,
    display_name: str,
    date_of_birth: date | None = None,
    primary_clinic: str | None = None,
    contact_email: str | None = None,
) -> PatientProfile:
    """A patient record without a sign-in yet; staff then issue an activation code."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    mrn = medical_record_number.strip().upper()
    # Only admins get here, and they see every patient: the check covers the whole clinic.
    if session.scalar(scoped(_patients_with_mrn, actor), reader(actor, mrn=mrn)):
        raise AccountError("medical_record_number", "A patient with this MRN already exists.")
    patient = PatientProfile(
        medical_record_number=mrn,
        display_name=display_name.strip(),
        date_of_birth=date_of_birth,
        primary_clinic=primary_clinic,
        contact_email=contact_email,
    )
    session.add(patient)
    session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.CREATE,
        entity_type="patient_profile",
        entity_id=patient.id,
        patient_id=patient.id,
    )
    return patient


def issue_activation_code(session: Session, actor: Actor, patient: PatientProfile) -> str:
    """A one-time code (shown once) with which the patient creates their sign-in."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    if patient.user_id is not None:
        raise AccountError(None, "This patient has already activated their account.")
    code = "-".join(secrets.token_hex(2).upper() for _ in range(4))
    session.add(
        ActivationCode(
            patient_id=patient.id,
            code_hash=sessions.token_hash(code),
            issued_by_id=actor.user_id,
            expires_at=utcnow() + ACTIVATION_VALIDITY,
        )
    )
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.CREATE,
        entity_type="activation_code",
        entity_id=patient.id,
        patient_id=patient.id,
    )
    session.flush()
    return code


def activate_patient(
    session: Session, *, code: str, email: str, password: str, date_of_birth: date | None
) -> User:
    """Create the patient's sign-in from a valid, unused code (and matching date of birth)."""
    row = session.scalar(
        select(ActivationCode).where(
            ActivationCode.code_hash == sessions.token_hash(code.strip().upper()),
            ActivationCode.used_at.is_(None),
            ActivationCode.expires_at > utcnow(),
        )
    )
    patient = (
        session.scalar(
            unscoped(
                select(PatientProfile).where(PatientProfile.id == row.patient_id),
                "activation: the code names the patient whose sign-in it creates",
            )
        )
        if row
        else None
    )
    if (
        row is None
        or patient is None
        or patient.user_id is not None
        or (patient.date_of_birth is not None and patient.date_of_birth != date_of_birth)
    ):
        raise AccountError(
            "code", "This activation code is not valid. Ask the clinic for a new one."
        )
    user = create_user(session, email=email, role=Role.PATIENT, password=password)
    patient.user_id = user.id
    row.used_at = utcnow()
    audit.record(
        session,
        actor_id=user.id,
        actor_role=Role.PATIENT,
        action=AuditAction.ACTIVATE,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=patient.id,
    )
    session.flush()
    return user


def create_staff(
    session: Session,
    actor: Actor | None,
    *,
    email: str,
    role: Role,
    display_name: str,
    specialty: str | None = None,
    clinic: str | None = None,
    password: str | None = None,
) -> tuple[User, str | None]:
    """A provider or admin account; without a password, also an invitation token (shown once).

    `actor` is None only for the command line, which runs as the operator.
    """
    if actor is not None:
        require(actor, Permission.ACCOUNTS_MANAGE)
    if role is Role.PATIENT:
        raise AccountError("role", "Patients join with an activation code.")
    user = create_user(session, email=email, role=role, password=password)
    if role is Role.PROVIDER:
        session.add(
            ProviderProfile(
                user_id=user.id, display_name=display_name, specialty=specialty, clinic=clinic
            )
        )
    token = None
    if password is None:
        token = secrets.token_urlsafe(32)
        session.add(
            Invitation(
                user_id=user.id,
                token_hash=sessions.token_hash(token),
                issued_by_id=actor.user_id if actor else None,
                expires_at=utcnow() + INVITATION_VALIDITY,
            )
        )
    audit.record(
        session,
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role if actor else "operator",
        action=AuditAction.CREATE,
        entity_type="user_account",
        entity_id=user.id,
        detail={"role": str(role)},
    )
    session.flush()
    return user, token


def accept_invitation(session: Session, *, token: str, password: str) -> User:
    row = session.scalar(
        select(Invitation).where(
            Invitation.token_hash == sessions.token_hash(token),
            Invitation.used_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )
    if row is None:
        raise AccountError("token", "This invitation link is not valid. Ask an administrator.")
    user = session.get_one(User, row.user_id)
    check_new_password(password, user.email)
    user.password_hash = hash_password(password)
    row.used_at = utcnow()
    session.flush()
    return user


def change_password(
    session: Session,
    actor: Actor,
    *,
    current_password: str,
    new_password: str,
    limits: throttle.Limits,
    client_address: str | None = None,
) -> str | None:
    """Set a new password after checking the current one, and end every other session.

    The session in use stays signed in: the person who just proved who they are keeps working.
    A wrong current password is not raised but returned (the message for the form), so that
    its record and its count toward the sign-in pause commit: someone holding an open session
    cannot guess the password at leisure.
    """
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    now = utcnow()
    keys = throttle.keys_for(user.email, client_address, limits)
    wait = throttle.wait_seconds(session, keys, now)
    ok = wait is None and verify_password(user.password_hash, current_password)[0]
    if not ok:
        if wait is None:
            throttle.count_failure(session, keys, limits, now)
        reason = "paused" if wait is not None else "current_password"
        record_password_change(session, user, AuditOutcome.DENIED, {"reason": reason})
        return (
            throttle.paused_message(wait)
            if wait is not None
            else "That is not your current password."
        )
    check_new_password(new_password, user.email)
    set_password(session, user, new_password, ended="password_change", keep=actor.session_id)
    record_password_change(session, user, AuditOutcome.SUCCESS)
    return None


def set_password(
    session: Session, user: User, password: str, *, ended: str, keep: int | None = None
) -> None:
    """A new password (already checked against the rules): a sign-in pause ends with it, and
    every session and token but `keep` (the one in use, if any) ends too."""
    user.password_hash = hash_password(password)
    throttle.clear(session, user.email)
    sessions.end_all(session, user.id, ended, keep=keep)


def record_password_change(
    session: Session,
    user: User,
    outcome: AuditOutcome,
    detail: dict[str, object] | None = None,
) -> None:
    audit.record(
        session,
        actor_id=user.id,
        actor_role=user.role,
        action=AuditAction.PASSWORD_CHANGE,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=user.patient.id if user.patient else None,
        outcome=outcome,
        detail=detail,
    )
    session.flush()


def set_active(session: Session, actor: Actor, user: User, *, active: bool) -> None:
    """Deactivate (ending every session at once) or reactivate an account.

    Nobody deactivates their own account: the clinic would be left without the admin who can
    undo it.
    """
    require(actor, Permission.ACCOUNTS_MANAGE)
    if not active and user.id == actor.user_id:
        raise AccountError(None, "You cannot deactivate your own account.")
    user.is_active = active
    if not active:
        sessions.end_all(session, user.id, "deactivated")
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.DEACTIVATE if not active else AuditAction.ACTIVATE,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=user.patient.id if user.patient else None,
    )
    session.flush()


def _active_providers() -> Select[ProviderProfile]:
    return (
        select(ProviderProfile)
        .join(User, User.id == ProviderProfile.user_id)
        .where(User.is_active.is_(True))
    )


def active_providers(session: Session) -> list[ProviderProfile]:
    """Every provider whose account is active, by name (a provider profile is no PHI)."""
    return list(session.scalars(_active_providers().order_by(ProviderProfile.display_name)))


def active_provider_for_user(session: Session, user_id: int) -> ProviderProfile | None:
    """The active provider who signs in as `user_id` (the API names people by user id)."""
    if not 0 < user_id <= MAX_ID:
        return None
    return session.scalar(_active_providers().where(ProviderProfile.user_id == user_id))


@dataclass(frozen=True, slots=True)
class CareTeam:
    """A patient's care team, as an administrator manages it."""

    patient: PatientProfile
    members: list[ProviderProfile]
    #: Active providers not on the team yet: the ones `assign_provider` accepts.
    candidates: list[ProviderProfile]
    #: The patient's sign-in, once they have activated it.
    account: User | None


def care_team(session: Session, actor: Actor, patient_id: int) -> CareTeam:
    """The patient's current team and who may join it; 404 for a patient outside the scope."""
    require(actor, Permission.CARE_TEAMS_MANAGE)
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    members = list(
        session.scalars(
            select(ProviderProfile)
            .join(CareAssignment, CareAssignment.provider_id == ProviderProfile.id)
            .where(CareAssignment.patient_id == patient.id, CareAssignment.ended_at.is_(None))
            .order_by(ProviderProfile.display_name)
        )
    )
    on_team = {p.id for p in members}
    active = session.scalars(_active_providers().order_by(ProviderProfile.display_name))
    account = session.get(User, patient.user_id) if patient.user_id is not None else None
    return CareTeam(patient, members, [p for p in active if p.id not in on_team], account)


def assign_provider(
    session: Session, actor: Actor | None, *, patient_id: int, provider_id: int
) -> CareAssignment:
    """Put a provider on a patient's care team (again, if they were on it before).

    Only an active provider joins a team: a deactivated account could not sign in to care.
    """
    if actor is not None:
        require(actor, Permission.CARE_TEAMS_MANAGE)
    if session.scalar(_active_providers().where(ProviderProfile.id == provider_id)) is None:
        raise AccountError("provider_id", "Choose an active provider.")
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
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role if actor else "operator",
        action=AuditAction.ASSIGN,
        entity_type="care_assignment",
        entity_id=row.id,
        patient_id=patient_id,
        detail={"provider_id": provider_id},
    )
    return row


def unassign_provider(session: Session, actor: Actor, *, patient_id: int, provider_id: int) -> None:
    require(actor, Permission.CARE_TEAMS_MANAGE)
    row = session.scalar(
        select(CareAssignment).where(
            CareAssignment.patient_id == patient_id,
            CareAssignment.provider_id == provider_id,
            CareAssignment.ended_at.is_(None),
        )
    )
    if row is None:
        return
    row.ended_at = utcnow()
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.UNASSIGN,
        entity_type="care_assignment",
        entity_id=row.id,
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
