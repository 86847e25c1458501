"""Provider pages. Views translate HTTP to service calls; rules live in portal.services."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from flask import Response, abort, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from portal.access import get_or_404
from portal.audit import audit_exempt, audited
from portal.auth.identity import current_actor
from portal.db import utcnow
from portal.extensions import db
from portal.models import (
    Appointment,
    AppointmentStatus,
    AuditAction,
    Conversation,
    LabResult,
    PatientProfile,
    ResultStatus,
    TreatmentPlan,
    Visibility,
)
from portal.services import appointments as booking
from portal.services import attachments, labs, messaging, plans, schedule
from portal.services import patients as roster
from portal.services.catalog import BY_CODE
from portal.staff import bp
from portal.staff.forms import (
    ActivatePlanForm,
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
from portal.web.downloads import attachment_response
from portal.web.htmx import render

Page = str | tuple[str, int] | BaseResponse


class _Err:
    """An input error for a form field other than the one the service named."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


def _fail(form: FlaskForm, exc: Any) -> None:
    """Put a service's input error on the form field it names (or on the form as a whole)."""
    field = getattr(form, exc.field, None)
    if field is not None and hasattr(field, "errors") and exc.field != "meta":
        field.errors = [*field.errors, exc.message]
    else:
        form.page_errors = [*getattr(form, "page_errors", []), exc.message]


def _upload(name: str) -> list[attachments.Upload]:
    file = request.files.get(name)
    if file is None or not file.filename:
        return []
    return [attachments.Upload(file.filename, file.read())]


def _int_arg(name: str, default: int = 1) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _see_other(endpoint: str, **values: Any) -> BaseResponse:
    return redirect(url_for(endpoint, **values), code=303)


# --- Patients and the chart ----------------------------------------------------------------------


@bp.get("/patients")
@audited(AuditAction.VIEW, "patient_list")
def patients() -> str:
    page = roster.search(db.session, current_actor(), request.args.get("q"), _int_arg("page"))
    return render("staff/patients.html", fragment="patient_list", page=page)


@bp.get("/patients/<int:patient_id>")
@audited(AuditAction.VIEW, "patient_profile", id_arg="patient_id")
def chart(patient_id: int) -> str:
    record = roster.chart(db.session, current_actor(), patient_id)
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
@audited(AuditAction.VIEW, "patient_profile", id_arg="patient_id")
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
    if not form.validate():
        return _result_form_page(patient, choose, form, 422)
    test = BY_CODE.get((form.test_code.data or "").strip())
    # Blank units or range take the catalog's, so choosing the test is enough without JS too.
    units = form.units.data or (test.units if test else None)
    reference_range = form.reference_range.data or (test.reference_range if test else None)
    status = (
        ResultStatus.PRELIMINARY
        if request.form.get("action") == "preliminary"
        else ResultStatus.FINAL
    )
    try:
        result = labs.create_result(
            db.session,
            actor,
            patient.id,
            test_code=form.test_code.data or "",
            test_name=form.test_name.data or "",
            data=labs.ResultInput(
                form.result_value.data or "",
                units,
                reference_range,
                status,
                Visibility(form.visibility.data),
            ),
        )
        for upload in _upload("report"):
            version = labs.versions_of(db.session, actor, result)[0]
            labs.attach_report(db.session, actor, version, upload)
    except (labs.LabInputError, attachments.AttachmentError) as exc:
        db.session.rollback()
        _fail(form, exc if exc.field != "attachment" else _Err("report", exc.message))
        return _result_form_page(patient, choose, form, 422)
    db.session.commit()
    return _see_other("staff.result", result_id=result.id)


def _result_page(result_id: int, form: CorrectionForm | None = None, status: int = 200) -> Page:
    actor = current_actor()
    result = get_or_404(db.session, LabResult, result_id, actor)
    versions = labs.versions_of(db.session, actor, result)
    files = labs.attachments_of(db.session, actor, [v.id for v in versions])
    links = {
        a.id: url_for("staff.attachment", token=attachments.link_token(a.id, current_user.id))
        for rows in files.values()
        for a in rows
    }
    held = labs.held_version(db.session, actor, result)
    user_ids = {u for v in versions for u in (v.published_by_id, v.reviewed_by_id) if u}
    policy = labs.describe_policy(labs.release_policy_for(db.session, result.category))
    patient = get_or_404(db.session, PatientProfile, result.patient_id, actor)
    return render(
        "staff/result.html",
        result=result,
        patient=patient,
        versions=versions,
        files=files,
        links=links,
        held=held,
        people=messaging.users_by_id(db.session, user_ids),
        policy=policy,
    ), status


