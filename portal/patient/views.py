"""Patient pages. Views translate HTTP to service calls; rules live in portal.services.

Each view: parse the request, call one service verb (services scope every read through
portal.access and never commit), run any change through `submit`/`run`/`unit_of_work` (the one
place a change commits), then redirect (303) or render. A refused change re-renders the form with
its errors and status 422; a POST route whose refusal re-renders a page carrying health
information is `@audited` like the GET that shows it. The same URL answers a full page or, for an
htmx partial request, the block the page names (portal.web.htmx.render).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from flask import Response, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse
from wtforms.fields.choices import SelectChoice

from portal import i18n, zones
from portal.access import get_or_404
from portal.audit import Subject, audit_exempt, audited, report
from portal.auth.views import change_own_password
from portal.extensions import db
from portal.models import (
    Appointment,
    AppointmentStatus,
    Attachment,
    AuditAction,
    Conversation,
    Entity,
    EventType,
    PlanStatus,
    ReleasePreference,
)
from portal.patient import bp
from portal.patient.forms import (
    AppointmentForm,
    ChangePasswordForm,
    EmptyForm,
    NewMessageForm,
    PreferencesForm,
    ReplyForm,
    RescheduleForm,
)
from portal.services import appointments as booking
from portal.services import (
    attachments,
    labs,
    messaging,
    plans,
    profiles,
    proxies,
    record_export,
    screens,
)
from portal.services import (
    dashboard as dashboards,
)
from portal.transactions import unit_of_work
from portal.web import identity
from portal.web.audit_reads import shows
from portal.web.downloads import attachment_response, content_disposition
from portal.web.forms import flash_once, read_notifications, run, submit
from portal.web.htmx import render
from portal.web.identity import current_account, current_actor
from portal.web.lists import answer, page_of
from portal.web.templating import format_datetime, local, slot_choices
from portal.web.uploads import upload_of

Page = str | tuple[str, int] | BaseResponse

_ID = re.compile(r"[0-9]{1,18}")


def _query_id(name: str) -> int | None:
    """A record id from the query string: ASCII digits only (`"²".isdigit()` is True), or None."""
    raw = request.args.get(name, "")
    return int(raw) if _ID.fullmatch(raw) else None


def _form_id(name: str) -> int | None:
    """A record id from the posted form, as `_query_id` reads one from the query string."""
    raw = request.form.get(name, "")
    return int(raw) if _ID.fullmatch(raw) else None


@bp.context_processor
def _helpers() -> dict[str, Any]:
    def attachment_url(attachment: Attachment) -> str:
        """A short-lived download link that only the signed-in user can use."""
        token = attachments.link_token(attachment.id, current_actor().user_id)
        return url_for("patient.attachment", token=token)

    return {"attachment_url": attachment_url, "EventType": EventType}


# --- Dashboard -----------------------------------------------------------------------------------


@bp.get("/")
@audited(AuditAction.VIEW, Entity.DASHBOARD)
def dashboard() -> str:
    data = dashboards.dashboard_screen(db.session, current_actor())
    return render(
        "patient/dashboard.html",
        fragment="whats_new",
        data=data,
        user=current_account(),
        records=proxies.held_records(db.session, identity.person()),
        person_patient_id=identity.person().patient_id,
        record_form=EmptyForm(),
    )


@bp.post("/proxies/<int:grant_id>/remove")
@audit_exempt  # the service records the change; every answer is a redirect
def remove_proxy(grant_id: int) -> BaseResponse:
    """The Remove button under "Who can see my record": the grant ends now, at the next request
    of its holder, on every door. Someone else's grant is a 404."""
    actor = current_actor()
    if run(lambda s: proxies.end(s, actor, grant_id, "removed by the patient")).ok:
        flash(_("Done: they can no longer see your record."), "success")
    return redirect(url_for("patient.profile") + "#proxies", code=303)


@bp.post("/record")
@audit_exempt  # shows nothing: every answer is a redirect
def choose_record() -> BaseResponse:
    """The record switcher: open the record of someone the person acts for (a grant they
    hold now), or their own again. Another's record without a grant is a 404."""
    me = identity.person()
    wanted = _form_id("patient_id")
    if wanted is None or wanted == me.patient_id:
        session.pop(identity.ACTING_FOR_KEY, None)
    else:
        proxies.open_record(db.session, me, wanted)  # 404 without a grant in force
        session[identity.ACTING_FOR_KEY] = wanted
    return redirect(url_for("patient.dashboard"), code=303)


