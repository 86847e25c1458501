"""Accounts: patients, providers and admins, activation codes, invitations, care teams."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext
from sqlalchemy import Select, String, bindparam, func, or_, select, update
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
    AuditEvent,
    AuditOutcome,
    CareAssignment,
    CareAssignmentRequest,
    Invitation,
    PasswordReset,
    PatientProfile,
    ProviderProfile,
    Role,
    User,
)
from portal.services import mail, messaging, sessions, throttle, two_factor
from portal.services.errors import N_, ServiceError

ACTIVATION_VALIDITY = timedelta(days=14)
INVITATION_VALIDITY = timedelta(days=7)
#: Audit entity types of an administrator's change to an address that credentials are mailed
#: to; whoever made one is not the one who mails credentials there (`check_not_introduced_by`).
USER_EMAIL_CHANGE = "user_account.email"
CONTACT_EMAIL_CHANGE = "patient_profile.contact_email"


class AccountError(ServiceError):
    """Input that cannot make a valid account."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


FAILED_SIGN_IN = N_("That email and password do not match an active account.")


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
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.CREATE,
        entity_type="patient_profile",
        entity_id=patient.id,
        patient_id=patient.id,
    )
    return patient


def check_not_introduced_by(
    session: Session, actor: Actor, entity_type: str, entity_id: int
) -> None:
    """Refuse when `actor` set the address this would go to: then nobody else would see it."""
    changed = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.entity_type == entity_type,
            AuditEvent.entity_id == str(entity_id),
            AuditEvent.actor_id == actor.user_id,
        )
    )
    if changed:
        raise AccountError(
            None,
            N_(
                "You changed this address yourself: another administrator must send this, "
                "so that no one person alone opens an account."
            ),
        )


def address_set_by_admin(session: Session, user: User) -> bool:
    """Did an administrator set the account's sign-in address since its holder last signed
    in? Then "Forgot your password?" sends nothing there: the admin who typed it could be
    reading that mailbox (another admin may still send a link, `recovery.send_reset`)."""
    stmt = select(AuditEvent.id).where(
        AuditEvent.entity_type == USER_EMAIL_CHANGE, AuditEvent.entity_id == str(user.id)
    )
    if user.last_login_at is not None:
        stmt = stmt.where(AuditEvent.occurred_at > user.last_login_at)
    return session.scalar(stmt.limit(1)) is not None


def end_mailed_links(session: Session, user_id: int) -> None:
    """End the invitations and reset links not used yet (sent to an address that changed)."""
    now = utcnow()
    for model in (Invitation, PasswordReset):
        session.execute(
            update(model)
            .where(model.user_id == user_id, model.used_at.is_(None), model.expires_at > now)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )


def issue_activation_code(
    session: Session, actor: Actor, patient: PatientProfile, *, portal_url: str
) -> str:
    """A one-time code with which the patient creates their sign-in, mailed to the patient's
    own contact address: the administrator never sees it (only its hash is stored).

    Refused without a contact address, and to the administrator who set that address.
    Returns the code for the operator's demo seeding only; no page shows it.
    """
    require(actor, Permission.ACCOUNTS_MANAGE)
    if patient.user_id is not None:
        raise AccountError(None, N_("This patient has already activated their account."))
    return _mail_activation_code(session, actor, patient, portal_url=portal_url)


