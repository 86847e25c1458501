"""Accounts themselves: the one error type, addresses and passwords checked before an account
is made, patients registered, accounts deactivated, and which providers are active."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.orm import Session

from portal import audit
from portal.access import MAX_ID, Actor, Permission, RoleScope, reader, require, scoped
from portal.models import AuditAction, Entity, PatientProfile, ProviderProfile, Role, User
from portal.services import sessions
from portal.services.credentials import hash_password, password_problems
from portal.services.errors import N_, ServiceError


class AccountError(ServiceError):
    """Input that cannot make a valid account."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def check_new_email(session: Session, email: str) -> str:
    email = normalise_email(email)
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise AccountError("email", N_("An account with this email already exists."))
    return email


def check_new_password(password: str, email: str) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise AccountError("password", " ".join(problems))


def create_user(
    session: Session, *, email: str, role: Role, password: str | None, check: bool = True
) -> User:
    """A user with an argon2id hash (or none yet, for an invitation to complete)."""
    email = check_new_email(session, email)
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


def mrn_taken(session: Session, actor: Actor, mrn: str) -> bool:
    """Does a patient have this MRN? Only admins ask, and they see every patient: the check
    covers the whole clinic."""
    return bool(session.scalar(scoped(_patients_with_mrn, actor), reader(actor, mrn=mrn)))


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
    if mrn_taken(session, actor, mrn):
        raise AccountError("medical_record_number", N_("A patient with this MRN already exists."))
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
        actor,
        AuditAction.CREATE,
        Entity.PATIENT_PROFILE,
        patient.id,
        patient_id=patient.id,
    )
    return patient


def set_active(session: Session, actor: Actor, user: User, *, active: bool) -> None:
    """Deactivate (ending every session at once) or reactivate an account.

    Nobody deactivates their own account: the clinic would be left without the admin who can
    undo it.
    """
    require(actor, Permission.ACCOUNTS_MANAGE)
    if not active and user.id == actor.user_id:
        raise AccountError(None, N_("You cannot deactivate your own account."))
    user.is_active = active
    if not active:
        sessions.end_all(session, user.id, "deactivated")
    audit.record(
        session,
        actor,
        AuditAction.DEACTIVATE if not active else AuditAction.ACTIVATE,
        Entity.USER_ACCOUNT,
        user.id,
        patient_id=user.patient.id if user.patient else None,
    )
    session.flush()


def active_providers_stmt() -> Select[ProviderProfile]:
    return (
        select(ProviderProfile)
        .join(User, User.id == ProviderProfile.user_id)
        .where(User.is_active.is_(True))
    )


def active_providers(session: Session) -> list[ProviderProfile]:
    """Every provider whose account is active, by name (a provider profile is no PHI)."""
    return list(session.scalars(active_providers_stmt().order_by(ProviderProfile.display_name)))


def active_provider_for_user(session: Session, user_id: int) -> ProviderProfile | None:
    """The active provider who signs in as `user_id` (the API names people by user id)."""
    if not 0 < user_id <= MAX_ID:
        return None
    return session.scalar(active_providers_stmt().where(ProviderProfile.user_id == user_id))
