"""Who is asking: the one place a request's identity is resolved.

A request is signed in by a server-side session whose secret is in the session cookie, or
(the JSON API) by a bearer token kept in the same table under the same rules. The actor is
resolved once per request, in the app's first request hook (`init_app`), after the door and
the request id: it records who, how they signed in, through which door and from where. The
area gates, the language, the two-step gate, the audit, `no-store`, templates and services
all read it from here. Nothing else reads flask-login's `current_user`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from flask import Flask, Request, current_app, g, request, session
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import NotFound, Unauthorized

from portal.access import acting_for
from portal.actor import ORIGIN_KEY, Actor, Door, Origin
from portal.extensions import db, login_manager
from portal.models import AuthMethod, Role, User
from portal.services import sessions, throttle
from portal.transactions import unit_of_work
from portal.web import doors

log = logging.getLogger("portal.audit")

#: The key under which the session cookie carries the server-side session's secret.
SESSION_KEY = "sid"
#: The patient whose record this browser's proxy chose to open (the patient pages only).
ACTING_FOR_KEY = "acting_for"


def limits(method: AuthMethod) -> tuple[timedelta, timedelta]:
    """The idle and absolute timeouts of a browser session or an API token."""
    config = current_app.config
    if method is AuthMethod.TOKEN:
        return config["API_TOKEN_IDLE_TIMEOUT"], config["API_TOKEN_LIFETIME"]
    return config["SESSION_IDLE_TIMEOUT"], config["SESSION_ABSOLUTE_TIMEOUT"]


def sign_in_limits() -> throttle.Limits:
    """How many failed sign-ins the page and the token endpoint allow before a pause."""
    config = current_app.config
    return throttle.Limits(
        per_account=config["LOGIN_MAX_FAILURES"],
        per_address=config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        window=config["LOGIN_WINDOW"],
        longest=config["LOGIN_LOCKOUT"],
    )


def bearer_token(req: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if the request has one."""
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@login_manager.request_loader
def _load_from_request(req: Request) -> User | None:
    # A bearer token, when sent, is the only credential looked at: a request that names a
    # revoked token is not rescued by a cookie it also carries.
    # Only the API takes bearer tokens: pages are for browsers and their cookies.
    api = doors.door_of(req) is Door.API
    bearer = bearer_token(req) if api and "Authorization" in req.headers else None
    method = AuthMethod.TOKEN if bearer is not None else AuthMethod.SESSION
    token: object = bearer if bearer is not None else session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        return None
    idle, absolute = limits(method)
    found = sessions.check(db.session, token, idle=idle, absolute=absolute, method=method)
    if found.status is not sessions.Status.VALID or found.row is None:
        if method is AuthMethod.SESSION:
            session.pop(SESSION_KEY, None)
            if found.status is sessions.Status.EXPIRED:
                session["expired"] = True
        return None
    if sessions.needs_touch(found.row):
        with unit_of_work() as s:
            sessions.touch(s, found.row.id)
    g.auth = (found.row.method, found.row.id)
    return found.user


def signed_in_actor() -> Actor | None:
    """The actor of this request, or None when nobody is signed in."""
    if "actor" not in g:
        user = current_user._get_current_object()
        if user is None or not user.is_authenticated:
            g.actor = None
        else:
            method, session_id = g.get("auth", (AuthMethod.SESSION, None))
            g.actor = Actor.of(user, via=method, session_id=session_id, door=doors.current())
    actor: Actor | None = g.actor
    return actor


def current_actor() -> Actor:
    """The actor this request acts as: the signed-in person, or, on the record of someone they
    act for, that person narrowed by the grant; 401 (the sign-in page) when nobody is signed
    in."""
    actor = record_actor()
    if actor is None:
        raise Unauthorized()
    return actor


def person() -> Actor:
    """The signed-in person themself, whoever's record they have open (401 when nobody)."""
    actor = signed_in_actor()
    if actor is None:
        raise Unauthorized()
    return actor