# --- Lab results ---------------------------------------------------------------------------------


@bp.get("/lab-results")
@audited(AuditAction.VIEW, Entity.LAB_RESULT_LIST)
def lab_results() -> Page:
    actor = current_actor()
    args = request.args
    filters, errors = labs.parse_filter(args.get("test"), args.get("from"), args.get("to"))
    page, refused = page_of(
        lambda cursor: labs.latest_page(db.session, actor, filters, cursor=cursor)
    )
    if refused:
        errors["cursor"] = refused
    cursor = None if refused else args.get("cursor") or None
    new_ids = dashboards.unread_entity_ids(
        db.session,
        actor,
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
        tests=labs.tests_seen(db.session, actor, None),
        new_ids=new_ids,
        held=held,
    )
    return (body, 422) if errors else body


@bp.get("/lab-results/<int:result_id>")
@audited(AuditAction.VIEW, Entity.LAB_RESULT, id_arg="result_id")
def lab_result(result_id: int) -> str:
    actor = current_actor()
    screen = screens.lab_result(db.session, actor, result_id)
    shows(screen.subject)
    # Opening a result is reading it: its "new" notifications are read before the page (and
    # its navigation badge) is drawn.
    read_notifications(actor, EventType.LAB_RESULT_PUBLISHED, screen.result.id)
    return render(
        "patient/lab_result.html",
        result=screen.result,
        current=screen.current,
        history=screen.history,
        people=screen.people,
        files=screen.files,
        trend=screen.trend,
    )


@bp.get("/attachments/<token>")
@audited(AuditAction.DOWNLOAD, Entity.ATTACHMENT)
def attachment(token: str) -> Response:
    return attachment_response(token)


# --- Treatment plans -----------------------------------------------------------------------------


@bp.get("/treatment-plans")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN_LIST)
def treatment_plans() -> Page:
    actor = current_actor()
    active, refused = page_of(
        lambda c: plans.list_for(db.session, actor, PlanStatus.ACTIVE, cursor=c), "active"
    )
    done, refused_done = page_of(
        lambda c: plans.list_for(db.session, actor, PlanStatus.COMPLETED, cursor=c), "completed"
    )
    refused = refused or refused_done
    body = render("patient/treatment_plans.html", active=active, completed=done, refused=refused)
    return answer(body, refused)


@bp.get("/treatment-plans/<int:plan_id>")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")
def treatment_plan(plan_id: int) -> str:
    actor = current_actor()
    screen = screens.treatment_plan(db.session, actor, plan_id)
    shows(screen.subject)
    if not screen.awaiting_acknowledgement:
        # Nothing left to do about this plan: its notifications are read.
        read_notifications(actor, EventType.TREATMENT_PLAN_UPDATED, screen.plan.id)
    return render(
        "patient/treatment_plan.html",
        plan=screen.plan,
        current=screen.current,
        versions=screen.versions,
        acks=screen.acks,
        awaiting=screen.awaiting_acknowledgement,
        authors=screen.people,
        form=EmptyForm(),
    )


@bp.get("/treatment-plans/<int:plan_id>/compare")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")
def compare_plan(plan_id: int) -> Page:
    args = request.args
    comparison, error = plans.compare_requested(
        db.session, current_actor(), plan_id, args.get("from"), args.get("to")
    )
    body = render(
        "patient/plan_compare.html",
        comparison=comparison,
        error=error,
        compare_url=url_for("patient.compare_plan", plan_id=plan_id),
    )
    return (body, 422) if error else body


@bp.post("/treatment-plans/<int:plan_id>/acknowledge")
@audit_exempt  # the service records the acknowledgement; every answer is a redirect
def acknowledge_plan(plan_id: int) -> BaseResponse:
    # CSRFProtect has checked the form's token before this view runs. Both outcomes redirect
    # (a refusal is flashed by `run`), so no response of this route shows the plan.
    actor = current_actor()
    if run(lambda s: plans.acknowledge(s, actor, plan_id)).ok:
        flash(_("Thank you. We recorded that you have read this plan."), "success")
    return redirect(url_for("patient.treatment_plan", plan_id=plan_id), code=303)


# --- Messages ------------------------------------------------------------------------------------


@bp.get("/messages")
@audited(AuditAction.VIEW, Entity.CONVERSATION_LIST)
def messages() -> Page:
    actor = current_actor()
    page, refused = page_of(lambda cursor: messaging.inbox(db.session, actor, cursor=cursor))
    body = render("patient/messages.html", fragment="threads", page=page, refused=refused)
    return answer(body, refused)


