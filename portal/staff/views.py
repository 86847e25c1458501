"""Provider pages. Views translate HTTP to service calls; rules live in portal.services.

Each view parses the request, runs ONE service verb in a unit of work (`portal.web.forms`),
then redirects (303) or renders. A refused change re-renders its page with status 422, and
such a page shows the record it is about, so those POST routes are audited as reads too.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from flask import Response, abort, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from portal import zones
from portal.access import get_or_404
from portal.audit import audit_exempt, audited
from portal.db import utcnow
from portal.extensions import db
from portal.i18n import weekday_name
from portal.models import (
    Appointment,
    AppointmentStatus,
    AuditAction,
    AvailabilityException,
    AvailabilityRule,
    Entity,
    LabResult,
    PatientProfile,
    ResultStatus,
    TreatmentPlan,
    Visibility,
)
from portal.services import appointments as booking
from portal.services import attachments, labs, messaging, plans, schedule, screens
from portal.services import patients as roster
from portal.services.catalog import BY_CODE
from portal.staff import bp
from portal.staff.forms import (
    ActivatePlanForm,
    BookingModeForm,
    CancelForm,
    ChooseTestForm,
    CorrectionForm,
    ExceptionForm,
    NewThreadForm,
    PlanForm,
    ReplyForm,
    ResultForm,
    RuleForm,
)
from portal.transactions import unit_of_work
from portal.web.audit_reads import shown, shows, shows_patient
from portal.web.downloads import attachment_response
from portal.web.forms import run, submit
from portal.web.htmx import render
from portal.web.identity import current_actor
from portal.web.lists import answer, page_of
from portal.web.templating import reader_zone
from portal.web.uploads import upload_of

Page = str | tuple[str, int] | BaseResponse


@bp.context_processor
def _helpers() -> dict[str, Any]:
    # Templates show the release state the service derives; they never derive it themselves.
    return {"release_state": labs.release_state}


# --- Request parsing: ASCII digits and ISO days only; anything else names no page (404) ------

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Far enough from date.min/date.max that the schedule's previous/next week still exist.
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(9998, 12, 1)


def _period(values: MultiDict[str, str]) -> schedule.Period:
    """The schedule's day or week from `view` and `date` (today when absent; 404 if malformed)."""
    raw = values.get("date", "")
    day = zones.clinic_today()
    if raw:
        try:
            if not _ISO_DAY.fullmatch(raw):
                raise ValueError(raw)
            day = date.fromisoformat(raw)
        except ValueError:
            abort(404)
        if not _FIRST_DAY <= day <= _LAST_DAY:
            abort(404)
    return schedule.Period.of(values.get("view"), day)


def _utc(moment: datetime | None) -> datetime | None:
    """A form's date and time, read in the reader's own zone (what the form's hint says)."""
    return moment.replace(tzinfo=reader_zone()).astimezone(UTC) if moment is not None else None


def _upload(name: str) -> attachments.Upload | None:
    file = request.files.get(name)
    if file is None or not file.filename:
        return None
    return upload_of(file)


def _uploads(name: str) -> list[attachments.Upload]:
    upload = _upload(name)
    return [upload] if upload is not None else []


def _see_other(endpoint: str, **values: Any) -> BaseResponse:
    return redirect(url_for(endpoint, **values), code=303)


def _download_link(attachment_id: int) -> str:
    """A short-lived link to an attachment that only the signed-in user can use."""
    token = attachments.link_token(attachment_id, current_actor().user_id)
    return url_for("staff.attachment", token=token)


# --- Patients and the chart ----------------------------------------------------------------------


@bp.get("/patients")
@audited(AuditAction.VIEW, Entity.PATIENT_LIST)
def patients() -> Page:
    actor, q = current_actor(), (request.args.get("q") or "").strip()[:100]
    page, refused = page_of(lambda cursor: roster.search(db.session, actor, q, cursor=cursor))
    body = render("staff/patients.html", fragment="patient_list", page=page, q=q, refused=refused)
    return answer(body, refused)


@bp.get("/patients/<int:patient_id>")
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE, id_arg="patient_id")
def chart(patient_id: int) -> str:
    record = roster.chart_screen(db.session, current_actor(), patient_id)
    return render("staff/chart.html", chart=record)


# --- Lab results ---------------------------------------------------------------------------------


