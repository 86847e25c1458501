"""What a page fetches when its socket says something happened: the nav's unread badge, with
the one sentence to announce. The socket carried ids only; the words come from here, read
from the reader's own notification and audited like any other view of it."""

from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import NotFound

from portal.audit import Subject, audited
from portal.extensions import db
from portal.models import AuditAction, Entity
from portal.services import notifications
from portal.web.audit_reads import shows
from portal.web.identity import current_actor

bp = Blueprint("live", __name__)


@bp.get("/events/<int:event_id>")
@audited(AuditAction.VIEW, Entity.NOTIFICATION, id_arg="event_id")
def event_badge(event_id: int) -> str:
    actor = current_actor()
    found = notifications.own_event(db.session, actor, event_id)  # `<int:>` is bounded app-wide
    if found is None:
        raise NotFound()
    shows(Subject(Entity.NOTIFICATION, found.id, found.patient_id))
    return render_template("_nav_badge.html", announce=found.text)
