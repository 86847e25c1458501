"""Administration pages: accounts, care teams and clinic settings. Never clinical content."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.access import get_or_404
from portal.admin import bp
from portal.admin.forms import (
    AssignForm,
    NewPatientForm,
    NewStaffForm,
    PolicyForm,
    RetentionForm,
)
from portal.audit import audit_exempt, audited
from portal.auth.identity import current_actor
from portal.extensions import db
from portal.models import (
    AuditAction,
    CareAssignment,
    PatientProfile,
    ProviderProfile,
    ReleaseMode,
    Role,
    User,
)
from portal.services import accounts, settings
from portal.services import patients as roster
from portal.web.htmx import render

Page = str | tuple[str, int] | Response


def _int_arg(name: str, default: int = 1) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


# --- Patients and care teams ---------------------------------------------------------------------


@bp.get("/patients")
@audited(AuditAction.VIEW, "patient_list")
def patients() -> str:
    page = roster.search(db.session, current_actor(), request.args.get("q"), _int_arg("page"))
    return render("admin/patients.html", fragment="patient_list", page=page)


@bp.route("/patients/new", methods=["GET", "POST"])
@audit_exempt  # accounts.register_patient records the new patient; the form shows no PHI
def new_patient() -> Page:
    form = NewPatientForm()
    if request.method == "GET":
        return render("admin/new_patient.html", form=form)
    if form.validate():
        actor = current_actor()
        try:
            patient = accounts.register_patient(
                db.session,
                actor,
                medical_record_number=form.medical_record_number.data or "",
                display_name=form.display_name.data or "",
                date_of_birth=form.date_of_birth.data,
                primary_clinic=form.primary_clinic.data or None,
                contact_email=form.contact_email.data or None,
            )
            code = accounts.issue_activation_code(db.session, actor, patient)
        except accounts.AccountError as exc:
            db.session.rollback()
            getattr(form, exc.field).errors.append(exc.message)
        else:
            db.session.commit()
            # Shown once, in this response: only the code's hash is stored.
            return render("admin/activation_code.html", patient=patient, code=code, new=True)
    return render("admin/new_patient.html", form=form), 422


@bp.post("/patients/<int:patient_id>/activation-code")
@audit_exempt  # accounts.issue_activation_code records it
def issue_code(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    if patient.user_id is not None:
        flash("This patient has already activated their account.", "error")
        return _see_other("admin.care_team", patient_id=patient.id)
    code = accounts.issue_activation_code(db.session, actor, patient)
    db.session.commit()
    return render("admin/activation_code.html", patient=patient, code=code, new=False)


def _care_team_page(patient_id: int, form: AssignForm | None = None, status: int = 200) -> Page:
    patient = get_or_404(db.session, PatientProfile, patient_id, current_actor())
    team = list(
        db.session.scalars(
            select(ProviderProfile)
            .join(CareAssignment, CareAssignment.provider_id == ProviderProfile.id)
            .where(CareAssignment.patient_id == patient.id, CareAssignment.ended_at.is_(None))
            .order_by(ProviderProfile.display_name)
        )
    )
    on_team = {p.id for p in team}
    others = db.session.scalars(
        select(ProviderProfile)
        .join(User, User.id == ProviderProfile.user_id)
        .where(User.is_active.is_(True))
        .order_by(ProviderProfile.display_name)
    ).all()
    form = form or AssignForm(formdata=None)
    form.provider_id.choices = [
        SelectChoice(str(p.id), p.display_name) for p in others if p.id not in on_team
    ]
    account = (
        db.session.scalar(select(User).where(User.id == patient.user_id))
        if patient.user_id
        else None
    )
    return render(
        "admin/care_team.html", patient=patient, team=team, form=form, account=account
    ), status


@bp.get("/patients/<int:patient_id>/care-team")
@audited(AuditAction.VIEW, "care_team", id_arg="patient_id")
def care_team(patient_id: int) -> Page:
    return _care_team_page(patient_id)


@bp.post("/patients/<int:patient_id>/care-team")
@audit_exempt  # accounts.assign_provider records it
def assign(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    form = AssignForm()
    provider_ids = set(db.session.scalars(select(ProviderProfile.id)))
    form.provider_id.choices = [SelectChoice(str(i), str(i)) for i in provider_ids]
    if not form.validate():
        return _care_team_page(patient.id, form, 422)
    accounts.assign_provider(
        db.session, actor, patient_id=patient.id, provider_id=int(form.provider_id.data)
    )
    db.session.commit()
    flash("The provider was added to the care team.", "success")
    return _see_other("admin.care_team", patient_id=patient.id)


@bp.post("/patients/<int:patient_id>/care-team/<int:provider_id>/remove")
@audit_exempt  # accounts.unassign_provider records it
def unassign(patient_id: int, provider_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    accounts.unassign_provider(db.session, actor, patient_id=patient.id, provider_id=provider_id)
    db.session.commit()
    flash("The provider was removed from the care team.", "success")
    return _see_other("admin.care_team", patient_id=patient.id)


# --- Staff accounts ------------------------------------------------------------------------------


@bp.get("/users")
@audited(AuditAction.VIEW, "user_list")
def users() -> str:
    rows = db.session.scalars(select(User).order_by(User.role, User.email).limit(200)).unique()
    return render("admin/users.html", users=list(rows))


@bp.route("/users/new", methods=["GET", "POST"])
@audit_exempt  # accounts.create_staff records it
def new_user() -> Page:
    form = NewStaffForm()
    if request.method == "GET":
        return render("admin/new_user.html", form=form)
    if form.validate():
        try:
            user, token = accounts.create_staff(
                db.session,
                current_actor(),
                email=form.email.data or "",
                role=Role(form.role.data),
                display_name=form.display_name.data or "",
                specialty=form.specialty.data or None,
                clinic=form.clinic.data or None,
            )
        except accounts.AccountError as exc:
            db.session.rollback()
            getattr(form, exc.field, form.email).errors.append(exc.message)
        else:
            db.session.commit()
            # The link carries the only copy of the token: shown once, here.
            link = url_for("auth.invitation", token=token, _external=True)
            return render("admin/invitation.html", user=user, link=link)
    return render("admin/new_user.html", form=form), 422


def _user_or_404(user_id: int) -> User:
    user = db.session.scalar(select(User).where(User.id == user_id))
    if user is None:
        abort(404)
    return user


@bp.post("/users/<int:user_id>/deactivate")
@audit_exempt  # accounts.set_active records it
def deactivate_user(user_id: int) -> Page:
    user = _user_or_404(user_id)
    if user.id == current_user.id:
        flash("You cannot deactivate your own account.", "error")
        return _see_other("admin.users")
    accounts.set_active(db.session, current_actor(), user, active=False)
    db.session.commit()
    flash(f"{user.email} is deactivated; their sessions have ended.", "success")
    return _see_other("admin.users")


@bp.post("/users/<int:user_id>/reactivate")
@audit_exempt  # accounts.set_active records it
def reactivate_user(user_id: int) -> Page:
    user = _user_or_404(user_id)
    accounts.set_active(db.session, current_actor(), user, active=True)
    db.session.commit()
    flash(f"{user.email} is active again.", "success")
    return _see_other("admin.users")


# --- Clinic settings -----------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@audit_exempt  # settings records changes; the page shows no PHI
def clinic_settings() -> Page:
    form = RetentionForm()
    if request.method == "GET":
        form = RetentionForm(
            formdata=None, data={"retention_days": settings.message_retention_days(db.session)}
        )
        return render("admin/settings.html", form=form)
    if form.validate():
        try:
            settings.set_message_retention_days(
                db.session, current_actor(), form.retention_days.data
            )
        except settings.SettingError as exc:
            db.session.rollback()
            form.retention_days.errors = [*form.retention_days.errors, exc.message]
        else:
            db.session.commit()
            flash("The message retention period is saved.", "success")
            return _see_other("admin.clinic_settings")
    return render("admin/settings.html", form=form), 422


@bp.route("/release-policy", methods=["GET", "POST"])
@audit_exempt  # settings records changes; the page shows no PHI
def release_policy() -> Page:
    form = PolicyForm()
    form.category.choices = [SelectChoice(c, c.capitalize()) for c in settings.categories()]
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                settings.set_release_policy(
                    db.session,
                    current_actor(),
                    category=form.category.data or "",
                    mode=ReleaseMode(form.mode.data),
                    delay_hours=form.delay_hours.data,
                    never_auto_release=bool(form.never_auto_release.data),
                )
            except settings.SettingError as exc:
                db.session.rollback()
                getattr(form, exc.field).errors.append(exc.message)
            else:
                db.session.commit()
                flash(f"The release policy for {form.category.data} results is saved.", "success")
                return _see_other("admin.release_policy")
        status = 422
    return render(
        "admin/release_policy.html", form=form, policies=settings.release_policies(db.session)
    ), status
