"""Which door a request came through, decided once, and the refusal each door understands.

The pages (`/`), the JSON API (`/api/`), the event socket (`/ws`) and, to come, the FHIR API
for patients' apps (`/fhir/`) are doors into the same rooms. This is the only module that
looks at a request's path to tell them apart (`tests/test_meta.py` holds every other module
to it): the language, the two-step gate, the audit and the error handlers ask `current()`.
"""

from __future__ import annotations

import logging

from flask import Request, Response, current_app, g, has_request_context, render_template, request
from flask_babel import gettext

from portal.actor import Door
from portal.web.problems import problem

#: What each door's paths begin with; everything else is a page.
_PREFIXES = (("/api/", Door.API), ("/fhir/", Door.FHIR))
SOCKET_PATH = "/ws"

log = logging.getLogger(__name__)

#: The close codes a socket's client understands, by the HTTP status they stand for: the
#: session ended (don't reconnect), a refusal, and a failure on the server (reconnect later).
CLOSE_CODES = {401: 4401, 403: 4403, 500: 1011}


def door_of(req: Request) -> Door:
    """The door `req` came through, from its path."""
    path = req.path
    if path == SOCKET_PATH:
        return Door.SOCKET
    return next((door for prefix, door in _PREFIXES if path.startswith(prefix)), Door.PAGE)


def current() -> Door:
    """The door of this request (a page outside any request: the command line, the worker)."""
    if not has_request_context():
        return Door.PAGE
    door: Door | None = g.get("door")
    if door is None:
        door = g.door = door_of(request)
    return door


def speaks_json() -> bool:
    """Does this door answer in problem+json rather than pages? (The socket's handshake is
    refused before its upgrade, as an HTTP answer read by a program.)"""
    return current() is not Door.PAGE


def refusal(status: int, detail: str | None = None, *, title: str | None = None) -> Response:
    """A refusal in the form the door understands: problem+json for programs, the portal's
    error page for people (`title` and `detail` already in the reader's language)."""
    if speaks_json():
        return problem(status, detail)
    body = render_template(
        "errors/error.html", code=status, title=title or str(status), message=detail or ""
    )
    return current_app.response_class(body, status=status, mimetype="text/html")


def storage_full_refusal() -> Response:
    """507 for a change the database had no room for: problem+json for programs, else a calm
    page. Nothing was saved (the transaction rolled back whole) and nothing more is written
    to say so: this response records no audit entry (it shows no record)."""
    from portal.extensions import login_manager
    from portal.services.errors import StorageFull
    from portal.transactions import discard

    try:
        discard()  # a failed flush outside a unit of work leaves the session refusing reads
    except Exception:  # noqa: BLE001 - nothing of the failed change is kept either way
        log.debug("rollback after a full disk failed", exc_info=True)
    refused = StorageFull()
    if current() is Door.API:
        return problem(refused.status, refused.message)
    if "_login_user" not in g:
        # Resolving who is signed in wrote (a session's "last seen") and failed: the page's
        # layout must not try again.
        g._login_user = login_manager.anonymous_user()
        g.actor = None
    return refusal(
        refused.status, gettext(refused.message), title=gettext("The portal's storage is full")
    )


def close_code(status: int) -> int:
    """The socket close code standing for an HTTP `status` (a failure when unknown)."""
    return CLOSE_CODES.get(status, CLOSE_CODES[500])


__all__ = [
    "CLOSE_CODES",
    "SOCKET_PATH",
    "Door",
    "close_code",
    "current",
    "door_of",
    "refusal",
    "storage_full_refusal",
]
