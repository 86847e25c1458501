"""Sign in, sign out, patient activation and staff invitations."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import audit
from portal.audit import audit_exempt
from portal.auth.forms import ActivateForm, InvitationForm, LoginForm
from portal.auth.passwords import verify_password
from portal.auth.sessions import end_session, start_session
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditOutcome, Role, User
from portal.services import accounts
from portal.web.htmx import render

bp = Blueprint("auth", __name__)

FAILED = "That email and password do not match an active account."


def home_for(user: User) -> str:
    return url_for(
        {Role.PATIENT: "patient.dashboard", Role.PROVIDER: "staff.patients"}.get(
            user.role, "admin.patients"
        )
    )


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.get("/")
@audit_exempt
def index() -> Response:
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@audit_exempt  # records sign_in and sign_in_failed itself
def login() -> Response | tuple[str, int] | str:
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if session.pop("expired", False):
        flash("You were signed out after a period of inactivity. Please sign in again.", "info")
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("auth/login.html", form=form), status
    s = db.session
    user = accounts.find_user_by_email(s, form.email.data or "")
    now = utcnow()
    locked = user is not None and user.locked_until is not None and user.locked_until > now
    ok, new_hash = verify_password(user.password_hash if user else None, form.password.data or "")
    if user is None or not ok or locked or not user.is_active:
        if user is not None and not locked:
            user.failed_logins += 1
            if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
                user.locked_until = now + current_app.config["LOGIN_LOCKOUT"]
                user.failed_logins = 0
        audit.record(
            s,
            actor_id=user.id if user else None,
            actor_role=str(user.role) if user else None,
            action=AuditAction.SIGN_IN_FAILED,
            entity_type="user_account",
            entity_id=user.id if user else None,
            outcome=AuditOutcome.DENIED,
            detail={"reason": "locked" if locked else "credentials"},
        )
        s.commit()
        form.password.errors = [FAILED if not locked else _locked_message()]
        return render("auth/login.html", form=form), 422
    if new_hash:
        user.password_hash = new_hash
    user.failed_logins = 0
    user.locked_until = None
    user.previous_login_at = user.last_login_at
    user.last_login_at = now
    audit.record(
        s,
        actor_id=user.id,
        actor_role=str(user.role),
        action=AuditAction.SIGN_IN,
        entity_type="user_account",
        entity_id=user.id,
        patient_id=user.patient.id if user.patient else None,
    )
    s.commit()
    start_session(user)
    return redirect(_safe_next(request.args.get("next")) or home_for(user), code=303)


def _locked_message() -> str:
    minutes = int(current_app.config["LOGIN_LOCKOUT"] / timedelta(minutes=1))
    return f"{FAILED} After several failed attempts, sign-in is paused for {minutes} minutes."


@bp.post("/logout")
@audit_exempt
def logout() -> Response:
    if current_user.is_authenticated:  # CSRFProtect has checked the token
        s = db.session
        audit.record(
            s,
            actor_id=current_user.id,
            actor_role=str(current_user.role),
            action=AuditAction.SIGN_OUT,
            entity_type="user_account",
            entity_id=current_user.id,
            patient_id=current_user.patient.id if current_user.patient else None,
        )
        s.commit()
    end_session()
    flash("You are signed out.", "success")
    response = redirect(url_for("auth.login"), code=303)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.route("/activate", methods=["GET", "POST"])
@audit_exempt  # the service records the activation
def activate() -> Response | tuple[str, int] | str:
    form = ActivateForm()
    if form.validate_on_submit():
        s = db.session
        try:
            accounts.activate_patient(
                s,
                code=form.code.data or "",
                email=form.email.data or "",
                password=form.password.data or "",
                date_of_birth=form.date_of_birth.data,
            )
        except accounts.AccountError as exc:
            s.rollback()
            field = getattr(form, exc.field, form.code)
            field.errors = [*field.errors, exc.message]
        else:
            s.commit()
            flash("Your account is ready. Please sign in.", "success")
            return redirect(url_for("auth.login"), code=303)
    status = 422 if request.method == "POST" else 200
    return render("auth/activate.html", form=form), status


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@audit_exempt
def invitation(token: str) -> Response | tuple[str, int] | str:
    form = InvitationForm()
    if form.validate_on_submit():
        s = db.session
        try:
            accounts.accept_invitation(s, token=token, password=form.password.data or "")
        except accounts.AccountError as exc:
            s.rollback()
            field = form.password if exc.field == "password" else None
            if field is None:
                flash(exc.message, "error")
            else:
                field.errors = [*field.errors, exc.message]
        else:
            s.commit()
            flash("Your password is set. Please sign in.", "success")
            return redirect(url_for("auth.login"), code=303)
    status = 422 if request.method == "POST" else 200
    return render("auth/invitation.html", form=form), status
