"""Changing a password, and what a new password ends (sessions, tokens, a sign-in pause)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require
from portal.db import utcnow
from portal.models import AuditAction, AuditOutcome, Entity, User
from portal.services import sessions, throttle
from portal.services.accounts.addresses import end_mailed_links
from portal.services.accounts.users import AccountError, check_new_password
from portal.services.credentials import hash_password, verify_password
from portal.services.errors import N_


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
    the attempt claimed toward the sign-in pause), which `unit_of_work` commits (`keep`):
    someone holding an open session cannot guess the password at leisure.
    """
    require(actor, Permission.OWN_ACCOUNT)
    user = session.get_one(User, actor.user_id)
    now = utcnow()
    keys = throttle.keys_for(user.email, client_address, limits)
    # Claimed before the current password is checked, and kept when refused (`keep`): a burst
    # of guesses from an open session gets no more checks than the sign-in page.
    wait = throttle.claim(session, keys, limits, now)
    if wait is not None or not verify_password(user.password_hash, current_password)[0]:
        reason = "paused" if wait is not None else "current_password"
        message = (
            throttle.paused_message(wait)
            if wait is not None
            else N_("That is not your current password.")
        )
        record_password_change(session, user, AuditOutcome.DENIED, {"reason": reason})
        raise AccountError("current_password", message, keep=True)
    throttle.release(session, keys)
    check_new_password(new_password, user.email)
    set_password(session, user, new_password, ended="password_change", keep=actor.session_id)
    record_password_change(session, user, AuditOutcome.SUCCESS)


def set_password(
    session: Session, user: User, password: str, *, ended: str, keep: int | None = None
) -> None:
    """A new password (already checked against the rules): a sign-in pause ends with it, and
    every session and token but `keep` (the one in use, if any) ends too."""
    user.password_hash = hash_password(password)
    throttle.clear(session, user.email)
    sessions.end_all(session, user.id, ended, keep=keep)
    # L1 (docs/security.md): the other reset links still waiting end with the old password.
    end_mailed_links(session, user.id)


def record_password_change(
    session: Session,
    user: User,
    outcome: AuditOutcome,
    detail: dict[str, object] | None = None,
) -> None:
    audit.record(
        session,
        Actor.of(user),
        AuditAction.PASSWORD_CHANGE,
        Entity.USER_ACCOUNT,
        user.id,
        patient_id=user.patient.id if user.patient else None,
        outcome=outcome,
        detail=detail,
    )
    session.flush()
