"""Treatment plans: a patient's list, a new draft, and the lifecycle steps (docs/api.md).

Every rule (who may see or change which plan, which state allows which step, drafts hidden
from patients) is the plans service's; this module parses, calls one verb and shapes the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import Field
from sqlalchemy.orm import Session

from portal.access import Actor, get_or_404
from portal.api import bp
from portal.api.operations import operation
from portal.api.schemas import Instant, PageOut, PageQuery, Record, Schema, with_example
from portal.audit import audited
from portal.models import AuditAction, Entity, PlanStatus, TreatmentPlan
from portal.services import plans

TAG = "Treatment plans"


class PlanOut(Record):
    """A plan as it is now: its current version's content and where it is in its lifecycle."""

    model_config = with_example(
        {
            "id": 23,
            "createdAt": "2026-11-03T11:20:00Z",
            "updatedAt": "2026-11-04T08:02:13Z",
            "patientId": 5,
            "status": "active",
            "summary": "Bring HbA1c below 5.7 %",
            "details": "Walk briskly 30 minutes, five days a week; fewer sugary drinks. "
            "Repeat HbA1c in 3 months.",
            "startDate": "2026-11-05",
            "endDate": "2027-02-05",
            "version": 1,
            "createdBy": 2,
            "activatedAt": "2026-11-04T08:02:13Z",
            "completedAt": None,
            "approvedBy": 2,
            "acknowledgedAt": "2026-11-04T19:30:00Z",
        }
    )

    patient_id: int
    status: PlanStatus
    summary: str
    details: str
    start_date: date | None
    end_date: date | None
    #: The current version's number; every change keeps the earlier versions.
    version: int
    #: The user id of the provider who wrote the plan.
    created_by: int
    activated_at: Instant | None
    completed_at: Instant | None
    #: The user id of the provider who approved and activated it (null while a draft).
    approved_by: int | None = None
    #: When the patient confirmed reading the current version (null: not yet).
    acknowledged_at: Instant | None = None


_ACTIVATED = {
    "id": 24,
    "createdAt": "2026-11-03T11:20:00Z",
    "updatedAt": "2026-11-04T08:02:13Z",
    "patientId": 5,
    "status": "active",
    "summary": "Bring HbA1c below 5.7 %",
    "details": "Walk briskly 30 minutes, five days a week; fewer sugary drinks.",
    "startDate": "2026-11-05",
    "endDate": "2027-02-05",
    "version": 2,
    "createdBy": 2,
    "activatedAt": "2026-11-04T08:02:13Z",
    "completedAt": None,
    "approvedBy": 2,
    "acknowledgedAt": None,
    "completedPlanIds": [23],
    "keptActivePlanIds": [],
}


class ActivateIn(Schema):
    """What happens to the patient's other active plans: `complete` them (the default: this
    plan replaces them) or `keep` them active beside this one."""

    model_config = with_example({"otherActivePlans": "keep"})

    other_active_plans: Literal["complete", "keep"] = "complete"


class ActivatedOut(PlanOut):
    """The activated plan, and what became of the patient's other active plans."""

    model_config = with_example(_ACTIVATED)

    #: The other active plans this activation completed.
    completed_plan_ids: list[int]
    #: The other active plans left active (`otherActivePlans: keep`).
    kept_active_plan_ids: list[int]


class PlanListQuery(PageQuery):
    """`status` filters the list (a patient never sees drafts)."""

    status: PlanStatus | None = None


class PlanIn(Schema):
    """A new draft. The plans service checks the rest (a summary, the end after the start)."""

    model_config = with_example(
        {
            "summary": "Bring HbA1c below 5.7 %",
            "details": "Walk briskly 30 minutes, five days a week; fewer sugary drinks. "
            "Repeat HbA1c in 3 months.",
            "startDate": "2026-11-05",
            "endDate": "2027-02-05",
        }
    )

    summary: str = Field(max_length=300)
    details: str = Field(default="", max_length=20_000)
    start_date: date | None = None
    end_date: date | None = None