def _result_form_page(
    patient: PatientProfile, choose: ChooseTestForm, form: ResultForm, status: int = 200
) -> tuple[str, int]:
    definition = BY_CODE.get(form.test_code.data or "")
    category = definition.category if definition else "general"
    policy = labs.describe_policy(labs.release_policy_for(db.session, category))
    return render(
        "staff/new_result.html",
        fragment="result_form",
        patient=patient,
        choose=choose,
        form=form,
        category=category,
        policy=policy,
    ), status


@bp.route("/patients/<int:patient_id>/results/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE, id_arg="patient_id")
def new_result(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    choose = ChooseTestForm(request.args)
    if request.method == "GET":
        test = BY_CODE.get(choose.test_code.data or "")
        form = ResultForm(
            formdata=None,
            data={
                "test_code": test.loinc if test else "",
                "test_name": test.name if test else "",
                "units": test.units if test else "",
                "reference_range": test.reference_range if test else "",
                "visibility": Visibility.SHARED.value,
            },
        )
        return _result_form_page(patient, choose, form)
    form = ResultForm()
    choose.test_code.data = form.test_code.data
    preliminary = request.form.get("action") == "preliminary"

    def publish(s: Session) -> LabResult:
        # Blank units and range are the service's to fill from the catalog.
        return labs.create_result(
            s,
            actor,
            patient.id,
            test_code=form.test_code.data or "",
            test_name=form.test_name.data or "",
            data=labs.ResultInput(
                form.result_value.data or "",
                form.units.data or None,
                form.reference_range.data or None,
                ResultStatus.PRELIMINARY if preliminary else ResultStatus.FINAL,
                Visibility(form.visibility.data),
            ),
            report=_upload("report"),
            collected_at=_utc(form.collected_at.data),
        )

    done = submit(form, publish)
    if done.ok and done.value is not None:
        return _see_other("staff.result", result_id=done.value.id)
    return _result_form_page(patient, choose, form, 422)


@bp.get("/patients/<int:patient_id>/results")
@audited(AuditAction.VIEW, Entity.LAB_RESULT_LIST)
def patient_results(patient_id: int) -> Page:
    """Every result of one patient, newest sample first, a page at a time, by test and status."""
    actor = current_actor()
    args = request.args
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    filters, errors = labs.parse_filter(args.get("test"), None, None)
    filters = replace(
        filters, patient_id=patient.id, status=labs.parse_status(args.get("status"), errors)
    )
    page, cursor_error = page_of(
        lambda cursor: labs.latest_page(db.session, actor, filters, cursor=cursor)
    )
    if cursor_error:
        errors["cursor"] = cursor_error
    body = render(
        "staff/results.html",
        fragment="results",
        patient=patient,
        page=page,
        filters=filters,
        errors=errors,
        tests=labs.tests_seen(db.session, actor, patient.id),
        statuses=[s.value for s in ResultStatus],
    )
    return (body, 422) if errors else body


def _result_page(result_id: int, status: int = 200) -> Page:
    screen = screens.staff_lab_result(db.session, current_actor(), result_id)
    shows(screen.subject)
    links = {a.id: _download_link(a.id) for rows in screen.files.values() for a in rows}
    return render(
        "staff/result.html",
        trend=screen.trend,
        result=screen.result,
        patient=screen.patient,
        versions=screen.versions,
        files=screen.files,
        links=links,
        held=screen.held,
        people=screen.people,
        policy=screen.policy,
    ), status


@bp.get("/results/<int:result_id>")
@audited(AuditAction.VIEW, Entity.LAB_RESULT, id_arg="result_id")
def result(result_id: int) -> Page:
    return _result_page(result_id)


@bp.route("/results/<int:result_id>/correct", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.LAB_RESULT, id_arg="result_id")
def correct_result(result_id: int) -> Page:
    actor = current_actor()
    result = shown(get_or_404(db.session, LabResult, result_id, actor))
    current = labs.versions_of(db.session, actor, result)[0]
    patient = get_or_404(db.session, PatientProfile, result.patient_id, actor)
    if request.method == "GET":
        form = CorrectionForm(
            formdata=None,
            data={
                "result_value": current.result_value,
                "units": current.units or "",
                "reference_range": current.reference_range or "",
                "status": (
                    ResultStatus.FINAL.value
                    if current.status is ResultStatus.PRELIMINARY
                    else ResultStatus.CORRECTED.value
                ),
                "visibility": current.visibility.value,
            },
        )
        return render(
            "staff/correct_result.html", result=result, current=current, patient=patient, form=form
        )
    form = CorrectionForm()
    done = submit(
        form,
        lambda s: labs.add_version(
            s,
            actor,
            result.id,
            labs.ResultInput(
                form.result_value.data or "",
                form.units.data or None,
                form.reference_range.data or None,
                ResultStatus(form.status.data),
                Visibility(form.visibility.data),
            ),
            reason=form.reason.data,
            report=_upload("report"),
        ),
    )
    if done.ok:
        return _see_other("staff.result", result_id=result.id)
    return render(
        "staff/correct_result.html", result=result, current=current, patient=patient, form=form
    ), 422


@bp.post("/results/<int:result_id>/release")
@audited(AuditAction.VIEW, Entity.LAB_RESULT, id_arg="result_id")  # refused: the result is shown
def release_result(result_id: int) -> Page:
    actor = current_actor()
    if run(lambda s: labs.review_and_release(s, actor, result_id)).ok:
        return _see_other("staff.result", result_id=result_id)
    return _result_page(result_id, status=422)


@bp.get("/attachments/<token>")
@audited(AuditAction.DOWNLOAD, Entity.ATTACHMENT)
def attachment(token: str) -> Response:
    return attachment_response(token)


# --- Treatment plans -----------------------------------------------------------------------------


def _plan_input(form: PlanForm) -> plans.PlanInput:
    return plans.PlanInput(
        form.summary.data or "", form.details.data or "", form.start_date.data, form.end_date.data
    )


@bp.route("/patients/<int:patient_id>/plans/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE, id_arg="patient_id")
def new_plan(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    form = PlanForm()
    if request.method == "GET":
        return render("staff/plan_form.html", patient=patient, form=form, plan=None)
    done = submit(form, lambda s: plans.create_draft(s, actor, patient.id, _plan_input(form)))
    if done.ok and done.value is not None:
        return _see_other("staff.plan", plan_id=done.value.id)
    return render("staff/plan_form.html", patient=patient, form=form, plan=None), 422


def _plan_page(plan_id: int, status: int = 200) -> Page:
    screen = screens.staff_treatment_plan(db.session, current_actor(), plan_id)
    shows(screen.subject)
    return render(
        "staff/plan.html",
        plan=screen.plan,
        patient=screen.patient,
        history=screen.history,
        people=screen.people,
        activate_form=ActivatePlanForm(formdata=None),
    ), status


@bp.get("/plans/<int:plan_id>")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")
def plan(plan_id: int) -> Page:
    return _plan_page(plan_id)


@bp.get("/plans/<int:plan_id>/compare")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")
def compare_plan(plan_id: int) -> Page:
    args = request.args
    comparison, error = plans.compare_requested(
        db.session, current_actor(), plan_id, args.get("from"), args.get("to")
    )
    patient = get_or_404(db.session, PatientProfile, comparison.newer.patient_id, current_actor())
    shows_patient(patient.id)
    body = render(
        "staff/plan_compare.html",
        comparison=comparison,
        patient=patient,
        error=error,
        compare_url=url_for("staff.compare_plan", plan_id=plan_id),
    )
    return (body, 422) if error else body


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")
def edit_plan(plan_id: int) -> Page:
    actor = current_actor()
    plan = shown(get_or_404(db.session, TreatmentPlan, plan_id, actor))
    patient = get_or_404(db.session, PatientProfile, plan.patient_id, actor)
    if request.method == "GET":
        current = plans.history(db.session, actor, plan)[0][0]
        form = PlanForm(
            formdata=None,
            data={
                "summary": current.summary,
                "details": current.details,
                "start_date": current.start_date,
                "end_date": current.end_date,
            },
        )
        return render("staff/plan_form.html", patient=patient, form=form, plan=plan)
    form = PlanForm()
    done = submit(
        form,
        lambda s: plans.revise(s, actor, plan.id, _plan_input(form), note=form.note.data or None),
    )
    if done.ok:
        return _see_other("staff.plan", plan_id=plan.id)
    return render("staff/plan_form.html", patient=patient, form=form, plan=plan), 422


@bp.post("/plans/<int:plan_id>/activate")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")  # refused: the plan is shown
def activate_plan(plan_id: int) -> Page:
    actor = current_actor()
    form = ActivatePlanForm()
    done = submit(
        form,
        lambda s: plans.activate(
            s, actor, plan_id, complete_others=bool(form.complete_others.data)
        ),
    )
    if done.ok:
        return _see_other("staff.plan", plan_id=plan_id)
    return _plan_page(plan_id, 422)


@bp.post("/plans/<int:plan_id>/complete")
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN, id_arg="plan_id")  # refused: the plan is shown
def complete_plan(plan_id: int) -> Page:
    actor = current_actor()
    if run(lambda s: plans.complete(s, actor, plan_id)).ok:
        return _see_other("staff.plan", plan_id=plan_id)
    return _plan_page(plan_id, 422)


# --- Messages ------------------------------------------------------------------------------------


@bp.get("/messages")
@audited(AuditAction.VIEW, Entity.CONVERSATION_LIST)
def messages() -> Page:
    actor = current_actor()
    page, refused = page_of(lambda cursor: messaging.team_inbox(db.session, actor, cursor=cursor))
    body = render("staff/messages.html", fragment="threads", page=page, refused=refused)
    return answer(body, refused)


def _thread_page(conversation_id: int, form: ReplyForm, status: int = 200) -> Page:
    screen = screens.staff_conversation(db.session, current_actor(), conversation_id)
    shows(screen.subject)
    links = {a.id: _download_link(a.id) for _m, files in screen.thread for a in files}
    return render(
        "staff/conversation.html",
        fragment="thread",
        conversation=screen.conversation,
        patient=screen.patient,
        thread=screen.thread,
        people=screen.people,
        links=links,
        form=form,
        idempotency_key=secrets.token_urlsafe(16),
    ), status


@bp.get("/messages/<int:conversation_id>")
@audited(AuditAction.VIEW, Entity.CONVERSATION, id_arg="conversation_id")
def conversation(conversation_id: int) -> Page:
    actor = current_actor()
    # Opening a thread reads it: that change commits first, so the page shows it as read.
    if messaging.thread_unread(db.session, actor, conversation_id):
        with unit_of_work() as s:
            messaging.mark_thread_read(s, actor, conversation_id)
    return _thread_page(conversation_id, ReplyForm(formdata=None))


@bp.post("/messages/<int:conversation_id>/reply")
@audited(AuditAction.VIEW, Entity.CONVERSATION, id_arg="conversation_id")  # refused: thread shown
def reply(conversation_id: int) -> Page:
    actor = current_actor()
    form = ReplyForm()
    done = submit(
        form,
        lambda s: messaging.reply(
            s,
            actor,
            conversation_id,
            body=form.body.data or "",
            uploads=_uploads("attachment"),
            idempotency_key=request.form.get("idempotency_key") or None,
        ),
    )
    if done.ok:
        return _see_other("staff.conversation", conversation_id=conversation_id)
    return _thread_page(conversation_id, form, 422)


@bp.route("/patients/<int:patient_id>/messages/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, Entity.PATIENT_PROFILE, id_arg="patient_id")
def new_conversation(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    form = NewThreadForm()
    if request.method == "GET":
        return render("staff/new_conversation.html", patient=patient, form=form)
    done = submit(
        form,
        lambda s: messaging.start_conversation(
            s,
            actor,
            patient_id=patient.id,
            recipient_user_id=patient.user_id or 0,
            subject=form.subject.data or "",
            body=form.body.data or "",
            uploads=_uploads("attachment"),
            idempotency_key=form.idempotency_key.data or None,
        ),
    )
    if done.ok and done.value is not None:
        return _see_other("staff.conversation", conversation_id=done.value.conversation_id)
    return render("staff/new_conversation.html", patient=patient, form=form), 422


# --- Schedule ------------------------------------------------------------------------------------


def _schedule_page(
    period: schedule.Period,
    rule_form: RuleForm | None = None,
    exception_form: ExceptionForm | None = None,
    status: int = 200,
) -> Page:
    actor = current_actor()
    today = zones.clinic_today()
    return render(
        "staff/appointments.html",
        fragment="schedule",
        period=period,
        days=schedule.visits(db.session, actor, period),
        rules=schedule.rules(db.session, actor),
        exceptions=schedule.exceptions(db.session, actor, today),
        rule_form=rule_form or RuleForm(formdata=None),
        exception_form=exception_form or ExceptionForm(formdata=None),
        cancel_form=CancelForm(formdata=None),
        weekdays=[weekday_name(i) for i in range(len(schedule.WEEKDAYS))],
        hhmm=schedule.minutes_text,
        today=today,
        now=utcnow(),
        mode_form=BookingModeForm(
            formdata=None, booking_mode=schedule.booking_mode(db.session, actor).value
        ),
    ), status


@bp.get("/appointments")
@audited(AuditAction.VIEW, Entity.APPOINTMENT_LIST)
def appointments() -> Page:
    return _schedule_page(_period(request.args))


def _back_to(period: schedule.Period) -> BaseResponse:
    return _see_other("staff.appointments", view=period.view, date=period.first.isoformat())


_STATUS_ACTIONS = {
    "scheduled": AppointmentStatus.SCHEDULED,
    "completed": AppointmentStatus.COMPLETED,
    "no_show": AppointmentStatus.NO_SHOW,
}


@bp.post("/appointments/<int:appointment_id>/status")
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")  # refused: schedule shown
def appointment_status(appointment_id: int) -> Page:
    actor = current_actor()
    period = _period(request.form)
    wanted = _STATUS_ACTIONS.get(request.form.get("status", ""))
    if wanted is None:
        abort(400)
    status: AppointmentStatus = wanted
    shown(get_or_404(db.session, Appointment, appointment_id, actor))
    if run(lambda s: booking.set_status(s, actor, appointment_id, status)).ok:
        return _back_to(period)
    return _schedule_page(period, status=422)


@bp.post("/appointments/<int:appointment_id>/cancel")
@audited(AuditAction.VIEW, Entity.APPOINTMENT, id_arg="appointment_id")
def cancel_appointment(appointment_id: int) -> Page:
    actor = current_actor()
    period = _period(request.form)
    shown(get_or_404(db.session, Appointment, appointment_id, actor))
    form = CancelForm()
    if submit(form, lambda s: booking.cancel(s, actor, appointment_id, form.reason.data)).ok:
        return _back_to(period)
    return render("staff/cancel_appointment.html", form=form, appointment_id=appointment_id), 422


@bp.post("/availability/rules")
@audited(
    AuditAction.VIEW, Entity.APPOINTMENT_LIST
)  # refused: the schedule (patient names) is shown
def add_rule() -> Page:
    actor = current_actor()
    period = _period(request.form)
    form = RuleForm()

    def add(s: Session) -> AvailabilityRule:
        start, end = form.start.data, form.end.data
        assert start is not None  # DataRequired
        assert end is not None
        return schedule.add_rule(
            s,
            actor,
            # The weekday and visit length passed the choices check: ASCII digits only.
            weekday=int(form.weekday.data),
            start_minute=start.hour * 60 + start.minute,
            end_minute=end.hour * 60 + end.minute,
            slot_minutes=int(form.slot_minutes.data),
            location=form.location.data,
        )

    if submit(form, add).ok:
        return _back_to(period)
    return _schedule_page(period, rule_form=form, status=422)


@bp.post("/availability/rules/<int:rule_id>/remove")
@audit_exempt  # schedule records the change; answers only a redirect or a 404
def remove_rule(rule_id: int) -> Page:
    actor = current_actor()
    period = _period(request.form)
    with unit_of_work() as s:
        schedule.remove_rule(s, actor, rule_id)
    return _back_to(period)


@bp.post("/availability/exceptions")
@audited(
    AuditAction.VIEW, Entity.APPOINTMENT_LIST
)  # refused: the schedule (patient names) is shown
def add_exception() -> Page:
    actor = current_actor()
    period = _period(request.form)
    form = ExceptionForm()

    def add(s: Session) -> AvailabilityException:
        assert form.day.data is not None  # DataRequired
        return schedule.add_exception(
            s, actor, day=form.day.data, reason=form.reason.data, today=zones.clinic_today()
        )

    if submit(form, add).ok:
        return _back_to(period)
    return _schedule_page(period, exception_form=form, status=422)


@bp.post("/availability/exceptions/<int:exception_id>/remove")
@audit_exempt  # schedule records the change; answers only a redirect or a 404
def remove_exception(exception_id: int) -> Page:
    actor = current_actor()
    period = _period(request.form)
    with unit_of_work() as s:
        schedule.remove_exception(s, actor, exception_id)
    return _back_to(period)
