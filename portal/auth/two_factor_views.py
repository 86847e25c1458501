"""Two-step sign-in pages: the code after the password, setting it up on one's account,
recovery codes, turning it off, and the gate that sends staff who must use it to set it up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from portal.audit import audit_exempt, audited
from portal.auth.forms import AppCodeForm, SignInCodeForm, TurnOffForm
from portal.auth.views import PENDING_KEY, Page, bp, home_for
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, Entity, User
from portal.services import accounts, two_factor
from portal.web import doors, identity
from portal.web.forms import Outcome, run, submit
from portal.web.htmx import render


def _pending() -> dict[str, Any] | None:
    found = session.get(PENDING_KEY)
    if not isinstance(found, dict) or found.get("until", 0) < utcnow().timestamp():
        return None
    return found


@bp.route("/login/code", methods=["GET", "POST"])
@audit_exempt  # records sign_in and sign_in_failed itself; shows nothing of anyone
def login_code() -> Page:
    waiting = _pending()
    if waiting is None:
        session.pop(PENDING_KEY, None)
        flash(_("Please sign in again."), "info")
        return redirect(url_for("auth.login"), code=303)
    form = SignInCodeForm()
    if not form.validate_on_submit():
        return render("auth/login_code.html", form=form), 422 if request.method == "POST" else 200
    limits = identity.sign_in_limits()

    def second_step(s: Session) -> accounts.SignIn:
        attempt = accounts.authenticate_code(
            s,
            user_id=waiting["user"],
            code=form.code.data or "",
            limits=limits,
            client_address=request.remote_addr,
        )
        if attempt.user is not None:
            identity.begin(attempt.user)  # clears the pending sign-in with the rest
        return attempt

    attempt = run(second_step).value
    if attempt is None or attempt.user is None:
        form.code.errors = [_(attempt.refusal) if attempt and attempt.refusal else _("Try again.")]
        page = render("auth/login_code.html", form=form)
        if attempt is not None and attempt.retry_after is not None:
            paused = Response(page, status=429, mimetype="text/html")
            paused.headers["Retry-After"] = str(attempt.retry_after)
            return paused
        return page, 422
    return redirect(waiting.get("next") or home_for(attempt.user.role), code=303)


T = TypeVar("T")

# --- One's own account -----------------------------------------------------------------------

#: What someone who must enrol may still reach: the setup itself, signing out, the basics.
_ENROL_OPEN = frozenset(
    {
        "static",
        "auth.logout",
        "auth.login",
        "auth.index",
        "auth.account_two_factor",
        "auth.two_factor_start",
        "auth.two_factor_confirm",
        "health.healthz",
        "health.readyz",
    }
)


@bp.before_app_request
def _enrol_first() -> Response | None:
    """Providers and admins, when the clinic requires it, set up two-step sign-in before
    anything else (pages are sent to the setup, the API and socket are refused)."""
    if not current_app.config["TWO_FACTOR_REQUIRED"] or request.endpoint in _ENROL_OPEN:
        return None
    account = identity.current_account()
    if account is None or not two_factor.must_enrol(account):
        return None
    if doors.speaks_json():
        return doors.refusal(403, "Set up two-step sign-in in the portal first.")
    flash(
        _("Your clinic requires two-step sign-in for your account. Set it up to continue."), "info"
    )
    return redirect(url_for("auth.account_two_factor"), code=303)


def _two_factor_page(
    *,
    confirm: AppCodeForm | None = None,
    renew: AppCodeForm | None = None,
    off: TurnOffForm | None = None,
    codes: list[str] | None = None,
    status: int = 200,
) -> Page:
    account = identity.current_account()
    assert account is not None  # the account area's gate signs people in first
    on = two_factor.is_on(account)
    body = render(
        "auth/two_factor.html",
        account=account,
        on=on,
        required=two_factor.must_enrol(account) or _required_for(account),
        enrolment=None if on or codes else two_factor.pending(db.session, account),
        remaining=two_factor.remaining_recovery_codes(db.session, account.id) if on else 0,
        confirm=confirm or AppCodeForm(prefix="confirm"),
        renew=renew or AppCodeForm(prefix="renew"),
        off=off or TurnOffForm(prefix="off"),
        codes=codes,
    )
    return (body, status) if status != 200 else body


def _required_for(account: User) -> bool:
    return bool(current_app.config["TWO_FACTOR_REQUIRED"]) and (
        account.role in two_factor.REQUIRED_ROLES
    )


@bp.get("/account/two-factor")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # shows the sign-in email
def account_two_factor() -> Page:
    return _two_factor_page()


@bp.post("/account/two-factor/start")
@audit_exempt  # a new secret, not yet on: the page it leads to shows it
def two_factor_start() -> Response:
    actor = identity.current_actor()
    run(lambda s: two_factor.start(s, actor))
    return redirect(url_for("auth.account_two_factor") + "#setup-heading", code=303)


@bp.post("/account/two-factor/confirm")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # a wrong code re-renders the page
def two_factor_confirm() -> Page:
    actor = identity.current_actor()
    form = AppCodeForm(prefix="confirm")
    done = submit(form, lambda s: two_factor.confirm(s, actor, form.code.data or ""))
    if done.ok and done.value:
        flash(_("Two-step sign-in is on. Other devices have been signed out."), "success")
        return _two_factor_page(codes=done.value)
    return _two_factor_page(confirm=form, status=422)


def _checked_code(form: AppCodeForm | TurnOffForm, verb: Callable[..., T]) -> Outcome[T]:
    """`verb` of the signed-in account with the form's code, counted toward the sign-in pause
    from this client's address when wrong."""
    actor, limits = identity.current_actor(), identity.sign_in_limits()
    code, address = form.code.data or "", request.remote_addr
    return submit(form, lambda s: verb(s, actor, code, limits=limits, client_address=address))


@bp.post("/account/two-factor/recovery-codes")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # a wrong code re-renders the page
def two_factor_recovery_codes() -> Page:
    form = AppCodeForm(prefix="renew")
    done = _checked_code(form, two_factor.regenerate)
    if done.ok and done.value:
        flash(_("You have new recovery codes; the old ones no longer work."), "success")
        return _two_factor_page(codes=done.value)
    return _two_factor_page(renew=form, status=422)


@bp.post("/account/two-factor/off")
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)  # a wrong code re-renders the page
def two_factor_off() -> Page:
    form = TurnOffForm(prefix="off")
    if _checked_code(form, two_factor.turn_off).ok:
        flash(_("Two-step sign-in is off. Other devices have been signed out."), "success")
        return redirect(url_for("auth.account_two_factor"), code=303)
    return _two_factor_page(off=form, status=422)
