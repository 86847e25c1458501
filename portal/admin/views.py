"""Administration pages: accounts, care teams and clinic settings. Never clinical content.

Each view parses the request, runs one service verb in a unit of work (`portal.web.forms`),
then redirects (303) or renders. A refused change shows the service's message on its form
field, or as a flash when it is about the whole request, and re-renders with status 422.
The rules (who may be deactivated, who gets an activation code, who joins a care team) live
in `portal.services.accounts` and `portal.services.settings`, where the JSON API finds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.access import MAX_ID, get_or_404
from portal.admin import bp
from portal.admin.forms import (
    AssignForm,
    CategoryRulesForm,
    EditPatientForm,
    EditUserForm,
    NewPatientForm,
    NewStaffForm,
    PolicyForm,
    RetentionForm,
)
from portal.audit import audit_exempt, audited
from portal.extensions import db
from portal.models import (
    AuditAction,
    CareAssignmentRequest,
    Entity,
    PatientProfile,
    ReleaseMode,
    Role,
    User,
)
from portal.services import account_admin, accounts, recovery, settings
from portal.services import patients as roster
from portal.web.forms import run, submit
from portal.web.htmx import render
from portal.web.identity import current_actor
from portal.web.lists import answer, page_of

Page = str | tuple[str, int] | Response


def _see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)


# --- Patients and care teams ---------------------------------------------------------------------


@bp.get("/patients")
@audited(AuditAction.VIEW, Entity.PATIENT_LIST)
def patients() -> Page:
    actor, q = current_actor(), (request.args.get("q") or "").strip()[:100]
    page, refused = page_of(lambda cursor: roster.search(db.session, actor, q, cursor=cursor))
    body = render("admin/patients.html", fragment="patient_list", page=page, q=q, refused=refused)
    return answer(body, refused)


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


def _patient_form_page(patient_id: int, form: EditPatientForm | None, status: int) -> Page:
    patient = get_or_404(db.session, PatientProfile, patient_id, current_actor())
    form = form or EditPatientForm(formdata=None, obj=patient)
    body = render("admin/edit_patient.html", patient=patient, form=form)
    return (body, status) if status != 200 else body


@bp.route("/patients/<int:patient_id>/edit", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE, id_arg="patient_id")
def edit_patient(patient_id: int) -> Page:
    if request.method == "GET":
        return _patient_form_page(patient_id, None, 200)
    actor, form = current_actor(), EditPatientForm()
    done = submit(
        form,
        lambda s: account_admin.edit_patient(
            s,
            actor,
            patient_id,
            medical_record_number=form.medical_record_number.data or "",
            display_name=form.display_name.data or "",
            date_of_birth=form.date_of_birth.data,
            primary_clinic=form.primary_clinic.data,
            contact_email=form.contact_email.data,
            contact_phone=form.contact_phone.data,
        ),
    )
    if not done.ok:
        return _patient_form_page(patient_id, form, 422)
    flash(_("The patient's details are saved."), "success")
    return _see_other("admin.care_team", patient_id=patient_id)


@bp.post("/patients/<int:patient_id>/access-reset")
@audit_exempt  # accounts.reset_patient_access records it; every answer is a redirect or a 404
def reset_access(patient_id: int) -> Response:
    actor, portal_url = current_actor(), _portal_url()

    def reset(s: Session) -> None:
        patient = get_or_404(s, PatientProfile, patient_id, actor)
        accounts.reset_patient_access(s, actor, patient, portal_url=portal_url)

    if run(reset).ok:
        flash(
            _(
                "Their password, sessions and apps have ended; a new activation code was emailed "
                "to their contact address."
            ),
            "success",
        )
    return _see_other("admin.care_team", patient_id=patient_id)


def _care_team_page(patient_id: int, form: AssignForm | None = None, status: int = 200) -> Page:
    team = accounts.care_team_screen(db.session, current_actor(), patient_id)
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
@audited(AuditAction.VIEW, Entity.CARE_TEAM, id_arg="patient_id")
def care_team(patient_id: int) -> Page:
    return _care_team_page(patient_id)


@bp.post("/patients/<int:patient_id>/care-team")
# A refusal re-renders the care team page (the patient's name, MRN, date of birth) with 422:
# that response is a read of the patient's record. A success redirects and records no read;
# assign_provider records the change.
@audited(AuditAction.VIEW, Entity.CARE_TEAM, id_arg="patient_id")
def assign(patient_id: int) -> Page:
    actor = current_actor()
    form = AssignForm()
    team = accounts.care_team_screen(db.session, actor, patient_id)
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
            _(
                "You brought this provider's account in, so another administrator must confirm "
                "the assignment. It waits below."
            ),
            "info",
        )
    else:
        flash(_("The provider was added to the care team."), "success")
    return _see_other("admin.care_team", patient_id=patient_id)


def _decide(patient_id: int, request_id: int, *, confirm: bool) -> Page:
    actor = current_actor()

    def decide(s: Session) -> None:
        patient = get_or_404(s, PatientProfile, patient_id, actor)
        accounts.decide_assignment(
            s, actor, patient_id=patient.id, request_id=request_id, confirm=confirm
        )

    if run(decide).ok:
        done = _("The provider was added to the care team.") if confirm else _("It is cancelled.")
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
        flash(_("The provider was removed from the care team."), "success")
    return _see_other("admin.care_team", patient_id=patient_id)


# --- Staff accounts ------------------------------------------------------------------------------


@bp.get("/users")
@audited(AuditAction.VIEW, Entity.USER_LIST)  # patients' names and addresses
def users() -> Page:
    actor, q = current_actor(), (request.args.get("q") or "").strip()[:100]
    page, refused = page_of(
        lambda cursor: account_admin.search_users(db.session, actor, q, cursor=cursor)
    )
    body = render("admin/users.html", fragment="user_list", page=page, q=q, refused=refused)
    return answer(body, refused)


def _account_page(user_id: int, form: EditUserForm | None = None, status: int = 200) -> Page:
    config = current_app.config
    found = account_admin.account_screen(
        db.session,
        current_actor(),
        user_id,
        idle=config["SESSION_IDLE_TIMEOUT"],
        absolute=config["SESSION_ABSOLUTE_TIMEOUT"],
    )
    user = found.user
    if form is None:
        form = EditUserForm(formdata=None, obj=user.provider, email=user.email)
    body = render("admin/user.html", account=found, user=user, form=form)
    return (body, status) if status != 200 else body


@bp.get("/users/<int:user_id>")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT, id_arg="user_id")
def user(user_id: int) -> Page:
    return _account_page(user_id)


@bp.post("/users/<int:user_id>")
# A refusal re-renders the account (a patient's name and address): a recorded read.
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT, id_arg="user_id")
def edit_user(user_id: int) -> Page:
    actor, form = current_actor(), EditUserForm()
    done = submit(
        form,
        lambda s: account_admin.edit_user(
            s,
            actor,
            user_id,
            email=form.email.data or "",
            display_name=form.display_name.data,
            specialty=form.specialty.data,
            clinic=form.clinic.data,
        ),
    )
    if not done.ok:
        return _account_page(user_id, form, 422)
    flash(_("The account is saved."), "success")
    return _see_other("admin.user", user_id=user_id)


def _on_account(user_id: int, change: Callable[[Session], object], said: str) -> Response:
    """Run one change to the account; its page again, with `said` or the refusal flashed."""
    if run(change).ok:
        flash(said, "success")
    return _see_other("admin.user", user_id=user_id)


@bp.post("/users/<int:user_id>/password-reset")
@audit_exempt  # recovery.send_reset records it; every answer is a redirect or a 404
def send_password_reset(user_id: int) -> Response:
    actor, portal_url = current_actor(), _portal_url()

    def send(s: Session) -> None:
        user = account_admin.user_or_404(s, actor, user_id)
        recovery.send_reset(s, actor, user, portal_url=portal_url)

    return _on_account(user_id, send, _("A link to set a new password was emailed to them."))


@bp.post("/users/<int:user_id>/invitation")
@audit_exempt  # accounts.resend_invitation records it; every answer is a redirect or a 404
def resend_invitation(user_id: int) -> Response:
    actor, portal_url = current_actor(), _portal_url()

    def send(s: Session) -> None:
        user = account_admin.user_or_404(s, actor, user_id)
        accounts.resend_invitation(s, actor, user, portal_url=portal_url)

    return _on_account(user_id, send, _("A new invitation was emailed; the earlier link ended."))


@bp.post("/users/<int:user_id>/unlock")
@audit_exempt  # account_admin.clear_pause records it; every answer is a redirect or a 404
def unlock_user(user_id: int) -> Response:
    actor = current_actor()
    return _on_account(
        user_id,
        lambda s: account_admin.clear_pause(s, actor, user_id),
        _("The sign-in pause is cleared."),
    )


@bp.post("/users/<int:user_id>/sessions/<int:session_id>/end")
@audit_exempt  # account_admin.end_sessions records it; every answer is a redirect or a 404
def end_user_session(user_id: int, session_id: int) -> Response:
    actor = current_actor()
    return _on_account(
        user_id,
        lambda s: account_admin.end_sessions(s, actor, user_id, session_id),
        _("That session is ended."),
    )


@bp.post("/users/<int:user_id>/sessions/end-all")
@audit_exempt  # account_admin.end_sessions records it; every answer is a redirect or a 404
def end_user_sessions(user_id: int) -> Response:
    actor = current_actor()
    return _on_account(
        user_id,
        lambda s: account_admin.end_sessions(s, actor, user_id, None),
        _("Every session and app of this account is signed out."),
    )


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
        flash(_("%(email)s is deactivated; their sessions have ended.", email=email), "success")
    return _see_other("admin.users")


@bp.post("/users/<int:user_id>/reactivate")
@audit_exempt  # set_active records it; every answer is a redirect or a 404
def reactivate_user(user_id: int) -> Page:
    email = _set_active(user_id, active=True)
    if email is not None:
        flash(_("%(email)s is active again.", email=email), "success")
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
    flash(_("The message retention period is saved."), "success")
    return _see_other("admin.clinic_settings")


@bp.route("/release-policy", methods=["GET", "POST"])
@audit_exempt  # settings records changes; the page shows no PHI
def release_policy() -> Page:
    form = PolicyForm()
    # The names are in the catalogs (templates/admin/release_policy.html lists them).
    form.category.choices = [SelectChoice(c, _(c.capitalize())) for c in settings.categories()]
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
            flash(
                _(
                    "The release policy for %(category)s results is saved.",
                    category=form.category.data,
                ),
                "success",
            )
            return _see_other("admin.release_policy")
        status = 422
    return _policy_page(form, CategoryRulesForm(), status)


def _policy_page(form: PolicyForm, rules: CategoryRulesForm, status: int) -> Page:
    form.category.choices = [SelectChoice(c, _(c.capitalize())) for c in settings.categories()]
    rules_on = settings.category_rules_on(db.session)
    if not rules.is_submitted():
        rules.apply.data = rules_on
    policies = settings.release_policies(db.session)
    return render(
        "admin/release_policy.html",
        form=form,
        rules=rules,
        rules_on=rules_on,
        policies=policies,
    ), status


@bp.post("/release-policy/rules")
@audit_exempt  # settings records changes; the page shows no PHI
def category_rules() -> Page:
    rules = CategoryRulesForm()
    actor = current_actor()
    done = submit(rules, lambda s: settings.set_category_rules(s, actor, bool(rules.apply.data)))
    if done.ok:
        flash(
            _("The category rules now apply.")
            if rules.apply.data
            else _("The category rules are off: results reach patients when published."),
            "success",
        )
        return _see_other("admin.release_policy")
    return _policy_page(PolicyForm(), rules, 422)