def _shaped(session: Session, actor: Actor, rows: Sequence[TreatmentPlan]) -> list[PlanOut]:
    """`rows` with their current versions' details (one query for all of them)."""
    current = plans.current_versions(session, actor, rows)
    read = plans.acknowledged_at(session, actor, list(current.values()))
    return [
        PlanOut(
            id=p.id,
            created_at=p.created_at,
            updated_at=p.updated_at,
            patient_id=p.patient_id,
            status=p.status,
            summary=p.summary,
            details=current[p.id].details if p.id in current else "",
            start_date=p.start_date,
            end_date=p.end_date,
            version=p.current_version,
            created_by=p.author_id,
            activated_at=p.activated_at,
            completed_at=p.completed_at,
            approved_by=p.approver_id,
            acknowledged_at=read.get(current[p.id].id) if p.id in current else None,
        )
        for p in rows
    ]


def _one(session: Session, actor: Actor, plan: TreatmentPlan) -> PlanOut:
    return _shaped(session, actor, [plan])[0]


@operation(
    bp,
    "GET",
    "/patients/<int:patient_id>/treatment-plans",
    summary="A patient's treatment plans",
    tag=TAG,
    query=PlanListQuery,
    response=PageOut[PlanOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.TREATMENT_PLAN_LIST)
def list_treatment_plans(
    session: Session, actor: Actor, patient_id: int, *, query: PlanListQuery
) -> PageOut[PlanOut]:
    """Newest first: active plans by activation, completed ones by completion, drafts and
    the unfiltered list by creation. Patients never see drafts."""
    page = plans.list_for(
        session,
        actor,
        query.status,
        patient_id=patient_id,
        cursor=query.cursor,
        limit=query.limit,
    )
    return PageOut[PlanOut](items=_shaped(session, actor, page.rows), next_cursor=page.next_cursor)


@operation(
    bp,
    "POST",
    "/patients/<int:patient_id>/treatment-plans",
    summary="Write a draft plan",
    tag=TAG,
    body=PlanIn,
    response=PlanOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def create_treatment_plan(
    session: Session, actor: Actor, patient_id: int, *, body: PlanIn
) -> PlanOut:
    """A draft, seen by the care team only until it is activated."""
    data = plans.PlanInput(body.summary, body.details, body.start_date, body.end_date)
    return _one(session, actor, plans.create_draft(session, actor, patient_id, data))


@operation(
    bp,
    "POST",
    "/treatment-plans/<int:plan_id>/activate",
    summary="Activate a draft",
    tag=TAG,
    body=ActivateIn,
    response=ActivatedOut,
    idempotent=True,
    errors=(403, 409),
)
def activate_treatment_plan(
    session: Session, actor: Actor, plan_id: int, *, body: ActivateIn
) -> ActivatedOut:
    """The draft becomes the patient's active plan (a new version; the draft stays in the
    history), approved by the caller. The patient's other active plans are completed, or,
    with `otherActivePlans: keep`, stay active; the answer lists which. The body may be
    left out. 422 for a plan that is not a draft."""
    plan, completed, kept = plans.activate_saying(
        session, actor, plan_id, complete_others=body.other_active_plans == "complete"
    )
    return ActivatedOut(
        **dict(_one(session, actor, plan)),
        completed_plan_ids=completed,
        kept_active_plan_ids=kept,
    )


@operation(
    bp,
    "POST",
    "/treatment-plans/<int:plan_id>/complete",
    summary="Complete an active plan",
    tag=TAG,
    response=PlanOut,
    idempotent=True,
    errors=(403, 409),
)
def complete_treatment_plan(session: Session, actor: Actor, plan_id: int) -> PlanOut:
    """An active plan is completed (a new version). 422 for a plan that is not active."""
    return _one(session, actor, plans.complete(session, actor, plan_id))


@operation(
    bp,
    "POST",
    "/treatment-plans/<int:plan_id>/acknowledge",
    summary="Confirm having read the active plan",
    tag=TAG,
    response=PlanOut,
    idempotent=True,
    errors=(403, 409),
)
def acknowledge_treatment_plan(session: Session, actor: Actor, plan_id: int) -> PlanOut:
    """The patient confirms they read the plan's current version; once per version (again
    changes nothing). 422 for a plan that is not active."""
    plans.acknowledge(session, actor, plan_id)
    return _one(session, actor, get_or_404(session, TreatmentPlan, plan_id, actor))


__all__ = ["ActivateIn", "ActivatedOut", "PlanIn", "PlanListQuery", "PlanOut"]
