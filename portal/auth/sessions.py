"""Server-revocable sessions: a per-user session version, an idle and an absolute timeout."""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy import Integer, bindparam, select

from portal.access import Actor
from portal.db import utcnow
from portal.extensions import db, login_manager
from portal.models import User

#: Built once: constructing the statement (with its joined profiles) and its cache key cost
#: more than running it, and it runs on every request.
_USER_BY_ID = select(User).where(User.id == bindparam("user_id", type_=Integer))


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    """The user a session cookie names, if that session is still valid on the server.

    Read from the database on every request, so deactivation and sign-out-everywhere (which
    bump `session_version`) end every other session at once.
    """
    try:
        user_id, version = (int(part) for part in session_id.split(":", 1))
    except ValueError:
        return None
    user = db.session.scalar(_USER_BY_ID, {"user_id": user_id})
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def start_session(user: User) -> None:
    """Sign `user` in with a fresh session (nothing from the anonymous one survives)."""
    session.clear()
    session.permanent = True
    now = utcnow().timestamp()
    session["started_at"] = now
    session["seen_at"] = now
    login_user(user)


def end_session() -> None:
    logout_user()
    session.clear()


def current_actor() -> Actor:
    return Actor.of(current_user)


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the session version does this job, revocably

    @app.before_request
    def _enforce_timeouts() -> None:
        if request.endpoint == "static" or "_user_id" not in session:
            return
        now = utcnow().timestamp()
        idle = current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds()
        absolute = current_app.config["SESSION_ABSOLUTE_TIMEOUT"].total_seconds()
        started = float(session.get("started_at", 0))
        seen = float(session.get("seen_at", 0))
        if now - seen > idle or now - started > absolute:
            end_session()
            session["expired"] = True
            return
        # Refresh at most once a minute, so most responses don't rewrite the cookie.
        if now - seen > 60:
            session["seen_at"] = now


__all__ = ["current_actor", "end_session", "start_session"]
