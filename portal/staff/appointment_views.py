"""The provider's appointment requests (confirm, propose another time, decline), booking mode
and notification list: HTTP in, one service verb, a page or a redirect out."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from portal import zones
from portal.access import get_or_404
from portal.audit import audit_exempt, audited
from portal.extensions import db
from portal.models import (
    Appointment,
    AppointmentStatus,
    AuditAction,
    BookingMode,
    Entity,
    EventType,
    Notification,
    PatientProfile,
)
from portal.services import appointments as booking
from portal.services import notifications, schedule
from portal.staff import bp
from portal.staff.forms import BookingModeForm, DeclineForm, ProposeForm
from portal.transactions import unit_of_work
from portal.web.audit_reads import shown
from portal.web.forms import read_notifications, run, submit
from portal.web.htmx import render
from portal.web.identity import current_actor
from portal.web.lists import answer, page_of
from portal.web.templating import slot_choices

Page = str | tuple[str, int] | BaseResponse
#: How far ahead a proposed time may be chosen from.
PROPOSE_DAYS = 14


def _queue(status: int = 200, error: str | None = None) -> Page:
    actor = current_actor()
    # Opening the queue is seeing the requests announced: their notifications are read.
    read_notifications(actor, EventType.APPOINTMENT_UPDATED)
    queue, refused = page_of(lambda cursor: schedule.requests(db.session, actor, cursor=cursor))
    body = render(
        "staff/requests.html",
        queue=queue,
        error=error or refused,
        decline_form=DeclineForm(formdata=None),
    )
    return answer(body, refused, status=status)


@bp.get("/appointments/requests")
@audited(AuditAction.VIEW, Entity.APPOINTMENT_LIST)
def appointment_requests() -> Page:
    return _queue()


@bp.post("/appointments/requests/<int:appointment_id>/confirm")
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")  # refused: the queue
def confirm_request(appointment_id: int) -> Page:
    actor = current_actor()
    shown(get_or_404(db.session, Appointment, appointment_id, actor))
    done = run(lambda s: booking.set_status(s, actor, appointment_id, AppointmentStatus.SCHEDULED))
    if not done.ok:
        return _queue(status=422)
    flash(_("The appointment is confirmed; the patient is told."), "success")
    return redirect(url_for("staff.appointment_requests"), code=303)


@bp.post("/appointments/requests/<int:appointment_id>/decline")
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")  # refused: its form
def decline_request(appointment_id: int) -> Page:
    actor = current_actor()
    shown(get_or_404(db.session, Appointment, appointment_id, actor))
    form = DeclineForm()
    if submit(form, lambda s: booking.decline(s, actor, appointment_id, form.reason.data or "")).ok:
        flash(_("The request is declined; the patient sees your reason."), "success")
        return redirect(url_for("staff.appointment_requests"), code=303)
    body = render("staff/decline_request.html", form=form, appointment_id=appointment_id)
    return body, 422


@bp.route("/appointments/requests/<int:appointment_id>/propose", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")
def propose_time(appointment_id: int) -> Page:
    actor = current_actor()
    s = db.session
    visit = shown(get_or_404(s, Appointment, appointment_id, actor))
    patient = get_or_404(s, PatientProfile, visit.patient_id, actor)
    form = ProposeForm()
    slots = booking.slots_for(
        s, actor, actor.user_id, start=zones.clinic_today(), days=PROPOSE_DAYS
    )
    form.start_at.choices = slot_choices(slots)
    done = submit(
        form,
        lambda w: booking.propose(
            w, actor, appointment_id, booking.chosen_start(form.start_at.data)
        ),
    )
    if done.ok:
        flash(
            _("The new time is proposed; the patient is told and accepts it or cancels it."),
            "success",
        )
        return redirect(url_for("staff.appointment_requests"), code=303)
    body = render("staff/propose_time.html", form=form, visit=visit, patient=patient, slots=slots)
    return (body, 422) if request.method == "POST" else body


@bp.post("/appointments/booking-mode")
@audit_exempt  # the service records the change; the answer is a redirect or a bare refusal
def booking_mode() -> BaseResponse:
    actor = current_actor()
    form = BookingModeForm()
    if submit(
        form, lambda s: schedule.set_booking_mode(s, actor, BookingMode(form.booking_mode.data))
    ).ok:
        flash(_("How patients book with you is saved."), "success")
    return redirect(url_for("staff.appointments") + "#booking-mode-heading", code=303)


# --- Notifications -------------------------------------------------------------------------------


@bp.get("/notifications")
@audited(AuditAction.VIEW, Entity.NOTIFICATION_LIST)
def notifications_list() -> Page:
    actor = current_actor()
    page, refused = page_of(lambda cursor: notifications.own_page(db.session, actor, cursor=cursor))
    body = render("staff/notifications.html", page=page, error=refused)
    return answer(body, refused)


def _target(note: Notification) -> str:
    """Where a notification leads: the record it is about, as the provider's pages show it."""
    if note.type is EventType.MESSAGE_CREATED:
        return url_for("staff.conversation", conversation_id=note.entity_id)
    if note.type is EventType.LAB_RESULT_PUBLISHED:
        return url_for("staff.result", result_id=note.entity_id)
    if note.type is EventType.TREATMENT_PLAN_UPDATED:
        return url_for("staff.plan", plan_id=note.entity_id)
    visit = get_or_404(db.session, Appointment, note.entity_id, current_actor())
    if visit.status is AppointmentStatus.REQUESTED:
        return url_for("staff.appointment_requests")
    day = zones.local_day(visit.start_at, zones.clinic_zone()).isoformat()
    return url_for("staff.appointments", view="day", date=day) + f"#appointment-{visit.id}"


@bp.get("/notifications/<int:event_id>")
@audited(AuditAction.VIEW, Entity.NOTIFICATION, id_arg="event_id")
def open_notification(event_id: int) -> BaseResponse:
    """Opening a notification reads it (a link, so it works without script) and leads on."""
    actor = current_actor()
    with unit_of_work() as w:
        note = notifications.open_own(w, actor, event_id)
    return redirect(_target(note), code=303)


@bp.post("/notifications/read")
@audit_exempt  # marks the reader's own notifications read; the answer is a redirect
def read_all_notifications() -> BaseResponse:
    actor = current_actor()
    run(lambda s: notifications.mark_read(s, actor.user_id))
    flash(_("All notifications are marked read."), "success")
    return redirect(url_for("staff.notifications_list"), code=303)