def _uploads(files: list[FileStorage]) -> list[attachments.Upload]:
    return [upload_of(f) for f in files if f and f.filename]


def _show_thread(conversation_id: int, form: ReplyForm, status: int = 200) -> Page:
    actor = current_actor()
    # Showing the thread reads it: marked before the page and its badge are drawn.
    if messaging.thread_unread(db.session, actor, conversation_id):
        with unit_of_work() as w:
            messaging.mark_thread_read(w, actor, conversation_id)
    screen = screens.conversation(db.session, actor, conversation_id)
    shows(screen.subject)
    body = render(
        "patient/conversation.html",
        conversation=screen.conversation,
        thread=screen.thread,
        people=screen.people,
        form=form,
        closed_notice=_(messaging.CLOSED_NOTICE),
    )
    return (body, status) if status != 200 else body


@bp.get("/messages/<int:conversation_id>")
@audited(AuditAction.VIEW, Entity.CONVERSATION, id_arg="conversation_id")
def conversation(conversation_id: int) -> Page:
    return _show_thread(conversation_id, ReplyForm())


@bp.post("/messages/<int:conversation_id>/reply")
# The service records the message it sends; a refused reply re-renders the thread (PHI).
@audited(AuditAction.VIEW, Entity.CONVERSATION, id_arg="conversation_id")
def reply(conversation_id: int) -> Page:
    form = ReplyForm()
    actor = current_actor()
    # Whose thread it is is checked before the form: someone else's thread is simply not there.
    get_or_404(db.session, Conversation, conversation_id, actor)
    done = submit(
        form,
        lambda s: messaging.reply(
            s,
            actor,
            conversation_id,
            body=form.body.data or "",
            uploads=_uploads(form.attachment.data or []),
            idempotency_key=form.idempotency_key.data or None,
        ),
    )
    if done.ok:
        flash_once(_("Message sent."))
        anchor = f"#message-{done.value.id}" if done.value is not None else ""
        return redirect(
            url_for("patient.conversation", conversation_id=conversation_id) + anchor, code=303
        )
    return _show_thread(conversation_id, form, status=422)


