"""A patient's activation code: mailed to their contact address, used once to create (or,
after a reset of their access, to renew) their sign-in."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, timedelta

from flask_babel import gettext
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require, unscoped
from portal.db import utcnow
from portal.models import (
    ActivationCode,
    AuditAction,
    AuditOutcome,
    Entity,
    PasswordReset,
    PatientProfile,
    Role,
    User,
)
from portal.services import mail, sessions, throttle, two_factor
from portal.services.accounts.addresses import check_not_introduced_by
from portal.services.accounts.users import (
    AccountError,
    check_new_email,
    check_new_password,
    create_user,
    normalise_email,
)
from portal.services.credentials import hash_password
from portal.services.errors import N_

ACTIVATION_VALIDITY = timedelta(days=14)


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
        actor,
        AuditAction.UPDATE,
        Entity.USER_ACCOUNT,
        user.id,
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
    check_not_introduced_by(session, actor, Entity.PATIENT_CONTACT_EMAIL, patient.id)
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
        actor,
        AuditAction.CREATE,
        Entity.ACTIVATION_CODE,
        patient.id,
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
            None,
            AuditAction.ACTIVATE,
            Entity.USER_ACCOUNT,
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
        Actor.of(user),
        AuditAction.ACTIVATE,
        Entity.USER_ACCOUNT,
        user.id,
        patient_id=patient.id,
        detail={"again": existing is not None},
    )
    session.flush()
    return user
