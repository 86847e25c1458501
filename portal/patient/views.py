"""Patient pages. Views translate HTTP to service calls; rules live in portal.services.

Each view: parse the request, call services (which scope every read through portal.access),
commit once when something changed, then redirect (303) or render. Invalid input re-renders the
form with its errors and status 422. The same URL answers a full page or, for an htmx partial
request, the block the page names (portal.web.htmx.render).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response as BaseResponse
from wtforms.fields.choices import SelectChoice

from portal.access import get_or_404, scope
from portal.audit import audit_exempt, audited, report
from portal.auth.identity import current_actor
from portal.db import utcnow
from portal.extensions import db
from portal.models import (
    Attachment,
    AuditAction,
    Conversation,
    EventType,
    LabResult,
    PlanStatus,
    ReleasePreference,
    TreatmentPlan,
)
from portal.patient import bp
from portal.patient.forms import (
    AppointmentForm,
    ChangePasswordForm,
    EmptyForm,
    NewMessageForm,
    PreferencesForm,
    ReplyForm,
)
from portal.services import (
    accounts,
    attachments,
    labs,
    messaging,
    notifications,
    plans,
    profiles,
    trends,
)
from portal.services import appointments as booking
from portal.services import (
    dashboard as dashboards,
)
from portal.web.downloads import attachment_response
from portal.web.forms import submit
from portal.web.htmx import render

Page = str | tuple[str, int] | BaseResponse


@bp.context_processor
def _helpers() -> dict[str, Any]:
    def attachment_url(attachment: Attachment) -> str:
        """A short-lived download link that only the signed-in user can use."""
        token = attachments.link_token(attachment.id, current_user.id)
        return url_for("patient.attachment", token=token)

    return {"attachment_url": attachment_url, "EventType": EventType}


# --- Dashboard -----------------------------------------------------------------------------------


@bp.get("/")
@audited(AuditAction.VIEW, "dashboard")
def dashboard() -> str:
    data = dashboards.for_patient(db.session, current_actor())
    return render("patient/dashboard.html", fragment="whats_new", data=data, user=current_user)


# --- Lab results ---------------------------------------------------------------------------------


def _parse_date(raw: str | None, label: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[label] = "Enter a date like 2026-01-31."
        return None


@bp.get("/lab-results")
@audited(AuditAction.VIEW, "lab_result_list")
def lab_results() -> Page:
    actor = current_actor()
    args = request.args
    errors: dict[str, str] = {}
    filters = labs.LabFilter(
        test_code=(args.get("test") or "").strip() or None,
        date_from=_parse_date(args.get("from"), "from", errors),
        date_to=_parse_date(args.get("to"), "to", errors),
    )
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["to"] = "The end date must be on or after the start date."
    if errors:
        filters = labs.LabFilter(test_code=filters.test_code)
    cursor = args.get("cursor") or None
    page = labs.latest_page(db.session, actor, filters, cursor=cursor)
    new_ids = dashboards.unread_entity_ids(
        db.session,
        actor.user_id,
        EventType.LAB_RESULT_PUBLISHED,
        [row.result.id for row in page.rows],
    )
    held = labs.held_results(db.session, actor)
    body = render(
        "patient/lab_results.html",
        fragment="results",
        page=page,
        filters=filters,
        raw=args,
        cursor=cursor,
        errors=errors,
        tests=labs.tests_seen(db.session, actor),
        new_ids=new_ids,
        held=held,
    )
    return (body, 422) if errors else body


@bp.get("/lab-results/<int:result_id>")
@audited(AuditAction.VIEW, "lab_result", id_arg="result_id")
def lab_result(result_id: int) -> str:
    actor = current_actor()
    s = db.session
    result = get_or_404(s, LabResult, result_id, actor)
    versions = labs.versions_of(s, actor, result)
    if not versions:
        abort(404)
    current = versions[0]
    people = messaging.users_by_id(
        s, {u for u in (result.ordered_by_id, *(v.published_by_id for v in versions)) if u}
    )
    files = labs.attachments_of(s, actor, [v.id for v in versions])
    trend = trends.trend_for(s, actor, result)
    # Opening a result is reading it: its "new" notifications are read now.
    notifications.mark_read(
        s, actor.user_id, type=EventType.LAB_RESULT_PUBLISHED, entity_id=result.id
    )
    s.commit()
    history = list(zip(versions, [*versions[1:], None], strict=True))
    return render(
        "patient/lab_result.html",
        result=result,
        current=current,
        history=history,
        people=people,
        files=files,
        trend=trend,
    )


@bp.get("/attachments/<token>")
@audited(AuditAction.DOWNLOAD, "attachment")
def attachment(token: str) -> Response:
    return attachment_response(token)


# --- Treatment plans -----------------------------------------------------------------------------


@bp.get("/treatment-plans")
@audited(AuditAction.VIEW, "treatment_plan_list")
def treatment_plans() -> str:
    rows = db.session.scalars(
        scope(
            select(TreatmentPlan).order_by(
                (TreatmentPlan.status == PlanStatus.ACTIVE).desc(),
                TreatmentPlan.completed_at.desc(),
                TreatmentPlan.id.desc(),
            ),
            TreatmentPlan,
            current_actor(),
        )
    ).all()
    active = [p for p in rows if p.status is PlanStatus.ACTIVE]
    done = [p for p in rows if p.status is PlanStatus.COMPLETED]
    return render("patient/treatment_plans.html", active=active, completed=done)


@bp.get("/treatment-plans/<int:plan_id>")
@audited(AuditAction.VIEW, "treatment_plan", id_arg="plan_id")
def treatment_plan(plan_id: int) -> str:
    actor = current_actor()
    s = db.session
    plan = get_or_404(s, TreatmentPlan, plan_id, actor)
    history = plans.history(s, actor, plan)
    versions = [v for v, _ack in history]
    acks = {v.id: ack for v, ack in history if ack is not None}
    current = next((v for v in versions if v.version == plan.current_version), versions[0])
    awaiting = plan.status is PlanStatus.ACTIVE and current.id not in acks
    if not awaiting:
        # Nothing left to do about this plan: its notifications are read.
        notifications.mark_read(
            s, actor.user_id, type=EventType.TREATMENT_PLAN_UPDATED, entity_id=plan.id
        )
        s.commit()
    authors = messaging.users_by_id(s, {v.author_id for v in versions})
    return render(
        "patient/treatment_plan.html",
        plan=plan,
        current=current,
        versions=versions,
        acks=acks,
        awaiting=awaiting,
        authors=authors,
        form=EmptyForm(),
    )


@bp.post("/treatment-plans/<int:plan_id>/acknowledge")
@audit_exempt  # the service records the acknowledgement
def acknowledge_plan(plan_id: int) -> BaseResponse:
    # CSRFProtect has checked the form's token before this view runs.
    s = db.session
    try:
        plans.acknowledge(s, current_actor(), plan_id)
    except plans.PlanError as exc:
        s.rollback()
        flash(exc.message, "error")
    else:
        s.commit()
        flash("Thank you. We recorded that you have read this plan.", "success")
    return redirect(url_for("patient.treatment_plan", plan_id=plan_id), code=303)


# --- Messages ------------------------------------------------------------------------------------


@bp.get("/messages")
@audited(AuditAction.VIEW, "conversation_list")
def messages() -> str:
    threads = messaging.inbox(db.session, current_actor())
    return render("patient/messages.html", threads=threads)


def _uploads(files: list[FileStorage]) -> list[attachments.Upload]:
    return [attachments.Upload(f.filename or "file", f.read()) for f in files if f and f.filename]


def _show_thread(conversation_id: int, form: ReplyForm, status: int = 200) -> Page:
    actor = current_actor()
    s = db.session
    conversation = get_or_404(s, Conversation, conversation_id, actor)
    messaging.mark_thread_read(s, actor, conversation.id)
    s.commit()
    thread = messaging.thread_messages(s, actor, conversation)
    people = messaging.users_by_id(s, set(messaging.participants(s, conversation.id)))
    body = render(
        "patient/conversation.html",
        conversation=conversation,
        thread=thread,
        people=people,
        form=form,
    )
    return (body, status) if status != 200 else body


@bp.get("/messages/<int:conversation_id>")
@audited(AuditAction.VIEW, "conversation", id_arg="conversation_id")
def conversation(conversation_id: int) -> Page:
    return _show_thread(conversation_id, ReplyForm())


@bp.post("/messages/<int:conversation_id>/reply")
@audit_exempt  # the service records the message it sends
def reply(conversation_id: int) -> Page:
    form = ReplyForm()
    s = db.session
    actor = current_actor()
    # Whose thread it is is checked before the form: someone else's thread is simply not there.
    get_or_404(s, Conversation, conversation_id, actor)
    if form.validate_on_submit():
        try:
            message = messaging.reply(
                s,
                actor,
                conversation_id,
                body=form.body.data or "",
                uploads=_uploads(form.attachment.data or []),
                idempotency_key=form.idempotency_key.data or None,
            )
        except (messaging.MessageError, attachments.AttachmentError) as exc:
            s.rollback()
            _add_error(form, exc.field, exc.message)
        else:
            s.commit()
            flash("Message sent.", "success")
            return redirect(
                url_for("patient.conversation", conversation_id=conversation_id)
                + f"#message-{message.id}",
                code=303,
            )
    return _show_thread(conversation_id, form, status=422)


def _add_error(form: Any, field: str, message: str) -> None:
    target = getattr(form, field, None)
    if target is None or field == "csrf_token":
        target = form.body if hasattr(form, "body") else None
    if target is None:
        flash(message, "error")
        return
    target.errors = [*target.errors, message]


@bp.route("/messages/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, "care_team")
def new_message() -> Page:
    actor = current_actor()
    s = db.session
    team = messaging.care_team(s, actor, actor.patient_id or 0)
    form = NewMessageForm()
    form.to.choices = [SelectChoice("", "Choose…")] + [
        SelectChoice(str(p.user_id), _provider_label(p)) for p in team
    ]
    if request.method == "GET" and len(team) == 1:
        form.to.data = team[0].user_id
    if request.method == "GET" and request.args.get("to", "").isdigit():
        form.to.data = int(request.args["to"])
    if form.validate_on_submit():
        try:
            message = messaging.start_conversation(
                s,
                actor,
                patient_id=actor.patient_id or 0,
                recipient_user_id=form.to.data,
                subject=form.subject.data or "",
                body=form.body.data or "",
                uploads=_uploads(form.attachment.data or []),
                idempotency_key=form.idempotency_key.data or None,
            )
        except (messaging.MessageError, attachments.AttachmentError) as exc:
            s.rollback()
            _add_error(form, exc.field, exc.message)
        else:
            s.commit()
            flash("Message sent.", "success")
            return redirect(
                url_for("patient.conversation", conversation_id=message.conversation_id),
                code=303,
            )
    status = 422 if request.method == "POST" else 200
    return render("patient/new_message.html", form=form, team=team), status


def _provider_label(p: Any) -> str:
    return f"{p.display_name} ({p.specialty})" if p.specialty else p.display_name


# --- Appointments --------------------------------------------------------------------------------


def _appointments_page(error: str | None = None, status: int = 200) -> Page:
    actor = current_actor()
    s = db.session
    upcoming = booking.list_for(s, actor, upcoming=True, limit=50)
    past = booking.list_for(s, actor, upcoming=False, limit=50)
    providers = booking.providers_by_id(s, {a.provider_id for a in upcoming + past})
    notifications.mark_read(s, actor.user_id, type=EventType.APPOINTMENT_UPDATED)
    s.commit()
    body = render(
        "patient/appointments.html",
        upcoming=upcoming,
        past=past,
        providers=providers,
        cancellable={a.id for a in upcoming if booking.is_cancellable_online(a, actor)},
        cancel_error=error,
        form=EmptyForm(),
    )
    return (body, status) if status != 200 else body


@bp.get("/appointments")
@audited(AuditAction.VIEW, "appointment_list")
def appointments() -> Page:
    return _appointments_page()


@bp.route("/appointments/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, "care_team")
def request_appointment() -> Page:
    actor = current_actor()
    s = db.session
    team = messaging.care_team(s, actor, actor.patient_id or 0)
    form = AppointmentForm()
    form.provider_id.choices = [SelectChoice(str(p.id), _provider_label(p)) for p in team]
    chosen = form.provider_id.data if request.method == "POST" else None
    if chosen is None:
        wanted = request.args.get("provider_id", "")
        chosen = int(wanted) if wanted.isdigit() else (team[0].id if team else None)
        form.provider_id.data = chosen
    slots: list[tuple[datetime, datetime, str | None]] = []
    if chosen in {p.id for p in team}:
        slots = booking.open_slots(s, chosen, utcnow().date())
    form.start_at.choices = _slot_choices(slots)
    if request.method == "POST" and form.validate_on_submit():
        start = datetime.fromisoformat(form.start_at.data)
        end, where = next(((e, loc) for b, e, loc in slots if b == start), (None, None))
        try:
            if end is None:
                raise booking.AppointmentError(
                    "start_at", "This time is no longer available; choose another."
                )
            booking.book(
                s,
                actor,
                patient_id=actor.patient_id or 0,
                provider_id=form.provider_id.data,
                start_at=start,
                end_at=end,
                reason=form.reason.data,
                location=where,
            )
        except booking.AppointmentError as exc:
            s.rollback()
            _add_error(form, exc.field, exc.message)
        else:
            s.commit()
            flash("Your request was sent. The clinic will confirm the appointment.", "success")
            return redirect(url_for("patient.appointments"), code=303)
    status = 422 if request.method == "POST" else 200
    body = render(
        "patient/request_appointment.html", fragment="booking", form=form, team=team, slots=slots
    )
    return body, status


def _slot_choices(slots: list[tuple[datetime, datetime, str | None]]) -> list[SelectChoice]:
    """Open slots grouped by day, for a <select> with one <optgroup> per day."""
    return [SelectChoice("", "Choose a time…")] + [
        SelectChoice(
            begin.isoformat(), f"{begin:%H:%M}–{end:%H:%M} UTC", optgroup=f"{begin:%A %-d %B %Y}"
        )
        for begin, end, _where in slots
    ]


@bp.post("/appointments/<int:appointment_id>/cancel")
@audit_exempt  # the service records the cancellation
def cancel_appointment(appointment_id: int) -> Page:
    # CSRFProtect has checked the form's token before this view runs.
    s = db.session
    try:
        booking.cancel(s, current_actor(), appointment_id)
    except booking.AppointmentError as exc:
        s.rollback()
        return _appointments_page(error=exc.message, status=422)
    s.commit()
    flash("The appointment is cancelled.", "success")
    return redirect(url_for("patient.appointments"), code=303)


# --- Profile -------------------------------------------------------------------------------------


def _profile_page(
    prefs: PreferencesForm | None = None,
    password: ChangePasswordForm | None = None,
    status: int = 200,
) -> Page:
    actor = current_actor()
    s = db.session
    profile = profiles.own_profile(s, actor)
    if prefs is None:
        prefs = PreferencesForm(obj=profile)
        prefs.release_preference.data = profile.release_preference.value
    body = render(
        "patient/profile.html",
        profile=profile,
        prefs=prefs,
        password=password or ChangePasswordForm(prefix="pw"),
        access_log=report.access_log_for_patient(s, actor),
    )
    return (body, status) if status != 200 else body


@bp.get("/profile")
@audited(AuditAction.VIEW, "patient_profile")
def profile() -> Page:
    return _profile_page()


@bp.post("/profile")
@audit_exempt  # the service records which fields changed
def update_profile() -> Page:
    form = PreferencesForm()
    s = db.session
    if form.validate_on_submit():
        try:
            profiles.update_preferences(
                s,
                current_actor(),
                profiles.Preferences(
                    contact_phone=form.contact_phone.data,
                    contact_email=form.contact_email.data,
                    notify_by_email=bool(form.notify_by_email.data),
                    preferred_language=form.preferred_language.data or "en",
                    release_preference=ReleasePreference(form.release_preference.data),
                ),
            )
        except profiles.ProfileError as exc:
            s.rollback()
            _add_error(form, exc.field, exc.message)
        else:
            s.commit()
            flash("Your details are saved.", "success")
            return redirect(url_for("patient.profile"), code=303)
    return _profile_page(prefs=form, status=422)


@bp.post("/profile/password")
@audited(AuditAction.VIEW, "patient_profile")  # a refused change re-renders the profile
def change_password() -> Page:
    form = ChangePasswordForm(prefix="pw")
    actor = current_actor()
    done = submit(
        form,
        lambda s: accounts.change_password(
            s,
            actor,
            current_password=form.current_password.data or "",
            new_password=form.password.data or "",
        ),
    )
    if done.ok:
        # This browser stays signed in; every other session has ended.
        flash("Your password is changed. Other devices have been signed out.", "success")
        return redirect(url_for("patient.profile"), code=303)
    return _profile_page(password=form, status=422)
