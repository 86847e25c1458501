"""Administration pages: accounts, care teams and clinic settings. Never clinical content.

Each view parses the request, runs one service verb in a unit of work (`portal.web.forms`),
then redirects (303) or renders. A refused change shows the service's message on its form
field, or as a flash when it is about the whole request, and re-renders with status 422.
The rules (who may be deactivated, who gets an activation code, who joins a care team) live
in `portal.services.accounts` and `portal.services.settings`, where the JSON API finds them.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.access import MAX_ID, get_or_404
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
    CareAssignmentRequest,
    PatientProfile,
    ReleaseMode,
    Role,
    User,
)
from portal.services import accounts, settings
from portal.services import patients as roster
from portal.web.forms import run, submit
from portal.web.htmx import render
from portal.web.lists import page_of

Page = str | tuple[str, int] | Response


def _see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


# --- Patients and care teams ---------------------------------------------------------------------


@bp.get("/patients")
@audited(AuditAction.VIEW, "patient_list")
def patients() -> Page:
    actor, q = current_actor(), (request.args.get("q") or "").strip()[:100]
    page, refused = page_of(lambda cursor: roster.search(db.session, actor, q, cursor=cursor))
    body = render("admin/patients.html", fragment="patient_list", page=page, q=q, refused=refused)
    return (body, 422) if refused else body


def _portal_url() -> str:
    """The base of links in mail: the configured external address, never the request's Host."""
    return str(current_app.config["PORTAL_URL"])


@bp.route("/patients/new", methods=["GET", "POST"])
# The page after shows only what the admin typed; register_patient and issue_activation_code
# record the new patient and the mailed code, naming the patient, in the same request.
@audit_exempt
def new_patient() -> Page:
    form = NewPatientForm()
    if request.method == "GET":
        return render("admin/new_patient.html", form=form)
    actor, portal_url = current_actor(), _portal_url()

    def register(s: Session) -> PatientProfile:
        patient = accounts.register_patient(
            s,
            actor,
            medical_record_number=form.medical_record_number.data or "",
            display_name=form.display_name.data or "",
            date_of_birth=form.date_of_birth.data,
            primary_clinic=form.primary_clinic.data or None,
            contact_email=form.contact_email.data or None,
        )
        if patient.contact_email:
            accounts.issue_activation_code(s, actor, patient, portal_url=portal_url)
        return patient

    done = submit(form, register)
    if done.value is None:
        return render("admin/new_patient.html", form=form), 422
    # The code went to the patient's own address; this page never shows it.
    return render("admin/activation_code.html", patient=done.value, new=True)


@bp.post("/patients/<int:patient_id>/activation-code")
@audit_exempt  # issue_activation_code records it, naming the patient; a refusal redirects
def issue_code(patient_id: int) -> Page:
    actor, portal_url = current_actor(), _portal_url()

    def issue(s: Session) -> PatientProfile:
        patient = get_or_404(s, PatientProfile, patient_id, actor)
        accounts.issue_activation_code(s, actor, patient, portal_url=portal_url)
        return patient

    done = run(issue)  # an activated patient, no address: the service's refusal is flashed
    if done.value is None:
        return _see_other("admin.care_team", patient_id=patient_id)
    return render("admin/activation_code.html", patient=done.value, new=False)


def _care_team_page(patient_id: int, form: AssignForm | None = None, status: int = 200) -> Page:
    team = accounts.care_team(db.session, current_actor(), patient_id)
    form = form or AssignForm(formdata=None)
    form.provider_id.choices = [SelectChoice(str(p.id), p.display_name) for p in team.candidates]
    page = render(
        "admin/care_team.html",
        patient=team.patient,
        team=team.members,
        form=form,
        account=team.account,
        pending=team.pending,
    )
    return page, status


@bp.get("/patients/<int:patient_id>/care-team")
@audited(AuditAction.VIEW, "care_team", id_arg="patient_id")
def care_team(patient_id: int) -> Page:
    return _care_team_page(patient_id)


@bp.post("/patients/<int:patient_id>/care-team")
# A refusal re-renders the care team page (the patient's name, MRN, date of birth) with 422:
# that response is a read of the patient's record. A success redirects and records no read;
# assign_provider records the change.
@audited(AuditAction.VIEW, "care_team", id_arg="patient_id")
def assign(patient_id: int) -> Page:
    actor = current_actor()
    form = AssignForm()
    team = accounts.care_team(db.session, actor, patient_id)
    # Offered choices only; assign_provider says the same of any other provider.
    form.provider_id.choices = [SelectChoice(str(p.id), p.display_name) for p in team.candidates]
    done = submit(
        form,
        lambda s: accounts.assign_provider(
            s, actor, patient_id=team.patient.id, provider_id=int(form.provider_id.data)
        ),
    )
    if not done.ok:
        return _care_team_page(patient_id, form, 422)
    if isinstance(done.value, CareAssignmentRequest):
        flash(
            "You brought this provider's account in, so another administrator must confirm "
            "the assignment. It waits below.",
            "info",
        )
    else:
        flash("The provider was added to the care team.", "success")
    return _see_other("admin.care_team", patient_id=patient_id)


