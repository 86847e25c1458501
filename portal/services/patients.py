"""Staff lists of patients: search, pages, what needs attention, and one patient's chart."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from portal.access import Actor, get_or_404, scope, scope_patients
from portal.models import (
    Appointment,
    CareAssignment,
    Conversation,
    LabResult,
    LabResultVersion,
    Message,
    MessageStatus,
    PatientProfile,
    PlanAcknowledgement,
    PlanStatus,
    ProviderProfile,
    ResultStatus,
    Role,
    TreatmentPlan,
    TreatmentPlanVersion,
)
from portal.services import labs

PER_PAGE = 20


@dataclass(frozen=True, slots=True)
class Attention:
    """What waits for the provider about one patient."""

    unread_messages: int = 0
    unacknowledged_plans: int = 0
    preliminary_results: int = 0
    held_results: int = 0

    @property
    def any(self) -> bool:
        return bool(
            self.unread_messages
            or self.unacknowledged_plans
            or self.preliminary_results
            or self.held_results
        )


@dataclass(frozen=True, slots=True)
class PatientRow:
    patient: PatientProfile
    attention: Attention


@dataclass(frozen=True, slots=True)
class PatientPage:
    rows: list[PatientRow]
    total: int
    page: int
    per_page: int
    q: str

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def _search(stmt: Select, q: str) -> Select:
    if not q:
        return stmt
    # LIKE wildcards typed by the user are matched literally.
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"%{escaped}%"
    return stmt.where(
        or_(
            func.lower(PatientProfile.display_name).like(like, escape="\\"),
            func.lower(PatientProfile.medical_record_number).like(like, escape="\\"),
        )
    )


def search(
    session: Session, actor: Actor, q: str | None = None, page: int = 1, per_page: int = PER_PAGE
) -> PatientPage:
    """One page of the patients the actor may see, by name; with attention counts for providers.

    A bounded number of queries whatever the page holds: the total, the page, and (providers)
    one grouped query per kind of attention over the page's patient ids.
    """
    q = (q or "").strip()[:100]
    base = _search(select(PatientProfile), q)
    total = (
        session.scalar(scope_patients(base.with_only_columns(func.count(PatientProfile.id)), actor))
        or 0
    )
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    patients = list(
        session.scalars(
            scope_patients(
                base.order_by(PatientProfile.display_name, PatientProfile.id)
                .limit(per_page)
                .offset((page - 1) * per_page),
                actor,
            )
        ).unique()
    )
    counts = attention_for(session, actor, [p.id for p in patients])
    rows = [PatientRow(p, counts.get(p.id, Attention())) for p in patients]
    return PatientPage(rows=rows, total=total, page=page, per_page=per_page, q=q)


def attention_for(session: Session, actor: Actor, patient_ids: list[int]) -> dict[int, Attention]:
    """Per patient: unread messages to the actor, active plan versions the patient has not
    acknowledged, preliminary results and results held for review. Three queries."""
    if actor.role is not Role.PROVIDER or not patient_ids:
        return {}
    unread = dict(
        session.execute(
            scope(
                select(Message.patient_id, func.count())
                .where(
                    Message.patient_id.in_(patient_ids),
                    Message.recipient_id == actor.user_id,
                    Message.status != MessageStatus.READ,
                )
                .group_by(Message.patient_id),
                Message,
                actor,
            )
        ).all()
    )
    unacknowledged = dict(
        session.execute(
            scope(
                select(TreatmentPlan.patient_id, func.count())
                .join(
                    TreatmentPlanVersion,
                    and_(
                        TreatmentPlanVersion.plan_id == TreatmentPlan.id,
                        TreatmentPlanVersion.version == TreatmentPlan.current_version,
                    ),
                )
                .outerjoin(
                    PlanAcknowledgement,
                    PlanAcknowledgement.plan_version_id == TreatmentPlanVersion.id,
                )
                .where(
                    TreatmentPlan.patient_id.in_(patient_ids),
                    TreatmentPlan.status == PlanStatus.ACTIVE,
                    PlanAcknowledgement.id.is_(None),
                )
                .group_by(TreatmentPlan.patient_id),
                TreatmentPlan,
                actor,
            )
        ).all()
    )
    held = labs.awaiting_release()
    results = {
        pid: (int(pre or 0), int(hold or 0))
        for pid, pre, hold in session.execute(
            scope(
                select(
                    LabResult.patient_id,
                    func.sum(
                        case((LabResultVersion.status == ResultStatus.PRELIMINARY, 1), else_=0)
                    ),
                    func.sum(case((held, 1), else_=0)),
                )
                .join(
                    LabResultVersion,
                    and_(
                        LabResultVersion.lab_result_id == LabResult.id,
                        LabResultVersion.version == LabResult.current_version,
                    ),
                )
                .where(LabResult.patient_id.in_(patient_ids))
                .group_by(LabResult.patient_id),
                LabResult,
                actor,
            )
        ).all()
    }
    return {
        pid: Attention(
            unread_messages=int(unread.get(pid, 0)),
            unacknowledged_plans=int(unacknowledged.get(pid, 0)),
            preliminary_results=results.get(pid, (0, 0))[0],
            held_results=results.get(pid, (0, 0))[1],
        )
        for pid in patient_ids
    }


@dataclass(slots=True)
class Chart:
    """One patient's page for their provider: profile and the newest of each kind of record."""

    patient: PatientProfile
    care_team: list[ProviderProfile]
    results: list[labs.LabRow]
    plans: list[TreatmentPlan]
    conversations: list[Conversation]
    appointments: list[Appointment]
    attention: Attention = field(default_factory=Attention)


def chart(session: Session, actor: Actor, patient_id: int, *, recent: int = 10) -> Chart:
    """The chart of a patient the actor may see (404 otherwise)."""
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    team = list(
        session.scalars(
            select(ProviderProfile)
            .join(CareAssignment, CareAssignment.provider_id == ProviderProfile.id)
            .where(CareAssignment.patient_id == patient.id, CareAssignment.ended_at.is_(None))
            .order_by(ProviderProfile.display_name)
        )
    )
    plans = list(
        session.scalars(
            scope(
                select(TreatmentPlan)
                .where(TreatmentPlan.patient_id == patient.id)
                .order_by(
                    case(
                        (TreatmentPlan.status == PlanStatus.ACTIVE, 0),
                        (TreatmentPlan.status == PlanStatus.DRAFT, 1),
                        else_=2,
                    ),
                    TreatmentPlan.updated_at.desc(),
                    TreatmentPlan.id.desc(),
                ),
                TreatmentPlan,
                actor,
            )
        )
    )
    conversations = list(
        session.scalars(
            scope(
                select(Conversation)
                .where(Conversation.patient_id == patient.id)
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(recent),
                Conversation,
                actor,
            )
        )
    )
    visits = list(
        session.scalars(
            scope(
                select(Appointment)
                .where(Appointment.patient_id == patient.id)
                .order_by(Appointment.start_at.desc())
                .limit(recent),
                Appointment,
                actor,
            )
        )
    )
    return Chart(
        patient=patient,
        care_team=team,
        results=labs.list_latest(session, actor, patient_id=patient.id, limit=recent),
        plans=plans,
        conversations=conversations,
        appointments=visits,
        attention=attention_for(session, actor, [patient.id]).get(patient.id, Attention()),
    )
