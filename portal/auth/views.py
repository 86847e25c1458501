"""Sign in and out, patient activation, staff invitations, and one's own account: password
and signed-in devices (for every role)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from portal.audit import audit_exempt, audited
from portal.auth.forms import (
    ActivateForm,
    ChangePasswordForm,
    EmptyForm,
    ForgotPasswordForm,
    InvitationForm,
    LoginForm,
    ProviderMailForm,
    ResetPasswordForm,
    TimeZoneForm,
)
from portal.db import utcnow
from portal.extensions import db, login_manager
from portal.models import AuditAction, Entity, Role, User
from portal.services import accounts, profiles, recovery, sessions
from portal.web import identity
from portal.web.forms import run, submit
from portal.web.htmx import render
from portal.web.redirects import local_path

bp = Blueprint("auth", __name__)

Page = str | tuple[str, int] | Response

HOME = {Role.PATIENT: "patient.dashboard", Role.PROVIDER: "staff.patients"}


def home_for(role: Role) -> str:
    return url_for(HOME.get(role, "admin.patients"))


#: The Flask session key of a sign-in whose password was right and whose code is awaited.
PENDING_KEY = "pending_sign_in"
#: How long the code step waits after the password, in seconds.
PENDING_SECONDS = 300


def await_code(user: User, next_target: str | None) -> Response:
    """After the right password of an account with two-step sign-in: remember who is half-way
    through (in the signed cookie, for a few minutes), and ask for the code."""
    session[PENDING_KEY] = {
        "user": user.id,
        "until": int(utcnow().timestamp()) + PENDING_SECONDS,
        "next": local_path(next_target),
    }
    return redirect(url_for("auth.login_code"), code=303)


@bp.get("/")
@audit_exempt
def index() -> Response:
    actor = identity.signed_in_actor()
    return redirect(home_for(actor.role) if actor else url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@audit_exempt  # records sign_in and sign_in_failed itself
def login() -> Page:
    actor = identity.signed_in_actor()
    if actor is not None:
        return redirect(home_for(actor.role))
    form = LoginForm()
    if session.pop("expired", False):
        flash(_("You were signed out after a period of inactivity. Please sign in again."), "info")
    if not form.validate_on_submit():
        return render("auth/login.html", form=form), 422 if request.method == "POST" else 200
    limits = identity.sign_in_limits()

    def sign_in(s: Session) -> accounts.SignIn:
        attempt = accounts.authenticate(
            s,
            email=form.email.data or "",
            password=form.password.data or "",
            limits=limits,
            client_address=request.remote_addr,
        )
        if attempt.user is not None and not attempt.needs_code:
            identity.begin(attempt.user)
        return attempt

    attempt = run(sign_in).value
    if attempt is None or attempt.user is None:
        refusal = attempt.refusal if attempt and attempt.refusal else accounts.FAILED_SIGN_IN
        form.password.errors = [_(refusal)]
        page = render("auth/login.html", form=form)
        if attempt is not None and attempt.retry_after is not None:
            paused = Response(page, status=429, mimetype="text/html")
            paused.headers["Retry-After"] = str(attempt.retry_after)
            return paused
        return page, 422
    if attempt.needs_code:
        return await_code(attempt.user, request.args.get("next"))
    return redirect(local_path(request.args.get("next")) or home_for(attempt.user.role), code=303)


@bp.post("/logout")
@audit_exempt
def logout() -> Response:
    actor = identity.signed_in_actor()  # CSRFProtect has checked the token
    if actor is not None:
        run(lambda s: sessions.sign_out(s, actor))
    identity.forget()
    flash(_("You are signed out."), "success")
    response = redirect(url_for("auth.login"), code=303)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.route("/activate", methods=["GET", "POST"])
@audit_exempt  # the service records the activation
def activate() -> Page:
    form = ActivateForm()
    limits = identity.sign_in_limits()
    done = submit(
        form,
        lambda s: accounts.activate_patient(
            s,
            code=form.code.data or "",
            email=form.email.data or "",
            password=form.password.data or "",
            date_of_birth=form.date_of_birth.data,
            limits=limits,
            client_address=request.remote_addr,
        ),
    )
    if done.ok:
        flash(_("Your account is ready. Please sign in."), "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/activate.html", form=form), 422 if request.method == "POST" else 200


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@audit_exempt
def invitation(token: str) -> Page:
    form = InvitationForm()
    done = submit(
        form,
        lambda s: accounts.accept_invitation(s, token=token, password=form.password.data or ""),
    )
    if done.ok:
        flash(_("Your password is set. Please sign in."), "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/invitation.html", form=form), 422 if request.method == "POST" else 200


#: The same answer whether or not the address has an account: it must not tell which.
RESET_SENT = _l(
    "If an account uses that address, we have emailed it a link to set a new password. "
    "The link works once, for 30 minutes."
)


@bp.route("/forgot-password", methods=["GET", "POST"])
@audit_exempt  # the service records a link it sends; this page shows nothing of anyone
def forgot_password() -> Page:
    form = ForgotPasswordForm()
    portal_url = current_app.config["PORTAL_URL"]
    done = submit(
        form,
        lambda s: recovery.request_reset(s, email=form.email.data or "", portal_url=portal_url),
    )
    if done.ok:
        flash(str(RESET_SENT), "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/forgot_password.html", form=form), 422 if request.method == "POST" else 200


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@audit_exempt  # the service records the change; the page shows nothing of anyone
def reset_password(token: str) -> Page:
    form = ResetPasswordForm()
    done = submit(
        form,
        lambda s: recovery.reset_password(s, token=token, password=form.password.data or ""),
    )
    if done.ok:
        flash(
            _("Your new password is set and every device was signed out. Please sign in."),
            "success",
        )
        return redirect(url_for("auth.login"), code=303)
    return render("auth/reset_password.html", form=form), 422 if request.method == "POST" else 200


# --- One's own account: every role ---------------------------------------------------------------


@bp.before_request
def _account_needs_sign_in() -> Response | None:
    if (request.endpoint or "").startswith("auth.account") and identity.signed_in_actor() is None:
        response: Response = login_manager.unauthorized()
        return response
    return None


def _account_page(password: ChangePasswordForm | None = None, status: int = 200) -> Page:
    actor = identity.current_actor()
    account = identity.current_account()
    provider = account.provider if account is not None else None
    body = render(
        "auth/account.html",
        account=account,
        devices=sessions.active_for(
            db.session,
            actor,
            idle=current_app.config["SESSION_IDLE_TIMEOUT"],
            absolute=current_app.config["SESSION_ABSOLUTE_TIMEOUT"],
        ),
        current_session=actor.session_id,
        password=password or ChangePasswordForm(prefix="pw"),
        form=EmptyForm(),
        provider_mail=ProviderMailForm(obj=provider) if provider is not None else None,
    )
    return (body, status) if status != 200 else body


@bp.get("/account")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # a patient's own name is on it
def account() -> Page:
    return _account_page()


@bp.post("/account/password")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # a refused change re-renders the account page
def account_password() -> Page:
    form = ChangePasswordForm(prefix="pw")
    if change_own_password(form):
        return redirect(url_for("auth.account"), code=303)
    return _account_page(password=form, status=422)


@bp.post("/account/mail")
@audit_exempt  # the service records the change; the answer is a redirect
def account_mail() -> Response:
    form = ProviderMailForm()
    actor = identity.current_actor()
    if submit(
        form, lambda s: profiles.set_provider_mail(s, actor, messages=bool(form.mail_messages.data))
    ).ok:
        flash(_("Your email choice is saved."), "success")
    return redirect(url_for("auth.account") + "#mail-heading", code=303)


@bp.post("/account/time-zone")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # a refused choice re-renders the account page
def account_time_zone() -> Page:
    form = TimeZoneForm()
    actor = identity.current_actor()
    if submit(form, lambda s: profiles.set_time_zone(s, actor, form.time_zone.data)).ok:
        flash(_("Your time zone is saved."), "success")
        back = "patient.profile" if actor.role is Role.PATIENT else "auth.account"
        return redirect(url_for(back) + "#time-zone", code=303)
    g.time_zone_form = form  # shown with its error on the page (portal.web.templating)
    return _account_page(status=422)


def change_own_password(form: ChangePasswordForm) -> bool:
    """The signed-in person's password change from `form` (the account page's, or a patient's
    profile page's); True when it is done, and every other device is signed out."""
    actor = identity.current_actor()
    limits = identity.sign_in_limits()
    done = submit(
        form,
        lambda s: accounts.change_password(
            s,
            actor,
            current_password=form.current_password.data or "",
            new_password=form.password.data or "",
            limits=limits,
            client_address=request.remote_addr,
        ),
    )
    if done.ok:
        flash(_("Your password is changed. Other devices have been signed out."), "success")
    return done.ok


@bp.post("/account/devices/<int:session_id>/sign-out")
@audit_exempt  # the service records it
def account_end_device(session_id: int) -> Response:
    actor = identity.current_actor()
    if session_id == actor.session_id:
        return logout()
    if run(lambda s: sessions.end_one(s, actor, session_id)).ok:
        flash(_("That device is signed out."), "success")
    return redirect(url_for("auth.account") + "#devices", code=303)


@bp.post("/account/devices/sign-out-others")
@audit_exempt  # the service records it
def account_end_others() -> Response:
    actor = identity.current_actor()
    ended = run(lambda s: sessions.end_others(s, actor)).value or 0
    flash(
        _("Every other device is signed out.") if ended else _("No other device was signed in."),
        "success",
    )
    return redirect(url_for("auth.account") + "#devices", code=303)
