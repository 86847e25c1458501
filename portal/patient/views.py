"""Patient pages. Views translate HTTP to service calls; rules live in portal.services."""

from __future__ import annotations

from flask_login import current_user

from portal.audit import audited
from portal.auth.sessions import current_actor
from portal.extensions import db
from portal.models import AuditAction
from portal.patient import bp
from portal.services import labs
from portal.web.htmx import render


@bp.get("/")
@audited(AuditAction.VIEW, "dashboard")
def dashboard() -> str:
    actor = current_actor()
    recent = labs.list_latest(db.session, actor, limit=5)
    return render("patient/dashboard.html", recent=recent, user=current_user)
