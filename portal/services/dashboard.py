"""A patient's dashboard: what is new since they last looked, then their plan, visits and results.

"New" has one source: the stored notifications and their read markers (the nav badge reads the
same rows). Opening a result, a thread or an appointment list marks its notifications read, and
acknowledging a plan marks the plan's; so the badge, the dashboard and every list agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.orm import Session

from portal.access import Actor, RoleScope, reader, scoped
from portal.db import UTCDateTime, utcnow
from portal.models import (
    HOLDS_SLOT,
    Appointment,
    EventType,
    Notification,
    PlanAcknowledgement,
    PlanStatus,
    ProviderProfile,
    TreatmentPlan,
    TreatmentPlanVersion,
)
from portal.services import labs

SHOWN = 5


@dataclass(frozen=True, slots=True)
class NewItem:
    entity_id: int
    text: str


@dataclass(slots=True)
class WhatsNew:
    """Counts of unread records by kind (distinct records, not notification rows)."""

    counts: dict[EventType, int] = field(default_factory=dict)
    items: dict[EventType, list[NewItem]] = field(default_factory=dict)

    def count(self, kind: EventType) -> int:
        return self.counts.get(kind, 0)

    def shown(self, kind: EventType) -> list[NewItem]:
        return self.items.get(kind, [])

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _newest_unread_stmt(rs: RoleScope) -> Select[EventType, int, str]:
    """The reader's newest unread notification per (type, record), newest first: its text
    says "New" or "Corrected". One row per unread record, so the rows also give the counts of
    distinct records by kind."""
    newest = rs.own(
        select(func.max(Notification.id))
        .where(Notification.read_at.is_(None))
        .group_by(Notification.type, Notification.entity_id)
    )
    stmt = select(Notification.type, Notification.entity_id, Notification.text)
    return rs.own(stmt.where(Notification.id.in_(newest)).order_by(Notification.id.desc()))


def _unread_of_kind_stmt(rs: RoleScope) -> Select[int]:
    """Which of the records `:entity_ids` (a list) the reader has unread notifications of
    type `:kind` about."""
    stmt = select(Notification.entity_id).where(
        Notification.read_at.is_(None),
        Notification.type == bindparam("kind"),
        Notification.entity_id.in_(bindparam("entity_ids", type_=Integer, expanding=True)),
    )
    return rs.own(stmt)


def whats_new(session: Session, actor: Actor, *, per_kind: int = SHOWN) -> WhatsNew:
    """The actor's unread notifications: how many records of each kind, and the newest few
    of each.

    One query, whatever the number of notifications.
    """
    counts: dict[EventType, int] = {}
    items: dict[EventType, list[NewItem]] = {}
    unread = session.execute(scoped(_newest_unread_stmt, actor), reader(actor))
    for kind, entity_id, text in unread:
        counts[kind] = counts.get(kind, 0) + 1
        bucket = items.setdefault(kind, [])
        if len(bucket) < per_kind:
            bucket.append(NewItem(entity_id, text))
    return WhatsNew(counts=counts, items=items)


def unread_entity_ids(
    session: Session, actor: Actor, kind: EventType, entity_ids: list[int]
) -> set[int]:
    """Which of `entity_ids` the actor has unread notifications of `kind` about (the "New"
    marks in lists)."""
    if not entity_ids:
        return set()
    params = reader(actor, kind=kind, entity_ids=entity_ids)
    return set(session.scalars(scoped(_unread_of_kind_stmt, actor), params))


@dataclass(frozen=True, slots=True)
class PlanCard:
    plan: TreatmentPlan
    acknowledged: PlanAcknowledgement | None


def _active_plan_stmt(rs: RoleScope) -> Select[TreatmentPlan]:
    """The reader's most recently activated active plan."""
    return rs.scope(
        select(TreatmentPlan)
        .where(TreatmentPlan.status == PlanStatus.ACTIVE)
        .order_by(TreatmentPlan.activated_at.desc(), TreatmentPlan.id.desc())
        .limit(1),
        TreatmentPlan,
    )


def _acknowledgement_stmt(rs: RoleScope) -> Select[PlanAcknowledgement]:
    """The acknowledgement of version `:version` of plan `:plan_id`."""
    return rs.scope(
        select(PlanAcknowledgement)
        .join(TreatmentPlanVersion, TreatmentPlanVersion.id == PlanAcknowledgement.plan_version_id)
        .where(
            TreatmentPlanVersion.plan_id == bindparam("plan_id", type_=Integer),
            TreatmentPlanVersion.version == bindparam("version", type_=Integer),
        ),
        PlanAcknowledgement,
    )


def active_plan(session: Session, actor: Actor) -> PlanCard | None:
    """The patient's active plan and whether its current version was acknowledged."""
    plan = session.scalar(scoped(_active_plan_stmt, actor), reader(actor))
    if plan is None:
        return None
    ack = session.scalar(
        scoped(_acknowledgement_stmt, actor),
        reader(actor, plan_id=plan.id, version=plan.current_version),
    )
    return PlanCard(plan, ack)


def _upcoming_stmt(rs: RoleScope) -> Select[Appointment, ProviderProfile]:
    """The reader's next three visits from `:now` that are still on (requested or scheduled:
    a cancelled one is no appointment to come), each with its provider."""
    # The provider's name comes in the same row: no second query for names.
    stmt = (
        select(Appointment, ProviderProfile)
        .outerjoin(ProviderProfile, ProviderProfile.id == Appointment.provider_id)
        .where(
            Appointment.start_at >= bindparam("now", type_=UTCDateTime),
            Appointment.status.in_(HOLDS_SLOT),
        )
        .order_by(Appointment.start_at)
        .limit(3)
    )
    return rs.scope(stmt, Appointment)


def upcoming(
    session: Session, actor: Actor
) -> tuple[list[Appointment], dict[int, ProviderProfile]]:
    """The patient's next three visits still on, with their providers."""
    rows = session.execute(scoped(_upcoming_stmt, actor), reader(actor, now=utcnow())).all()
    providers = {p.id: p for _a, p in rows if p is not None}
    return [a for a, _p in rows], providers


@dataclass(slots=True)
class DashboardScreen:
    """The read model of the patient's dashboard: what is new, the active plan, the next visits
    and the newest results."""

    new: WhatsNew
    plan: PlanCard | None
    upcoming: list[Appointment]
    providers: dict[int, ProviderProfile]
    recent: list[labs.LabRow]


def dashboard_screen(session: Session, actor: Actor) -> DashboardScreen:
    """Everything the dashboard shows, in a fixed number of queries."""
    visits, providers = upcoming(session, actor)
    return DashboardScreen(
        new=whats_new(session, actor),
        plan=active_plan(session, actor),
        upcoming=visits,
        providers=providers,
        recent=labs.list_latest(session, actor, limit=5),
    )