@bp.route("/messages/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.CARE_TEAM)
def new_message() -> Page:
    actor = current_actor()
    s = db.session
    team = messaging.care_team(s, actor, actor.patient_id or 0)
    form = NewMessageForm()
    form.to.choices = [SelectChoice("", "Choose…")] + [
        SelectChoice(str(p.user_id), _provider_label(p)) for p in team
    ]
    if request.method == "GET":
        wanted = _query_id("to")
        if wanted is not None:
            form.to.data = wanted
        elif len(team) == 1:
            form.to.data = team[0].user_id
    done = submit(
        form,
        lambda w: messaging.start_conversation(
            w,
            actor,
            patient_id=actor.patient_id or 0,
            recipient_user_id=form.to.data,
            subject=form.subject.data or "",
            body=form.body.data or "",
            uploads=_uploads(form.attachment.data or []),
            idempotency_key=form.idempotency_key.data or None,
        ),
    )
    if done.ok:
        flash_once(_("Message sent."))
        if done.value is None:
            return redirect(url_for("patient.messages"), code=303)
        return redirect(
            url_for("patient.conversation", conversation_id=done.value.conversation_id),
            code=303,
        )
    status = 422 if request.method == "POST" else 200
    return render("patient/new_message.html", form=form, team=team), status


def _provider_label(p: Any) -> str:
    return f"{p.display_name} ({p.specialty})" if p.specialty else p.display_name


# --- Appointments --------------------------------------------------------------------------------


def _appointments_page(error: str | None = None, status: int = 200) -> Page:
    actor = current_actor()
    # Seeing the list is seeing its changes: marked read before the page and its badge.
    read_notifications(actor, EventType.APPOINTMENT_UPDATED)
    s = db.session
    upcoming, refused = page_of(
        lambda cursor: booking.list_for(s, actor, upcoming=True, cursor=cursor), "upcoming"
    )
    past, refused_past = page_of(
        lambda cursor: booking.list_for(s, actor, upcoming=False, cursor=cursor), "past"
    )
    providers = booking.providers_by_id(s, {a.provider_id for a in upcoming.rows + past.rows})
    body = render(
        "patient/appointments.html",
        upcoming=upcoming,
        past=past,
        providers=providers,
        cancellable={a.id for a in upcoming.rows if booking.is_cancellable_online(a, actor)},
        cancel_error=error or refused or refused_past,
        form=EmptyForm(),
    )
    return answer(body, refused, refused_past, status=status)


@bp.get("/appointments")
@audited(AuditAction.VIEW, Entity.APPOINTMENT_LIST)
def appointments() -> Page:
    return _appointments_page()


@bp.route("/appointments/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.CARE_TEAM)
def request_appointment() -> Page:
    actor = current_actor()
    s = db.session
    team = messaging.care_team(s, actor, actor.patient_id or 0)
    form = AppointmentForm()
    form.provider_id.choices = [SelectChoice(str(p.id), _provider_label(p)) for p in team]
    # "Show free times" is its own GET form (the provider only); the booking form posts the
    # provider it was shown for, so no token or reason ever goes into a URL.
    chosen = form.provider_id.data if request.method == "POST" else None
    if chosen is None:
        chosen = _query_id("provider_id") or (team[0].id if team else None)
        form.provider_id.data = chosen
    slots: list[tuple[datetime, datetime, str | None]] = []
    provider = next((p for p in team if p.id == chosen), None)
    if provider is not None:  # the service decides whose slots a patient may see (its team)
        slots = booking.slots_for(s, actor, provider.user_id, start=zones.clinic_today(), days=14)
    form.start_at.choices = slot_choices(slots)
    # The form only offers the open slots shown; `book` checks the start again (the slot may
    # have just been taken) and takes the visit's end and place from the slot itself.
    done = submit(
        form,
        lambda w: booking.book(
            w,
            actor,
            patient_id=actor.patient_id or 0,
            provider_id=form.provider_id.data or 0,
            start_at=booking.chosen_start(form.start_at.data),
            reason=form.reason.data,
        ),
    )
    if done.value is not None:
        if done.value.status is AppointmentStatus.SCHEDULED:
            flash(_("Your appointment is booked."), "success")
        else:
            flash(_("Your request was sent. The clinic will confirm the appointment."), "success")
        return redirect(url_for("patient.appointments"), code=303)
    status = 422 if request.method == "POST" else 200
    body = render(
        "patient/request_appointment.html",
        fragment="booking",
        form=form,
        team=team,
        slots=slots,
        provider=provider,
        max_open=booking.MAX_OPEN_REQUESTS,
    )
    return body, status


@bp.route("/appointments/<int:appointment_id>/reschedule", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")
def reschedule_appointment(appointment_id: int) -> Page:
    actor = current_actor()
    s = db.session
    visit = get_or_404(s, Appointment, appointment_id, actor)
    provider = booking.providers_by_id(s, {visit.provider_id}).get(visit.provider_id)
    movable = booking.is_cancellable_online(visit, actor)
    slots: list[tuple[datetime, datetime, str | None]] = []
    if movable and provider is not None:
        try:
            slots = booking.slots_for(
                s, actor, provider.user_id, start=zones.clinic_today(), days=14
            )
        except NotFound:  # no longer on the care team: the page says to call the clinic
            slots = []
    form = RescheduleForm()
    form.start_at.choices = slot_choices(slots)
    done = submit(
        form,
        lambda w: booking.reschedule(
            w, actor, appointment_id, booking.chosen_start(form.start_at.data)
        ),
    )
    if done.value is not None:
        when = format_datetime(done.value.start_at)
        if done.value.is_a_move:
            flash(
                _(
                    "You asked to move your appointment to %(when)s. Your current appointment "
                    "stays booked until the clinic confirms the new time.",
                    when=when,
                ),
                "success",
            )
        else:
            flash(_("Your appointment is moved to %(when)s.", when=when), "success")
        return redirect(url_for("patient.appointments"), code=303)
    body = render(
        "patient/reschedule_appointment.html",
        form=form,
        visit=visit,
        provider=provider,
        slots=slots,
        movable=movable,
    )
    return (body, 422) if request.method == "POST" else body


@bp.post("/appointments/<int:appointment_id>/cancel")
# The service records the cancellation; a refused one re-renders the list of visits (PHI).
# The entry names the visit (as `get_or_404` notes it), like a 404 for someone else's.
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")
def cancel_appointment(appointment_id: int) -> Page:
    # CSRFProtect has checked the form's token before this view runs.
    actor = current_actor()
    try:
        with unit_of_work() as s:
            booking.cancel(s, actor, appointment_id)
    except booking.AppointmentError as exc:
        # Shown as the page's alert, next to the list it is about (not as a form field).
        return _appointments_page(error=_(exc.message), status=422)
    flash(_("The appointment is cancelled."), "success")
    return redirect(url_for("patient.appointments"), code=303)


@bp.post("/appointments/<int:appointment_id>/accept")
# As cancelling: the service records the change; a refusal re-renders the list of visits.
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")
def accept_appointment(appointment_id: int) -> Page:
    actor = current_actor()
    try:
        with unit_of_work() as s:
            visit = booking.accept(s, actor, appointment_id)
            when = format_datetime(visit.start_at)
    except booking.AppointmentError as exc:
        return _appointments_page(error=_(exc.message), status=422)
    flash(_("Your appointment on %(when)s is booked.", when=when), "success")
    return redirect(url_for("patient.appointments"), code=303)


# --- Profile -------------------------------------------------------------------------------------


def _profile_page(
    prefs: PreferencesForm | None = None,
    password: ChangePasswordForm | None = None,
    status: int = 200,
) -> Page:
    actor = current_actor()
    # Her own profile: the route has no id to declare it by.
    shows(Subject(Entity.PATIENT_PROFILE, actor.patient_id, actor.patient_id))
    s = db.session
    profile = profiles.own_profile(s, actor)
    if prefs is None:
        prefs = PreferencesForm(obj=profile)
        prefs.release_preference.data = profile.release_preference.value
        prefs.preferred_language.data = profile.preferred_language or ""  # the browser's
    access_log, refused = page_of(
        lambda cursor: report.access_log_for_patient(s, actor, cursor=cursor), "access"
    )
    if refused:
        flash(refused, "error")
    body = render(
        "patient/profile.html",
        profile=profile,
        prefs=prefs,
        password=password or ChangePasswordForm(prefix="pw"),
        access_log=access_log,
        proxy_grants=proxies.grants_on_my_record(s, actor),
        remove_form=EmptyForm(),
    )
    return answer(body, refused, status=status)


@bp.get("/profile")
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE)
def profile() -> Page:
    return _profile_page()


@bp.post("/profile")
# The service records which fields changed; a refused change re-renders the profile (PHI).
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE)
def update_profile() -> Page:
    form = PreferencesForm()
    actor = current_actor()
    done = submit(
        form,
        lambda s: profiles.update_preferences(
            s,
            actor,
            profiles.Preferences(
                contact_phone=form.contact_phone.data,
                contact_email=form.contact_email.data,
                mail=profiles.MailChoices(
                    lab_results=bool(form.mail_lab_results.data),
                    messages=bool(form.mail_messages.data),
                    appointments=bool(form.mail_appointments.data),
                    plans=bool(form.mail_plans.data),
                ),
                preferred_language=form.preferred_language.data or None,
                release_preference=ReleasePreference(form.release_preference.data),
            ),
        ),
    )
    if done.ok:
        # The profile's choice is the one: an earlier switch kept in this browser's session
        # would otherwise stand in for "Same as my browser".
        session.pop(i18n.SESSION_KEY, None)
        flash(_("Your details are saved."), "success")
        return redirect(url_for("patient.profile"), code=303)
    return _profile_page(prefs=form, status=422)


@bp.post("/profile/password")
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE)  # a refused change re-renders the profile
def change_password() -> Page:
    form = ChangePasswordForm(prefix="pw")
    if change_own_password(form):  # this browser stays signed in; every other one is not
        return redirect(url_for("patient.profile"), code=303)
    return _profile_page(password=form, status=422)


# --- The whole record: a printable summary and a FHIR download ----------------------------------


@bp.get("/record")
@audited(AuditAction.VIEW, record_export.ENTITY)
def record_summary() -> str:
    record = record_export.gather(db.session, current_actor())
    shows(record.subject)
    return render("patient/record_summary.html", record=record)


@bp.get("/record.json")
@audited(AuditAction.EXPORT, record_export.ENTITY)
def record_download() -> Response:
    record = record_export.gather(db.session, current_actor())
    shows(record.subject)
    bundle = record_export.to_fhir(record, str(current_app.config["PORTAL_URL"]))
    response = Response(json.dumps(bundle, ensure_ascii=False), mimetype="application/fhir+json")
    day = local(record.made_at).date().isoformat()
    response.headers["Content-Disposition"] = content_disposition(f"health-record-{day}.json")
    return response
