"""Account recovery: "Forgot your password?" and the single-use link it mails.

The answer to a request is the same whether or not the address has an account, and nothing
about it is shown or logged. The link goes only to the account's own sign-in address, works
once, for 30 minutes; using it sets the new password, ends every session and API token, ends a
sign-in pause, and mails a notice that the password changed. A person can have at most three
unused links at a time, so nobody can fill their mailbox. Staff may send the same link to an
account's own address (`send_reset`); an account without a password (a staff invitation or a
patient's new activation code waiting) gets none: those go elsewhere.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask_babel import gettext
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require
from portal.db import utcnow
from portal.models import AuditAction, AuditOutcome, Entity, PasswordReset, User
from portal.services import mail
from portal.services.accounts import (
    AccountError,
    address_set_by_admin,
    check_new_password,
    check_not_introduced_by,
    find_user_by_email,
    record_password_change,
    set_password,
)
from portal.services.errors import N_
from portal.services.sessions import token_hash

LINK_LIFETIME = timedelta(minutes=30)
MAX_OPEN_LINKS = 3


def request_reset(session: Session, *, email: str, portal_url: str) -> None:
    """Mail a reset link to the active account `email` names, if there is one; else nothing."""
    user = find_user_by_email(session, email)
    # An account without a password waits for its invitation or a new activation code, which
    # go elsewhere (a patient who lost this address): a link here would bypass them.
    if user is None or not user.is_active or user.password_hash is None:
        return
    if address_set_by_admin(session, user):
        return
    _mail_link(session, user, portal_url, actor=None)


def send_reset(session: Session, actor: Actor, user: User, *, portal_url: str) -> None:
    """Staff send a reset link to a patient's or colleague's own sign-in address (never shown
    to them); recorded. Refused for an account without a password, one with three links
    waiting, and to the administrator who set the account's address."""
    require(actor, Permission.ACCOUNTS_MANAGE)
    if not user.is_active or user.password_hash is None:
        raise AccountError(None, N_("This account has no password to reset yet."))
    check_not_introduced_by(session, actor, Entity.USER_EMAIL, user.id)
    if not _mail_link(session, user, portal_url, actor=actor):
        raise AccountError(None, N_("Three reset links are already waiting in their mailbox."))


def _mail_link(session: Session, user: User, portal_url: str, *, actor: Actor | None) -> bool:
    """Mail a new reset link to the account's address, unless three are waiting."""
    now = utcnow()
    open_links = session.scalar(
        select(func.count()).where(
            PasswordReset.user_id == user.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
    )
    if (open_links or 0) >= MAX_OPEN_LINKS:
        return False
    token = secrets.token_urlsafe(32)
    expires_at = now + LINK_LIFETIME
    session.add(PasswordReset(user_id=user.id, token_hash=token_hash(token), expires_at=expires_at))
    link = f"{portal_url.rstrip('/')}/reset-password/{token}"
    mail.stage_account_notice(
        session,
        user,
        kind="account.password_reset",
        compose=lambda: (
            gettext("Set a new password for your patient portal"),
            gettext(
                "Someone, hopefully you, asked to set a new password for your patient portal "
                "account. This link works once, for 30 minutes:"
            )
            + f"\n\n{link}\n\n"
            + gettext("If it was not you, ignore this email: your password stays as it is.")
            + "\n",
        ),
    )
    audit.record(
        session,
        actor,
        AuditAction.CREATE,
        Entity.PASSWORD_RESET,
        user.id,
        patient_id=user.patient.id if user.patient and actor else None,
    )
    session.flush()
    return True


def reset_password(session: Session, *, token: str, password: str) -> User:
    """Set a new password with a reset link, once; every session and token of the account
    ends. Refused on "token" when the link is unknown, used or expired."""
    now = utcnow()
    link = session.scalar(
        select(PasswordReset).where(
            PasswordReset.token_hash == token_hash(token),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
    )
    user = session.get(User, link.user_id) if link is not None else None
    if link is None or user is None or not user.is_active:
        raise AccountError(
            "token", N_("This link has expired or was already used. Ask for a new one.")
        )
    check_new_password(password, user.email)
    # One statement claims the link: of two requests racing with it, one sets the password.
    claimed = session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == link.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise AccountError(
            "token", N_("This link has expired or was already used. Ask for a new one.")
        )
    set_password(session, user, password, ended="password_reset")
    record_password_change(session, user, AuditOutcome.SUCCESS, {"by": "reset_link"})
    mail.stage_account_notice(
        session,
        user,
        kind="account.password_changed",
        compose=lambda: (
            gettext("Your patient portal password was changed"),
            gettext(
                "The password of your patient portal account was just changed with a reset link, "
                "and every device was signed out."
            )
            + "\n\n"
            + gettext("If it was not you, call the clinic at once.")
            + "\n",
        ),
    )
    session.flush()
    return user
