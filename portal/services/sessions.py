"""Signed-in sessions on the server: start, check, list and end them.

The one validity rule for every door (pages, the JSON API, the socket): a session is valid
while it is not revoked, its user is active, it was used within the idle timeout and it is
younger than the absolute timeout. The browser holds a random secret; only its SHA-256 is here.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, bindparam, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, require
from portal.db import utcnow
from portal.models import AuditAction, AuthMethod, Entity, User, UserSession
from portal.services.errors import N_, ServiceError

#: Don't write `last_seen_at` on every request: once a minute is precise enough for a 30 min
#: idle timeout, and most requests then stay read-only.
TOUCH_EVERY = timedelta(minutes=1)


class Status(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"  # timed out: the sign-in page says so
    INVALID = "invalid"  # unknown, revoked, or the account is deactivated


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    user: User | None = None
    row: UserSession | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: Built once: it runs on every request (the user's profiles are joined by the model).
_BY_HASH = (
    select(UserSession, User)
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash", type_=String))
)
_TOUCH = (
    update(UserSession)
    .where(UserSession.id == bindparam("session_id", type_=Integer))
    .values(last_seen_at=bindparam("now"))
)


def start(session: Session, user: User, *, method: AuthMethod, client: str) -> str:
    """A new session for `user`; returns the secret to hand to the client (shown once)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        UserSession(
            user_id=user.id,
            method=method,
            token_hash=token_hash(token),
            client=client[:120],
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


def check(
    session: Session,
    token: str,
    *,
    idle: timedelta,
    absolute: timedelta,
    method: AuthMethod = AuthMethod.SESSION,
) -> Check:
    """Is the session (or API token, `method`) this secret names still valid? Reads only; see
    `needs_touch`. A cookie's secret is never accepted as a bearer token, nor the reverse."""
    found = session.execute(_BY_HASH, {"token_hash": token_hash(token)}).first()
    if found is None:
        return Check(Status.INVALID)
    row, user = found
    if row.method is not method:
        return Check(Status.INVALID)
    status = _status(row, user, utcnow(), idle=idle, absolute=absolute)
    return Check(status, user, row) if status is Status.VALID else Check(status)


def _status(
    row: UserSession, user: User, now: datetime, *, idle: timedelta, absolute: timedelta
) -> Status:
    """The validity rule itself, for one session and its user."""
    if row.revoked_at is not None or not user.is_active:
        return Status.INVALID
    if now - row.last_seen_at > idle or now - row.created_at > absolute:
        return Status.EXPIRED
    return Status.VALID


_BY_IDS = (
    select(UserSession, User)
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.id.in_(bindparam("session_ids", expanding=True)))
)


def still_valid(
    session: Session, session_ids: Iterable[int], *, idle: timedelta, absolute: timedelta
) -> set[int]:
    """Which of these sessions are still valid, by the same rule as `check`, in one query
    (the open sockets of a process are re-checked together, not one query each)."""
    ids = list(session_ids)
    if not ids:
        return set()
    now = utcnow()
    rows = session.execute(_BY_IDS, {"session_ids": ids})
    return {
        row.id
        for row, user in rows
        if _status(row, user, now, idle=idle, absolute=absolute) is Status.VALID
    }


def needs_touch(row: UserSession) -> bool:
    return utcnow() - row.last_seen_at > TOUCH_EVERY


def touch(session: Session, session_id: int) -> None:
    """Record that the session was used now (keeps it from timing out while in use)."""
    session.execute(_TOUCH, {"session_id": session_id, "now": utcnow()})


def active_for(
    session: Session, actor: Actor, *, idle: timedelta, absolute: timedelta
) -> list[UserSession]:
    """The actor's own sessions that still sign someone in (not ended, not timed out under
    the same rule as `check`), most recently used first."""
    require(actor, Permission.OWN_ACCOUNT)
    now = utcnow()
    stmt = (
        select(UserSession)
        .where(
            UserSession.user_id == actor.user_id,
            UserSession.revoked_at.is_(None),
            UserSession.last_seen_at >= now - idle,
            UserSession.created_at >= now - absolute,
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return list(session.scalars(stmt))


def _revoke(
    session: Session, user_id: int, reason: str, *, only: int | None = None, keep: int | None = None
) -> int:
    stmt = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if only is not None:
        stmt = stmt.where(UserSession.id == only)
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep)
    result = session.execute(
        stmt.values(revoked_at=utcnow(), revoked_reason=reason),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def sign_out(session: Session, actor: Actor) -> None:
    """End the session (or revoke the API token) the actor is using now, and record it."""
    if actor.session_id is not None:
        _revoke(session, actor.user_id, "sign_out", only=actor.session_id)
    _record(session, actor, AuditAction.SIGN_OUT, {"session_id": actor.session_id})


def end_one(session: Session, actor: Actor, session_id: int) -> None:
    """Sign out one of the actor's own devices; another person's session is simply not there."""
    require(actor, Permission.OWN_ACCOUNT)
    if not _revoke(session, actor.user_id, "signed_out_elsewhere", only=session_id):
        raise ServiceError(None, N_("That device is already signed out."))
    _record(session, actor, AuditAction.SIGN_OUT, {"session_id": session_id})


def end_others(session: Session, actor: Actor) -> int:
    """Sign out every device but the one in use; returns how many were signed out."""
    require(actor, Permission.OWN_ACCOUNT)
    ended = _revoke(session, actor.user_id, "signed_out_elsewhere", keep=actor.session_id)
    _record(session, actor, AuditAction.SIGN_OUT, {"others": ended})
    return ended


def end_all(session: Session, user_id: int, reason: str, *, keep: int | None = None) -> None:
    """End a user's sessions (deactivation, a password change); the caller records why."""
    _revoke(session, user_id, reason, keep=keep)


def _record(session: Session, actor: Actor, action: AuditAction, detail: dict[str, object]) -> None:
    audit.record(
        session,
        actor,
        action,
        Entity.USER_SESSION,
        actor.user_id,
        patient_id=actor.patient_id,
        detail=detail,
    )


def describe_client(user_agent: str) -> str:
    """A coarse name for a device ("Firefox on Linux"): enough to recognise it, nothing more."""
    ua = user_agent or ""
    browser = next(
        (name for token, name in _BROWSERS if token in ua), "An app" if ua else "Unknown client"
    )
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    return f"{browser} on {system}" if system else browser


# Order matters: Edge and Chromium-based browsers also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python", "A script"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
