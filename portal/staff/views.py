"""Provider pages. Views translate HTTP to service calls; rules live in portal.services."""

from __future__ import annotations

from sqlalchemy import select

from portal.access import scope_patients
from portal.audit import audited
from portal.auth.sessions import current_actor
from portal.extensions import db
from portal.models import AuditAction, PatientProfile
from portal.staff import bp
from portal.web.htmx import render


@bp.get("/patients")
@audited(AuditAction.VIEW, "patient_list")
def patients() -> str:
    stmt = select(PatientProfile).order_by(PatientProfile.display_name).limit(50)
    rows = db.session.scalars(scope_patients(stmt, current_actor())).all()
    return render("staff/patients.html", patients=rows)