@bp.get("/results/<int:result_id>")
@audited(AuditAction.VIEW, "lab_result", id_arg="result_id")
def result(result_id: int) -> Page:
    return _result_page(result_id)


@bp.route("/results/<int:result_id>/correct", methods=["GET", "POST"])
@audited(AuditAction.VIEW, "lab_result", id_arg="result_id")
def correct_result(result_id: int) -> Page:
    actor = current_actor()
    result = get_or_404(db.session, LabResult, result_id, actor)
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
    if form.validate():
        try:
            version = labs.add_version(
                db.session,
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
            )
            for upload in _upload("report"):
                labs.attach_report(db.session, actor, version, upload)
        except (labs.LabInputError, attachments.AttachmentError) as exc:
            db.session.rollback()
            _fail(form, exc if exc.field != "attachment" else _Err("report", exc.message))
        else:
            db.session.commit()
            return _see_other("staff.result", result_id=result.id)
    return render(
        "staff/correct_result.html", result=result, current=current, patient=patient, form=form
    ), 422


@bp.post("/results/<int:result_id>/release")
@audit_exempt  # labs.release_version records the release
def release_result(result_id: int) -> Page:
    try:
        labs.review_and_release(db.session, current_actor(), result_id)
    except labs.ReleaseError:
        db.session.rollback()
        return _result_page(result_id, status=422)
    db.session.commit()
    return _see_other("staff.result", result_id=result_id)


@bp.get("/attachments/<token>")
@audited(AuditAction.DOWNLOAD, "attachment")
def attachment(token: str) -> Response:
    return attachment_response(token)


# --- Treatment plans -----------------------------------------------------------------------------


def _plan_input(form: PlanForm) -> plans.PlanInput:
    return plans.PlanInput(
        form.summary.data or "", form.details.data or "", form.start_date.data, form.end_date.data
    )


