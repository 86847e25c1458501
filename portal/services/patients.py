"""Staff lists of patients: search, pages, what needs attention, and one patient's chart."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from portal.access import (
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    scoped,
    union_of,
)
from portal.models import (
    Appointment,
    Conversation,
    LabResult,
    LabResultVersion,
    Message,
    PatientProfile,
    PlanAcknowledgement,
    PlanStatus,
    ProviderProfile,
    ResultStatus,
    Role,
    TreatmentPlan,
    TreatmentPlanVersion,
)
from portal.services import care_team, labs, messaging, paging

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


#: The search term, matched anywhere in the name or MRN, LIKE wildcards taken literally.
_LIKE = bindparam("like", type_=String)


def _like(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _roster(rs: RoleScope, searching: bool) -> tuple[paging.KeysetStatements, Select[Any]]:
    """The patients a reader may see, A to Z (optionally matching `like`), and their count."""
    stmt = select(PatientProfile)
    if searching:
        stmt = stmt.where(
            or_(
                func.lower(PatientProfile.display_name).like(_LIKE, escape="\\"),
                func.lower(PatientProfile.medical_record_number).like(_LIKE, escape="\\"),
            )
        )
    stmt = rs.patients(stmt)
    keyset = paging.Keyset(
        "patients", ((PatientProfile.display_name, False), (PatientProfile.id, False))
    )
    count = stmt.with_only_columns(func.count(PatientProfile.id))
    # The total rides along as a scalar subquery: one round trip for the page and its count.
    shown = stmt.add_columns(count.scalar_subquery().correlate(None).label("total"))
    return keyset.statements(shown), count


def search(
    session: Session,
    actor: Actor,
    q: str | None = None,
    *,
    cursor: str | None = None,
    limit: int = PER_PAGE,
) -> paging.Page[PatientRow]:
    """One page of the patients the actor may see, by name; with attention counts for providers.

    Two queries whatever the page holds: the page with its total, and (providers) the
    attention counts over the page's patient ids. 403 for a patient.
    """
    require(actor, Permission.PATIENTS_LIST)
    q = (q or "").strip()[:100]
    pages, count = scoped(_roster, actor, bool(q))
    params = reader(actor, like=_like(q)) if q else reader(actor)
    page = pages.page(
        session,
        params,
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (row[0].display_name, row[0].id),
    )
    patients = [row[0] for row in page.rows]
    counts = attention_for(session, actor, [p.id for p in patients])
    rows = [PatientRow(p, counts.get(p.id, Attention())) for p in patients]
    total = page.rows[0][-1] if page.rows else 0
    if not page.rows and cursor:  # past the end: no row carries the total
        total = session.scalar(count, params) or 0
    return replace(page, rows=rows, total=total)


#: The patients an attention query is about (a list, expanded at execution).
_PATIENT_IDS = bindparam("patient_ids", type_=Integer, expanding=True)


def _unread_stmt(rs: RoleScope) -> Select[str, int, int, int | None]:
    """Per patient of `:patient_ids`: messages to the reader not yet read."""
    stmt = (
        select(literal("unread"), Message.patient_id, func.count(), null().cast(Integer))
        .where(Message.patient_id.in_(_PATIENT_IDS), messaging.unread_to(rs.user_id))
        .group_by(Message.patient_id)
    )
    return rs.scope(stmt, Message)


def _unacknowledged_stmt(rs: RoleScope) -> Select[str, int, int, int | None]:
    """Per patient of `:patient_ids`: active plans whose current version is unacknowledged."""
    stmt = (
        select(literal("plans"), TreatmentPlan.patient_id, func.count(), null().cast(Integer))
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
            TreatmentPlan.patient_id.in_(_PATIENT_IDS),
            TreatmentPlan.status == PlanStatus.ACTIVE,
            PlanAcknowledgement.id.is_(None),
        )
        .group_by(TreatmentPlan.patient_id)
    )
    return rs.scope(stmt, TreatmentPlan)


def _results_waiting_stmt(rs: RoleScope) -> Select[str, int, int | None, int | None]:
    """Per patient of `:patient_ids`: results whose current version is preliminary, and
    results whose current version awaits release."""
    preliminary = case((LabResultVersion.status == ResultStatus.PRELIMINARY, 1), else_=0)
    stmt = (
        select(
            literal("results"),
            LabResult.patient_id,
            func.sum(preliminary),
            func.sum(case((labs.awaiting_release(), 1), else_=0)),
        )
        .join(
            LabResultVersion,
            and_(
                LabResultVersion.lab_result_id == LabResult.id,
                LabResultVersion.version == LabResult.current_version,
            ),
        )
        .where(LabResult.patient_id.in_(_PATIENT_IDS))
        .group_by(LabResult.patient_id)
    )
    return rs.scope(stmt, LabResult)


def _attention_stmt(rs: RoleScope) -> CompoundSelect:
    """The three kinds of attention in one round trip, each row led by its kind."""
    return union_of(_unread_stmt(rs), _unacknowledged_stmt(rs), _results_waiting_stmt(rs))


def attention_for(session: Session, actor: Actor, patient_ids: list[int]) -> dict[int, Attention]:
    """Per patient: unread messages to the actor, active plan versions the patient has not
    acknowledged, preliminary results and results held for review. One statement."""
    if actor.role is not Role.PROVIDER or not patient_ids:
        return {}
    found: dict[tuple[str, int], tuple[int, int]] = {}
    rows = session.execute(scoped(_attention_stmt, actor), reader(actor, patient_ids=patient_ids))
    for kind, pid, first, second in rows:
        found[kind, pid] = (int(first or 0), int(second or 0))
    return {
        pid: Attention(
            unread_messages=found.get(("unread", pid), (0, 0))[0],
            unacknowledged_plans=found.get(("plans", pid), (0, 0))[0],
            preliminary_results=found.get(("results", pid), (0, 0))[0],
            held_results=found.get(("results", pid), (0, 0))[1],
        )
        for pid in patient_ids
    }


@dataclass(slots=True)
class ChartScreen:
    """The read model of a patient's chart, their provider's screen: the profile, the care team
    and the newest of each kind of record."""

    patient: PatientProfile
    care_team: list[ProviderProfile]
    results: list[labs.LabRow]
    plans: list[TreatmentPlan]
    conversations: list[Conversation]
    appointments: list[Appointment]
    attention: Attention = field(default_factory=Attention)


#: The patient whose chart is read, and how many of the newest records of a kind it shows.
_CHART_PATIENT = bindparam("patient_id", type_=Integer)
_RECENT = bindparam("recent", type_=Integer)


def _chart_plans_stmt(rs: RoleScope) -> Select[TreatmentPlan]:
    """Every plan of patient `:patient_id`: active first, then drafts, then the rest."""
    stmt = (
        select(TreatmentPlan)
        .where(TreatmentPlan.patient_id == _CHART_PATIENT)
        .order_by(
            case(
                (TreatmentPlan.status == PlanStatus.ACTIVE, 0),
                (TreatmentPlan.status == PlanStatus.DRAFT, 1),
                else_=2,
            ),
            TreatmentPlan.updated_at.desc(),
            TreatmentPlan.id.desc(),
        )
    )
    return rs.scope(stmt, TreatmentPlan)


def _chart_conversations_stmt(rs: RoleScope) -> Select[Conversation]:
    """Patient `:patient_id`'s `:recent` threads with the newest activity."""
    stmt = (
        select(Conversation)
        .where(Conversation.patient_id == _CHART_PATIENT)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(_RECENT)
    )
    return rs.scope(stmt, Conversation)