def _decide(patient_id: int, request_id: int, *, confirm: bool) -> Page:
    actor = current_actor()

    def decide(s: Session) -> None:
        patient = get_or_404(s, PatientProfile, patient_id, actor)
        accounts.decide_assignment(
            s, actor, patient_id=patient.id, request_id=request_id, confirm=confirm
        )

    if run(decide).ok:
        done = "The provider was added to the care team." if confirm else "It is cancelled."
        flash(done, "success")
    return _see_other("admin.care_team", patient_id=patient_id)


@bp.post("/patients/<int:patient_id>/care-team/requests/<int:request_id>/confirm")
@audit_exempt  # decide_assignment records it; every answer is a redirect or a 404
def confirm_assignment(patient_id: int, request_id: int) -> Page:
    return _decide(patient_id, request_id, confirm=True)


@bp.post("/patients/<int:patient_id>/care-team/requests/<int:request_id>/cancel")
@audit_exempt  # decide_assignment records it; every answer is a redirect or a 404
def cancel_assignment(patient_id: int, request_id: int) -> Page:
    return _decide(patient_id, request_id, confirm=False)


@bp.post("/patients/<int:patient_id>/care-team/<int:provider_id>/remove")
@audit_exempt  # unassign_provider records it; every answer is a redirect or a 404
def unassign(patient_id: int, provider_id: int) -> Page:
    actor = current_actor()

    def remove(s: Session) -> None:
        patient = get_or_404(s, PatientProfile, patient_id, actor)
        accounts.unassign_provider(s, actor, patient_id=patient.id, provider_id=provider_id)

    if run(remove).ok:
        flash("The provider was removed from the care team.", "success")
    return _see_other("admin.care_team", patient_id=patient_id)


# --- Staff accounts ------------------------------------------------------------------------------


@bp.get("/users")
@audited(AuditAction.VIEW, "user_list")
def users() -> str:
    rows = db.session.scalars(select(User).order_by(User.role, User.email).limit(200)).unique()
    return render("admin/users.html", users=list(rows))


@bp.route("/users/new", methods=["GET", "POST"])
@audit_exempt  # create_staff records it; the page shows no patient
def new_user() -> Page:
    form = NewStaffForm()
    if request.method == "GET":
        return render("admin/new_user.html", form=form)
    actor, portal_url = current_actor(), _portal_url()
    done = submit(
        form,
        lambda s: accounts.create_staff(
            s,
            actor,
            email=form.email.data or "",
            role=Role(form.role.data),
            display_name=form.display_name.data or "",
            specialty=form.specialty.data or None,
            clinic=form.clinic.data or None,
            portal_url=portal_url,
        ),
    )
    if done.value is None:
        return render("admin/new_user.html", form=form), 422
    user, _token = done.value
    # The link went to the new account's own address; this page never shows it.
    return render("admin/invitation.html", user=user)


def _user_or_404(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        abort(404)
    return user


def _set_active(user_id: int, *, active: bool) -> str | None:
    """Run `accounts.set_active`; the account's email when it was done, None when refused
    (the service's message, e.g. about one's own account, is then flashed)."""
    actor = current_actor()

    def change(s: Session) -> str:
        user = _user_or_404(s, user_id)
        accounts.set_active(s, actor, user, active=active)
        return user.email

    return run(change).value


@bp.post("/users/<int:user_id>/deactivate")
@audit_exempt  # set_active records it; every answer is a redirect or a 404
def deactivate_user(user_id: int) -> Page:
    email = _set_active(user_id, active=False)
    if email is not None:
        flash(f"{email} is deactivated; their sessions have ended.", "success")
    return _see_other("admin.users")


@bp.post("/users/<int:user_id>/reactivate")
@audit_exempt  # set_active records it; every answer is a redirect or a 404
def reactivate_user(user_id: int) -> Page:
    email = _set_active(user_id, active=True)
    if email is not None:
        flash(f"{email} is active again.", "success")
    return _see_other("admin.users")


# --- Clinic settings -----------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@audit_exempt  # settings records changes; the page shows no PHI
def clinic_settings() -> Page:
    if request.method == "GET":
        days = settings.message_retention_days(db.session)
        form = RetentionForm(formdata=None, data={"retention_days": days})
        return render("admin/settings.html", form=form)
    form = RetentionForm()
    actor = current_actor()
    done = submit(
        form, lambda s: settings.set_message_retention_days(s, actor, form.retention_days.data)
    )
    if not done.ok:
        return render("admin/settings.html", form=form), 422
    flash("The message retention period is saved.", "success")
    return _see_other("admin.clinic_settings")


@bp.route("/release-policy", methods=["GET", "POST"])
@audit_exempt  # settings records changes; the page shows no PHI
def release_policy() -> Page:
    form = PolicyForm()
    form.category.choices = [SelectChoice(c, c.capitalize()) for c in settings.categories()]
    status = 200
    if request.method == "POST":
        actor = current_actor()
        done = submit(
            form,
            lambda s: settings.set_release_policy(
                s,
                actor,
                category=form.category.data or "",
                mode=ReleaseMode(form.mode.data),
                delay_hours=form.delay_hours.data,
                never_auto_release=bool(form.never_auto_release.data),
            ),
        )
        if done.ok:
            flash(f"The release policy for {form.category.data} results is saved.", "success")
            return _see_other("admin.release_policy")
        status = 422
    policies = settings.release_policies(db.session)
    return render("admin/release_policy.html", form=form, policies=policies), status