def open_chosen_record() -> None:
    """On the patient pages, the record this browser's proxy chose (`ACTING_FOR_KEY`), if the
    grant still holds: decided at every request, so a removed or expired grant closes it at
    once (the choice is forgotten and the person reads as themself, to whom the other's
    records are missing)."""
    chosen = session.get(ACTING_FOR_KEY)
    actor = signed_in_actor()
    if not isinstance(chosen, int) or actor is None or request.blueprint != "patient":
        return
    from portal.services import proxies

    try:
        held = proxies.held_record(db.session, actor, chosen)
    except NotFound:
        session.pop(ACTING_FOR_KEY, None)
        return
    g.record_actor = acting_for(actor, held.delegation)
    #: Whose record the page shows, for its heading.
    g.record_name = held.display_name


def actor_for_record(patient_id: int) -> Actor:
    """Who reads patient `patient_id`'s record in this request: the signed-in person, or, for a
    patient opening someone else's, that person acting for them under a grant they hold now
    (404 when they hold none, as for anything not theirs). Decided again at every request: a
    grant ended a moment ago opens nothing."""
    from portal.services import proxies

    actor = current_actor()
    if actor.role is not Role.PATIENT or patient_id == actor.patient_id:
        return actor
    g.record_actor = proxies.open_record(db.session, actor, patient_id)
    return g.record_actor


def record_actor() -> Actor | None:
    """The actor this request read a record as (`actor_for_record`), else the signed-in one:
    what the audit names, the grant included."""
    found: Actor | None = g.get("record_actor")
    return found if found is not None else signed_in_actor()


def current_account() -> User | None:
    """The signed-in user's own account row (names, email, last sign-in), for display."""
    if signed_in_actor() is None:
        return None
    user: User = current_user._get_current_object()
    return user


def begin(user: User) -> None:
    """Sign `user` in with a fresh server-side session; call inside the unit of work."""
    token = sessions.start(
        db.session,
        user,
        method=AuthMethod.SESSION,
        client=sessions.describe_client(request.user_agent.string or ""),
    )
    # Nothing from the anonymous session survives (its CSRF token included) but the language
    # the visitor chose to read in.
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    session.permanent = True
    session[SESSION_KEY] = token
    g.pop("actor", None)


def forget() -> None:
    """Drop the cookie's session (the server-side row is ended by `sessions.sign_out`)."""
    language = session.get("language")  # the reader's language outlives the sign-in
    session.clear()
    if language:
        session["language"] = language
    g.actor = None


def origin() -> Origin:
    """Where this request came from, as its audit entries record it."""
    return Origin(
        request_id=g.get("request_id"),
        client_addr=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:300] or None,
    )


#: Requests that need nobody's identity: files, and the probes a load balancer sends.
_ANONYMOUS_ENDPOINTS = frozenset({"static", "health.healthz", "health.readyz"})


def _begin_request() -> None:
    """The first hook of every request: its id, its door, then who is asking (once)."""
    # Always the server's own id: a client's X-Request-ID could forge or collide with another
    # request's audit entries. The client's value is only logged beside ours.
    g.request_id = uuid.uuid4().hex
    incoming = request.headers.get("X-Request-ID", "")
    if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum():
        log.debug("request_id=%s client_request_id=%s", g.request_id, incoming)
    g.door = doors.door_of(request)
    if request.endpoint not in _ANONYMOUS_ENDPOINTS:
        db.session.info[ORIGIN_KEY] = origin()
        signed_in_actor()
        open_chosen_record()


def init_app(app: Flask) -> None:
    """Install the first request hook; call before anything else adds one."""
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.localize_callback = str  # translated when flashed, in the reader's language
    login_manager.login_message_category = "info"
    # The server-side session row does this job, revocably.
    login_manager.session_protection = None


__all__ = [
    "ACTING_FOR_KEY",
    "SESSION_KEY",
    "actor_for_record",
    "begin",
    "current_account",
    "current_actor",
    "forget",
    "open_chosen_record",
    "person",
    "record_actor",
    "signed_in_actor",
]