def _chart_appointments_stmt(rs: RoleScope) -> Select[Appointment]:
    """Patient `:patient_id`'s `:recent` latest appointments."""
    stmt = (
        select(Appointment)
        .where(Appointment.patient_id == _CHART_PATIENT)
        .order_by(Appointment.start_at.desc())
        .limit(_RECENT)
    )
    return rs.scope(stmt, Appointment)


def chart_screen(
    session: Session, actor: Actor, patient_id: int, *, recent: int = 10
) -> ChartScreen:
    """The chart of a patient the actor may see (404 otherwise)."""
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    team = list(
        session.scalars(care_team.members(patient.id).order_by(ProviderProfile.display_name))
    )
    params = reader(actor, patient_id=patient.id, recent=recent)
    plans = list(session.scalars(scoped(_chart_plans_stmt, actor), params))
    conversations = list(session.scalars(scoped(_chart_conversations_stmt, actor), params))
    visits = list(session.scalars(scoped(_chart_appointments_stmt, actor), params))
    return ChartScreen(
        patient=patient,
        care_team=team,
        results=labs.list_latest(session, actor, patient_id=patient.id, limit=recent),
        plans=plans,
        conversations=conversations,
        appointments=visits,
        attention=attention_for(session, actor, [patient.id]).get(patient.id, Attention()),
    )