@bp.route("/patients/<int:patient_id>/plans/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, "patient_profile", id_arg="patient_id")
def new_plan(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    form = PlanForm()
    if request.method == "POST":
        if form.validate():
            try:
                plan = plans.create_draft(db.session, actor, patient.id, _plan_input(form))
            except plans.PlanError as exc:
                db.session.rollback()
                _fail(form, exc)
            else:
                db.session.commit()
                return _see_other("staff.plan", plan_id=plan.id)
        return render("staff/plan_form.html", patient=patient, form=form, plan=None), 422
    return render("staff/plan_form.html", patient=patient, form=form, plan=None)


def _plan_page(plan_id: int, error: str | None = None, status: int = 200) -> Page:
    actor = current_actor()
    plan = get_or_404(db.session, TreatmentPlan, plan_id, actor)
    patient = get_or_404(db.session, PatientProfile, plan.patient_id, actor)
    history = plans.history(db.session, actor, plan)
    user_ids = {v.author_id for v, _a in history} | {plan.author_id, plan.approver_id or 0}
    return render(
        "staff/plan.html",
        plan=plan,
        patient=patient,
        history=history,
        people=messaging.users_by_id(db.session, user_ids),
        activate_form=ActivatePlanForm(formdata=None),
        error=error,
    ), status


@bp.get("/plans/<int:plan_id>")
@audited(AuditAction.VIEW, "treatment_plan", id_arg="plan_id")
def plan(plan_id: int) -> Page:
    return _plan_page(plan_id)


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@audited(AuditAction.VIEW, "treatment_plan", id_arg="plan_id")
def edit_plan(plan_id: int) -> Page:
    actor = current_actor()
    plan = get_or_404(db.session, TreatmentPlan, plan_id, actor)
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
    if form.validate():
        try:
            plans.revise(db.session, actor, plan.id, _plan_input(form), note=form.note.data or None)
        except plans.PlanError as exc:
            db.session.rollback()
            _fail(form, exc)
        else:
            db.session.commit()
            return _see_other("staff.plan", plan_id=plan.id)
    return render("staff/plan_form.html", patient=patient, form=form, plan=plan), 422


@bp.post("/plans/<int:plan_id>/activate")
@audit_exempt  # plans.activate records it
def activate_plan(plan_id: int) -> Page:
    form = ActivatePlanForm()
    if not form.validate():
        abort(400)
    try:
        plans.activate(
            db.session, current_actor(), plan_id, complete_others=bool(form.complete_others.data)
        )
    except plans.PlanError as exc:
        db.session.rollback()
        return _plan_page(plan_id, exc.message, 422)
    db.session.commit()
    return _see_other("staff.plan", plan_id=plan_id)


@bp.post("/plans/<int:plan_id>/complete")
@audit_exempt  # plans.complete records it
def complete_plan(plan_id: int) -> Page:
    try:
        plans.complete(db.session, current_actor(), plan_id)
    except plans.PlanError as exc:
        db.session.rollback()
        return _plan_page(plan_id, exc.message, 422)
    db.session.commit()
    return _see_other("staff.plan", plan_id=plan_id)


# --- Messages ------------------------------------------------------------------------------------


@bp.get("/messages")
@audited(AuditAction.VIEW, "conversation_list")
def messages() -> str:
    threads = messaging.team_inbox(db.session, current_actor())
    return render("staff/messages.html", threads=threads)


def _thread_page(conversation_id: int, form: ReplyForm, status: int = 200) -> Page:
    actor = current_actor()
    conversation = get_or_404(db.session, Conversation, conversation_id, actor)
    patient = get_or_404(db.session, PatientProfile, conversation.patient_id, actor)
    thread = messaging.thread_messages(db.session, actor, conversation)
    if status == 200 and messaging.mark_thread_read(db.session, actor, conversation.id):
        db.session.commit()
    user_ids = {u for m, _f in thread for u in (m.sender_id, m.recipient_id)}
    links = {
        a.id: url_for("staff.attachment", token=attachments.link_token(a.id, current_user.id))
        for _m, files in thread
        for a in files
    }
    return render(
        "staff/conversation.html",
        fragment="thread",
        conversation=conversation,
        patient=patient,
        thread=thread,
        people=messaging.users_by_id(db.session, user_ids),
        links=links,
        form=form,
        idempotency_key=secrets.token_urlsafe(16),
    ), status


@bp.get("/messages/<int:conversation_id>")
@audited(AuditAction.VIEW, "conversation", id_arg="conversation_id")
def conversation(conversation_id: int) -> Page:
    return _thread_page(conversation_id, ReplyForm(formdata=None))


@bp.post("/messages/<int:conversation_id>/reply")
@audit_exempt  # messaging records the message it sends
def reply(conversation_id: int) -> Page:
    form = ReplyForm()
    if form.validate():
        try:
            messaging.reply(
                db.session,
                current_actor(),
                conversation_id,
                body=form.body.data or "",
                uploads=_upload("attachment"),
                idempotency_key=request.form.get("idempotency_key") or None,
            )
        except (messaging.MessageError, attachments.AttachmentError) as exc:
            db.session.rollback()
            _fail(form, exc)
        else:
            db.session.commit()
            return _see_other("staff.conversation", conversation_id=conversation_id)
    return _thread_page(conversation_id, form, 422)


@bp.route("/patients/<int:patient_id>/messages/new", methods=["GET", "POST"])
@audited(AuditAction.VIEW, "patient_profile", id_arg="patient_id")
def new_conversation(patient_id: int) -> Page:
    actor = current_actor()
    patient = get_or_404(db.session, PatientProfile, patient_id, actor)
    form = NewThreadForm()
    if request.method == "POST":
        if form.validate():
            try:
                message = messaging.start_conversation(
                    db.session,
                    actor,
                    patient_id=patient.id,
                    recipient_user_id=patient.user_id or 0,
                    subject=form.subject.data or "",
                    body=form.body.data or "",
                    uploads=_upload("attachment"),
                )
            except (messaging.MessageError, attachments.AttachmentError) as exc:
                db.session.rollback()
                _fail(form, exc)
            else:
                db.session.commit()
                return _see_other("staff.conversation", conversation_id=message.conversation_id)
        return render("staff/new_conversation.html", patient=patient, form=form), 422
    return render("staff/new_conversation.html", patient=patient, form=form)


# --- Schedule ------------------------------------------------------------------------------------


def _period() -> schedule.Period:
    try:
        day = date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        day = utcnow().date()
    return schedule.Period.of(request.args.get("view"), day)


def _schedule_page(
    rule_form: RuleForm | None = None,
    exception_form: ExceptionForm | None = None,
    status: int = 200,
    error: str | None = None,
) -> Page:
    actor = current_actor()
    period = _period()
    return render(
        "staff/appointments.html",
        fragment="schedule",
        period=period,
        days=schedule.visits(db.session, actor, period),
        rules=schedule.rules(db.session, actor),
        exceptions=schedule.exceptions(db.session, actor, utcnow().date()),
        rule_form=rule_form or RuleForm(formdata=None),
        exception_form=exception_form or ExceptionForm(formdata=None),
        cancel_form=CancelForm(formdata=None),
        weekdays=schedule.WEEKDAYS,
        hhmm=schedule.minutes_text,
        today=utcnow().date(),
        error=error,
    ), status


@bp.get("/appointments")
@audited(AuditAction.VIEW, "appointment_list")
def appointments() -> Page:
    return _schedule_page()


def _back_to_schedule() -> BaseResponse:
    view = "week" if request.form.get("view") == "week" else "day"
    try:
        day = date.fromisoformat(request.form.get("date", "")).isoformat()
    except ValueError:
        day = None
    return _see_other("staff.appointments", view=view, date=day)


_STATUS_ACTIONS = {
    "scheduled": AppointmentStatus.SCHEDULED,
    "completed": AppointmentStatus.COMPLETED,
    "no_show": AppointmentStatus.NO_SHOW,
}


@bp.post("/appointments/<int:appointment_id>/status")
@audit_exempt  # appointments.set_status records it
def appointment_status(appointment_id: int) -> Page:
    status = _STATUS_ACTIONS.get(request.form.get("status", ""))
    if status is None:
        abort(400)
    try:
        booking.set_status(db.session, current_actor(), appointment_id, status)
    except booking.AppointmentError as exc:
        db.session.rollback()
        return _schedule_page(error=exc.message, status=422)
    db.session.commit()
    return _back_to_schedule()


@bp.post("/appointments/<int:appointment_id>/cancel")
@audit_exempt  # appointments.cancel records it
def cancel_appointment(appointment_id: int) -> Page:
    actor = current_actor()
    get_or_404(db.session, Appointment, appointment_id, actor)
    form = CancelForm()
    if not form.validate():
        return render(
            "staff/cancel_appointment.html", form=form, appointment_id=appointment_id
        ), 422
    try:
        booking.cancel(db.session, actor, appointment_id, form.reason.data)
    except booking.AppointmentError as exc:
        db.session.rollback()
        _fail(form, _Err("reason", exc.message))
        return render(
            "staff/cancel_appointment.html", form=form, appointment_id=appointment_id
        ), 422
    db.session.commit()
    return _back_to_schedule()


@bp.post("/availability/rules")
@audit_exempt  # schedule records the change; no PHI shown
def add_rule() -> Page:
    form = RuleForm()
    if form.validate():
        start, end = form.start.data, form.end.data
        assert start is not None
        assert end is not None
        try:
            schedule.add_rule(
                db.session,
                current_actor(),
                weekday=int(form.weekday.data),
                start_minute=start.hour * 60 + start.minute,
                end_minute=end.hour * 60 + end.minute,
                slot_minutes=int(form.slot_minutes.data),
                location=form.location.data,
            )
        except schedule.ScheduleError as exc:
            db.session.rollback()
            _fail(form, exc)
        else:
            db.session.commit()
            return _back_to_schedule()
    return _schedule_page(rule_form=form, status=422)


@bp.post("/availability/rules/<int:rule_id>/remove")
@audit_exempt  # schedule records the change; no PHI shown
def remove_rule(rule_id: int) -> Page:
    schedule.remove_rule(db.session, current_actor(), rule_id)
    db.session.commit()
    return _back_to_schedule()


@bp.post("/availability/exceptions")
@audit_exempt  # schedule records the change; no PHI shown
def add_exception() -> Page:
    form = ExceptionForm()
    if form.validate():
        assert form.day.data is not None
        try:
            schedule.add_exception(
                db.session,
                current_actor(),
                day=form.day.data,
                reason=form.reason.data,
                today=utcnow().date(),
            )
        except schedule.ScheduleError as exc:
            db.session.rollback()
            _fail(form, exc)
        else:
            db.session.commit()
            return _back_to_schedule()
    return _schedule_page(exception_form=form, status=422)


@bp.post("/availability/exceptions/<int:exception_id>/remove")
@audit_exempt  # schedule records the change; no PHI shown
def remove_exception(exception_id: int) -> Page:
    schedule.remove_exception(db.session, current_actor(), exception_id)
    db.session.commit()
    return _back_to_schedule()
