"""`GET /ws` (docs/events.md): the signed-in user's events, as ids, the moment they commit.

The third door into the same rooms: the session cookie and its validity rule (`identity`,
`sessions`), the scoped read of `access.py` (`notifications.events_after`), nothing else.
The handshake is refused before the upgrade for a foreign `Origin` (403) or without a valid
session (401). A socket holds no database connection while it waits.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.exceptions import Forbidden

from portal.access import MAX_ID, Actor
from portal.audit import audit_exempt
from portal.db import finish
from portal.extensions import db
from portal.models import EventType
from portal.realtime.bus import Bus, Subscription
from portal.services import messaging, notifications
from portal.transactions import unit_of_work
from portal.web import doors, identity

bp = Blueprint("realtime", __name__)
sock = Sock()

#: Close codes the page's client understands (`web.doors`): the session ended (don't
#: reconnect), and a failure on the server (reconnect later).
SESSION_ENDED = doors.close_code(401)
INTERNAL_ERROR = doors.close_code(500)

log = logging.getLogger(__name__)


def bus() -> Bus:
    found: Bus = current_app.extensions["portal.bus"]
    return found


@bp.before_request
def _handshake_gate() -> None:
    """Refuse before upgrading: a page on another site must not open a socket with the user's
    cookie (cross-site WebSocket hijacking), and nobody signed out gets one."""
    origin = request.headers.get("Origin", "")
    if urlsplit(origin).netloc.lower() != request.host.lower():
        raise Forbidden("Cross-origin sockets are refused.")
    identity.current_actor()  # 401 without a valid session


def _after(raw: str | None) -> int | None:
    """The last event id the client saw (`?after=`), or None to start from now."""
    if raw is None or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


@sock.route("/ws", bp=bp)
@audit_exempt  # ids only; what they point to is read through the audited pages
def events_socket(ws: Any) -> None:
    actor = identity.current_actor()
    assert actor.session_id is not None  # a cookie session: tokens never reach /ws
    config = current_app.config
    recheck = config["REALTIME_RECHECK_INTERVAL"]
    replay_max = config["REALTIME_REPLAY_MAX"]
    after = _after(request.args.get("after"))
    if after is None:
        after = notifications.latest_event_id(db.session)
    sub = bus().subscribe(actor.user_id, actor.session_id)
    try:
        after = _catch_up(ws, actor, after, replay_max)
        while ws.connected:
            finish(db.session)  # no connection held while waiting
            woke = sub.wait(recheck)
            if sub.ended:
                ws.close(reason=SESSION_ENDED, message="signed out")
                return
            if woke:
                after = _send_new(ws, actor, after)
    except ConnectionClosed:
        pass
    except Exception:
        # Past the upgrade there is no HTTP error page to send: close the socket properly
        # (the page reconnects and catches up) instead of writing a 500 into the stream.
        log.exception("event socket failed")
        ws.close(reason=INTERNAL_ERROR, message="server error")
    finally:
        bus().unsubscribe(sub)
        finish(db.session)


def _catch_up(ws: Any, actor: Actor, after: int, replay_max: int) -> int:
    """Replay what the client missed, or tell it to reload when that is too much."""
    missed = notifications.events_after(db.session, actor, after, limit=replay_max + 1)
    if len(missed) > replay_max:
        ws.send(json.dumps({"type": "reload"}))
        return notifications.latest_event_id(db.session)
    for event in missed:
        ws.send(json.dumps(event.payload()))
    _delivered(actor, missed)
    return missed[-1].event_id if missed else after


def _send_new(ws: Any, actor: Actor, after: int, batch: int = 100) -> int:
    while True:
        events = notifications.events_after(db.session, actor, after, limit=batch)
        for event in events:
            ws.send(json.dumps(event.payload()))
            after = event.event_id
        _delivered(actor, events)
        if len(events) < batch:
            return after


def _delivered(actor: Actor, sent: list[notifications.Event]) -> None:
    """The socket carried news of these threads' messages to their recipient: delivered."""
    threads = sorted({e.entity_id for e in sent if e.type is EventType.MESSAGE_CREATED})
    if threads:
        with unit_of_work() as s:
            messaging.mark_delivered(s, actor.user_id, threads)


def init_app(app: Flask) -> None:
    from portal.realtime.views import bp as live_bp

    app.extensions["portal.bus"] = Bus(app)
    app.register_blueprint(bp)
    app.register_blueprint(live_bp)


__all__ = ["SESSION_ENDED", "Subscription", "bus", "init_app"]
