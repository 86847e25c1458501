"""Signing in: a password, then a code for two-step accounts, with pauses after failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from portal import audit
from portal.actor import Actor
from portal.db import utcnow
from portal.models import AuditAction, AuditOutcome, Entity, User
from portal.services import throttle, two_factor
from portal.services.accounts.users import find_user_by_email
from portal.services.credentials import verify_password
from portal.services.errors import N_

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
        Actor.of(user) if user else None,
        AuditAction.SIGN_IN_FAILED,
        Entity.USER_ACCOUNT,
        user.id if user else None,
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
    # Claimed before the password is checked: a burst at once cannot all pass the check.
    wait = throttle.claim(session, keys, limits, now)
    if wait is not None:
        _record_failed_sign_in(session, None, "paused")
        return SignIn(None, throttle.paused_message(wait), wait)
    user = find_user_by_email(session, email)
    ok, new_hash = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        _record_failed_sign_in(session, user, "credentials")
        return SignIn(None, FAILED_SIGN_IN)
    if new_hash:
        user.password_hash = new_hash
    throttle.release(session, keys)
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
    wait = throttle.claim(session, keys, limits, now)  # before the code is checked
    if wait is not None:
        _record_failed_sign_in(session, user, "paused")
        return SignIn(None, throttle.paused_message(wait), wait)
    factor = two_factor.check_sign_in_code(session, user, code)
    if factor is None:
        _record_failed_sign_in(session, user, "code")
        return SignIn(None, two_factor.WRONG_CODE)
    throttle.release(session, keys)
    return _signed_in(session, user, user.email, now, factor=factor)


def _signed_in(
    session: Session, user: User, email: str, now: datetime, *, factor: str | None
) -> SignIn:
    throttle.clear(session, email)
    user.previous_login_at = user.last_login_at
    user.last_login_at = now
    audit.record(
        session,
        Actor.of(user),
        AuditAction.SIGN_IN,
        Entity.USER_ACCOUNT,
        user.id,
        patient_id=user.patient.id if user.patient else None,
        detail={"second_factor": factor} if factor else None,
    )
    session.flush()
    return SignIn(user)