def reset_patient_access(
    session: Session, actor: Actor, patient: PatientProfile, *, portal_url: str
) -> None:
    """For an activated patient who lost their sign-in address: end their password, every
    session, API token and reset link, and mail a new activation code to their contact
    address, with which they choose a new address and password. Recorded in their access
    log. Refused to the administrator who set that contact address."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    user = session.get(User, patient.user_id) if patient.user_id is not None else None
    if user is None:
        raise AccountError(None, N_("This patient has no account yet: send an activation code."))
    _mail_activation_code(session, actor, patient, portal_url=portal_url)
    user.password_hash = None
    two_factor.clear(session, user)  # a lost phone is as likely as a lost mailbox
    sessions.end_all(session, user.id, "access_reset")
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    throttle.clear(session, user.email)
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.UPDATE,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=patient.id,
        detail={
            "access": "reset",
            "ended": ["password", "two_step_sign_in", "sessions", "tokens", "reset_links"],
        },
    )
    session.flush()


def _mail_activation_code(
    session: Session, actor: Actor, patient: PatientProfile, *, portal_url: str
) -> str:
    if not patient.contact_email:
        raise AccountError(
            "contact_email",
            N_("Add the patient's email address: the activation code is sent there."),
        )
    check_not_introduced_by(session, actor, CONTACT_EMAIL_CHANGE, patient.id)
    now = utcnow()
    # One valid code at a time: a new one ends the ones sent before.
    session.execute(
        update(ActivationCode)
        .where(ActivationCode.patient_id == patient.id, ActivationCode.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    code = "-".join(secrets.token_hex(2).upper() for _ in range(4))
    session.add(
        ActivationCode(
            patient_id=patient.id,
            code_hash=sessions.token_hash(code),
            issued_by_id=actor.user_id,
            expires_at=now + ACTIVATION_VALIDITY,
        )
    )
    url = portal_url.rstrip("/") + "/activate"
    mail.stage_account_notice(
        session,
        patient,
        kind="account.activation_code",
        compose=lambda: (
            gettext("Your activation code for the patient portal"),
            gettext(
                "Your clinic has opened a patient portal account for you. Your activation code is"
            )
            + f"\n\n    {code}\n\n"
            + gettext(
                "Enter it at %(url)s within 14 days (with your date of birth, if the clinic asked "
                "for it).",
                url=url,
            )
            + "\n\n"
            + gettext("If you did not expect this, ignore this email or call the clinic.")
            + "\n",
        ),
    )
    audit.record(
        session,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.CREATE,
        entity_type="activation_code",
        entity_id=patient.id,
        patient_id=patient.id,
        detail={"sent_to": "contact_email"},
    )
    session.flush()
    return code


INVALID_CODE = N_("This activation code is not valid. Ask the clinic for a new one.")


def _refused_activation(
    keys: list[tuple[str, int]], limits: throttle.Limits | None, reason: str
) -> Callable[[Session], None]:
    """What a refused activation leaves, once the attempt rolled back: a denied entry, and a
    failure counted toward the same pause as signing in."""

    def record(session: Session) -> None:
        now = utcnow()
        if limits is not None and reason != "paused":
            throttle.count_failure(session, keys, limits, now)
        audit.record(
            session,
            actor_id=None,
            actor_role=None,
            action=AuditAction.ACTIVATE,
            entity_type="user_account",
            outcome=AuditOutcome.DENIED,
            detail={"reason": reason},
        )

    return record


def activate_patient(
    session: Session,
    *,
    code: str,
    email: str,
    password: str,
    date_of_birth: date | None,
    limits: throttle.Limits | None = None,
    client_address: str | None = None,
) -> User:
    """Create the patient's sign-in from a valid, unused code (and matching date of birth), or
    give a patient whose access was reset (`reset_patient_access`) a new address and password.

    A refusal is recorded (denied) and, with `limits`, counts toward the sign-in pause of the
    email address and the client address; a paused attempt is refused unread.
    """
    keys = throttle.keys_for(email, client_address, limits) if limits is not None else []
    wait = throttle.wait_seconds(session, keys, utcnow()) if keys else None
    if wait is not None:
        raise AccountError(
            "code",
            throttle.paused_message(wait),
            record=_refused_activation(keys, limits, "paused"),
        )
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
    existing = session.get(User, patient.user_id) if patient and patient.user_id else None
    if (
        row is None
        or patient is None
        or (existing is not None and existing.password_hash is not None)
        or (patient.date_of_birth is not None and patient.date_of_birth != date_of_birth)
    ):
        raise AccountError("code", INVALID_CODE, record=_refused_activation(keys, limits, "code"))
    # One statement claims the code: of two requests racing with it, one activates.
    claimed = session.execute(
        update(ActivationCode)
        .where(ActivationCode.id == row.id, ActivationCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise AccountError("code", INVALID_CODE)
    if existing is None:
        user = create_user(session, email=email, role=Role.PATIENT, password=password)
        patient.user_id = user.id
    else:
        user = existing
        if normalise_email(email) != user.email:
            user.email = check_new_email(session, email)
        check_new_password(password, user.email)
        user.password_hash = hash_password(password)
    throttle.clear(session, user.email)
    audit.record(
        session,
        actor_id=user.id,
        actor_role=Role.PATIENT,
        action=AuditAction.ACTIVATE,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=patient.id,
        detail={"again": existing is not None},
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
    portal_url: str | None = None,
) -> tuple[User, str | None]:
    """A provider or admin account; without a password, an invitation mailed to the new
    account's own address (with `portal_url`, the link's base). The token is returned only for
    the operator's command line; no page shows it.

    `actor` is None only for the command line, which runs as the operator.
    """
    if actor is not None:
        require(actor, Permission.ACCOUNTS_MANAGE)
    if role is Role.PATIENT:
        raise AccountError("role", N_("Patients join with an activation code."))
    user = create_user(session, email=email, role=role, password=password)
    if role is Role.PROVIDER:
        session.add(
            ProviderProfile(
                user_id=user.id, display_name=display_name, specialty=specialty, clinic=clinic
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
    token = None if password is not None else _invite(session, actor, user, portal_url)
    session.flush()
    return user, token


def _invite(session: Session, actor: Actor | None, user: User, portal_url: str | None) -> str:
    """A new invitation for `user` (ending any earlier one), mailed to their own address."""
    now = utcnow()
    session.execute(
        update(Invitation)
        .where(Invitation.user_id == user.id, Invitation.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        Invitation(
            user_id=user.id,
            token_hash=sessions.token_hash(token),
            issued_by_id=actor.user_id if actor else None,
            expires_at=now + INVITATION_VALIDITY,
        )
    )
    if portal_url is not None:
        link = f"{portal_url.rstrip('/')}/invitation/{token}"
        mail.stage_account_notice(
            session,
            user,
            kind="account.invitation",
            compose=lambda: (
                gettext("Your invitation to the patient portal"),
                gettext(
                    "An administrator has opened a staff account for you in the patient portal. "
                    "Set your password with this link, which works once, for 7 days:"
                )
                + f"\n\n{link}\n\n"
                + gettext("If you did not expect this, ignore this email and tell the clinic.")
                + "\n",
            ),
        )
    audit.record(
        session,
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role if actor else "operator",
        action=AuditAction.CREATE,
        entity_type="invitation",
        entity_id=user.id,
        detail={"mailed": portal_url is not None},
    )
    return token


def resend_invitation(session: Session, actor: Actor, user: User, *, portal_url: str) -> None:
    """Mail a new invitation to a staff account that has not set its password yet; the one
    sent before stops working. Refused to the administrator who set the account's address."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    if user.role is Role.PATIENT or user.password_hash is not None or not user.is_active:
        raise AccountError(
            None, N_("Only an active staff account still waiting to join is invited.")
        )
    check_not_introduced_by(session, actor, USER_EMAIL_CHANGE, user.id)
    _invite(session, actor, user, portal_url)
    session.flush()


