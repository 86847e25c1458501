"""Staff accounts and their invitations: mailed to the new account's own address, used once
to set its first password."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask_babel import gettext
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require
from portal.db import utcnow
from portal.models import AuditAction, Entity, Invitation, ProviderProfile, Role, User
from portal.services import mail, sessions
from portal.services.accounts.addresses import check_not_introduced_by
from portal.services.accounts.users import AccountError, check_new_password, create_user
from portal.services.credentials import hash_password
from portal.services.errors import N_

INVITATION_VALIDITY = timedelta(days=7)


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
        actor,
        AuditAction.CREATE,
        Entity.USER_ACCOUNT,
        user.id,
        detail={"role": str(role)},
        by="operator",
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
        actor,
        AuditAction.CREATE,
        Entity.INVITATION,
        user.id,
        detail={"mailed": portal_url is not None},
        by="operator",
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
    check_not_introduced_by(session, actor, Entity.USER_EMAIL, user.id)
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
        Actor.of(user),
        AuditAction.ACTIVATE,
        Entity.INVITATION,
        user.id,
        detail={"invited_by": row.issued_by_id},
    )
    session.flush()
    return user
