"""Administration pages."""

from __future__ import annotations

from sqlalchemy import select

from portal.access import scope_patients
from portal.admin import bp
from portal.audit import audited
from portal.auth.sessions import current_actor
from portal.extensions import db
from portal.models import AuditAction, PatientProfile, User
from portal.web.htmx import render


@bp.get("/patients")
@audited(AuditAction.VIEW, "patient_list")
def patients() -> str:
    stmt = select(PatientProfile).order_by(PatientProfile.display_name).limit(50)
    rows = db.session.scalars(scope_patients(stmt, current_actor())).all()
    return render("admin/patients.html", patients=rows)


@bp.get("/users")
@audited(AuditAction.VIEW, "user_list")
def users() -> str:
    rows = db.session.scalars(select(User).order_by(User.email).limit(50)).all()
    return render("admin/users.html", users=rows)


@bp.get("/audit")
@audited(AuditAction.VIEW, "audit_log")
def audit_log() -> str:
    return render("admin/audit_log.html")