INVALID_INVITATION = N_("This invitation link is not valid. Ask an administrator.")


def accept_invitation(session: Session, *, token: str, password: str) -> User:
    """Set a staff account's first password with its invitation, once (the link is claimed by
    one statement, so two requests racing with it cannot both use it); recorded."""
    now = utcnow()
    row = session.scalar(
        select(Invitation).where(
            Invitation.token_hash == sessions.token_hash(token),
            Invitation.used_at.is_(None),
            Invitation.expires_at > now,
        )
    )
    user = session.get(User, row.user_id) if row is not None else None
    if row is None or user is None or not user.is_active or user.password_hash is not None:
        raise AccountError("token", INVALID_INVITATION)
    check_new_password(password, user.email)
    claimed = session.execute(
        update(Invitation)
        .where(Invitation.id == row.id, Invitation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise AccountError("token", INVALID_INVITATION)
    user.password_hash = hash_password(password)
    audit.record(
        session,
        actor_id=user.id,
        actor_role=user.role,
        action=AuditAction.ACTIVATE,
        entity_type="invitation",
        entity_id=user.id,
        detail={"invited_by": row.issued_by_id},
    )
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
) -> None:
    """Set a new password after checking the current one, and end every other session.

    The session in use stays signed in: the person who just proved who they are keeps working.
    A wrong current password is refused on "current_password" with its record (a denied entry,
    a failure toward the sign-in pause), which `unit_of_work` keeps after the rollback: someone
    holding an open session cannot guess the password at leisure.
    """
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    now = utcnow()
    keys = throttle.keys_for(user.email, client_address, limits)
    wait = throttle.wait_seconds(session, keys, now)
    if wait is not None or not verify_password(user.password_hash, current_password)[0]:
        reason = "paused" if wait is not None else "current_password"
        message = (
            throttle.paused_message(wait)
            if wait is not None
            else N_("That is not your current password.")
        )
        raise AccountError(
            "current_password",
            message,
            record=_refused_password_change(user.id, keys, limits, reason),
        )
    check_new_password(new_password, user.email)
    set_password(session, user, new_password, ended="password_change", keep=actor.session_id)
    record_password_change(session, user, AuditOutcome.SUCCESS)


def _refused_password_change(
    user_id: int, keys: list[tuple[str, int]], limits: throttle.Limits, reason: str
) -> Callable[[Session], None]:
    def record(session: Session) -> None:
        if reason != "paused":
            throttle.count_failure(session, keys, limits, utcnow())
        user = session.get_one(User, user_id)
        record_password_change(session, user, AuditOutcome.DENIED, {"reason": reason})

    return record


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
        raise AccountError(None, N_("You cannot deactivate your own account."))
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
    #: Assignments waiting for a second administrator's confirmation.
    pending: list[CareAssignmentRequest]


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
    return CareTeam(patient, members, candidates, account, pending)


def _brought_in_by(session: Session, by_user_id: int, user_id: int) -> bool:
    """Did `by_user_id` create the account `user_id`, invite it, or set its address? Then that
    person could be holding the account: it is not a second person for what they do."""
    invited = select(Invitation.id).where(
        Invitation.user_id == user_id, Invitation.issued_by_id == by_user_id
    )
    made = select(AuditEvent.id).where(
        AuditEvent.entity_id == str(user_id),
        AuditEvent.actor_id == by_user_id,
        or_(
            (AuditEvent.entity_type == "user_account") & (AuditEvent.action == AuditAction.CREATE),
            AuditEvent.entity_type == USER_EMAIL_CHANGE,
        ),
    )
    return session.scalar(select(invited.exists() | made.exists())) or False


def _may_confirm(
    session: Session, actor: Actor, row: CareAssignmentRequest, provider: ProviderProfile
) -> bool:
    """A second person: not the one who asked, nor one who brought the provider in, nor one
    whose own account the asker brought in (an admin account they made for themselves)."""
    return not (
        row.requested_by_id == actor.user_id
        or _brought_in_by(session, actor.user_id, provider.user_id)
        or _brought_in_by(session, row.requested_by_id, actor.user_id)
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
    provider = session.scalar(_active_providers().where(ProviderProfile.id == provider_id))
    if provider is None:
        raise AccountError("provider_id", N_("Choose an active provider."))
    if actor is not None and _brought_in_by(session, actor.user_id, provider.user_id):
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
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role if actor else "operator",
        action=AuditAction.ASSIGN,
        entity_type="care_assignment",
        entity_id=row.id,
        patient_id=patient_id,
        detail={"provider_id": provider_id, **detail},
    )
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
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=AuditAction.ASSIGN,
        entity_type="care_assignment_request",
        entity_id=row.id,
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
    provider = session.scalar(_active_providers().where(ProviderProfile.id == row.provider_id))
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
            actor_id=actor.user_id,
            actor_role=actor.role,
            action=AuditAction.CANCEL,
            entity_type="care_assignment_request",
            entity_id=row.id,
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
