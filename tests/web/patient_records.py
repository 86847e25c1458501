"""Finding demo records of one patient for the patient-area tests (read as their provider)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from portal.access import RoleScope, reader
from portal.db import utcnow
from portal.models import (
    Appointment,
    Attachment,
    Conversation,
    LabResult,
    LabResultVersion,
    PlanStatus,
    TreatmentPlan,
)


@dataclass(frozen=True)
class Records:
    result_id: int  # a result the patient sees
    potassium_id: int  # the corrected one
    tsh_id: int  # the one with a PDF report
    creatinine_id: int  # provider-only
    glucose_id: int  # preliminary
    plan_id: int  # active
    draft_plan_id: int
    conversation_id: int
    attachment_id: int  # the TSH report
    appointment_id: int  # upcoming


def records_of(session, people, name: str) -> Records:
    chen = people.actor("dr_chen")
    pid = people.user(name).patient.id

    def one(model, *where, order=None):  # type: ignore[no-untyped-def]
        stmt = select(model).where(model.patient_id == pid, *where)
        if order is not None:
            stmt = stmt.order_by(order)
        row = session.scalars(RoleScope(chen.role).scope(stmt, model), reader(chen)).first()
        assert row is not None, f"no {model.__name__} for {name}"
        return row

    def result(name_part: str) -> LabResult:
        return one(LabResult, LabResult.test_name.contains(name_part), order=LabResult.id.desc())

    tsh = result("Thyroid")
    tsh_version = one(LabResultVersion, LabResultVersion.lab_result_id == tsh.id)
    return Records(
        result_id=result("Potassium").id,
        potassium_id=result("Potassium").id,
        tsh_id=tsh.id,
        creatinine_id=result("Creatinine").id,
        glucose_id=result("Glucose").id,
        plan_id=one(TreatmentPlan, TreatmentPlan.status == PlanStatus.ACTIVE).id,
        draft_plan_id=one(TreatmentPlan, TreatmentPlan.status == PlanStatus.DRAFT).id,
        conversation_id=one(Conversation).id,
        attachment_id=one(Attachment, Attachment.lab_result_version_id == tsh_version.id).id,
        appointment_id=one(
            Appointment, Appointment.start_at > utcnow(), order=Appointment.start_at
        ).id,
    )


def visible_record_ids(session, actor) -> tuple[set[str], set[str]]:  # type: ignore[no-untyped-def]
    """The FHIR ids a patient's exported record must hold, read through the services the
    portal's own pages use (the lab list with each result's versions, the plan list with each
    plan's history): (Observation ids, CarePlan ids)."""
    from portal.services import labs, plans

    observations: set[str] = set()
    cursor = None
    while True:
        page = labs.latest_page(session, actor, labs.LabFilter(), cursor=cursor, limit=100)
        for row in page.rows:
            for v in labs.versions_of(session, actor, row.result):
                observations.add(f"lab-result-{row.result.id}-{v.version}")
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    care_plans = {
        f"treatment-plan-{plan.id}-{v.version}"
        for plan in plans.list_for(session, actor, None, limit=100).rows
        for v, _ack in plans.history(session, actor, plan)
    }
    return observations, care_plans


def held_result_id(session, people, name: str) -> int:  # type: ignore[no-untyped-def]
    """The patient's genetic result, held for review (read as their provider)."""
    chen = people.actor("dr_chen")
    stmt = select(LabResult.id).where(
        LabResult.patient_id == people.user(name).patient.id, LabResult.test_code == "21636-6"
    )
    found = session.scalar(RoleScope(chen.role).scope(stmt, LabResult), reader(chen))
    assert found is not None
    return int(found)
