"""A patient's dashboard: what is new since they last looked, then their plan, visits and results.

"New" has one source: the stored notifications and their read markers (the nav badge reads the
same rows). Opening a result, a thread or an appointment list marks its notifications read, and
acknowledging a plan marks the plan's; so the badge, the dashboard and every list agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from portal.access import Actor, scope
from portal.models import (
    Appointment,
    EventType,
    Notification,
    PlanAcknowledgement,
    PlanStatus,
    ProviderProfile,
    TreatmentPlan,
    TreatmentPlanVersion,
)
from portal.services import appointments, labs

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


def whats_new(session: Session, user_id: int, *, per_kind: int = SHOWN) -> WhatsNew:
    """Unread notifications: how many records of each kind, and the newest few of each.

    Two queries, whatever the number of notifications.
    """
    unread = (Notification.user_id == user_id, Notification.read_at.is_(None))
    counts = dict(
        session.execute(
            select(Notification.type, func.count(distinct(Notification.entity_id)))
            .where(*unread)
            .group_by(Notification.type)
        ).all()
    )
    # The newest notification per (type, record): its text says "New" or "Corrected".
    newest = (
        select(func.max(Notification.id))
        .where(*unread)
        .group_by(Notification.type, Notification.entity_id)
    )
    rows = session.scalars(
        select(Notification).where(Notification.id.in_(newest)).order_by(Notification.id.desc())
    )
    items: dict[EventType, list[NewItem]] = {}
    for n in rows:
        bucket = items.setdefault(n.type, [])
        if len(bucket) < per_kind:
            bucket.append(NewItem(n.entity_id, n.text))
    return WhatsNew(counts=counts, items=items)


def unread_entity_ids(
    session: Session, user_id: int, kind: EventType, entity_ids: list[int]
) -> set[int]:
    """Which of `entity_ids` have unread notifications of `kind` (the "New" marks in lists)."""
    if not entity_ids:
        return set()
    return set(
        session.scalars(
            select(Notification.entity_id).where(
                Notification.user_id == user_id,
                Notification.read_at.is_(None),
                Notification.type == kind,
                Notification.entity_id.in_(entity_ids),
            )
        )
    )


@dataclass(frozen=True, slots=True)
class PlanCard:
    plan: TreatmentPlan
    acknowledged: PlanAcknowledgement | None


def active_plan(session: Session, actor: Actor) -> PlanCard | None:
    """The patient's active plan and whether its current version was acknowledged."""
    plan = session.scalar(
        scope(
            select(TreatmentPlan)
            .where(TreatmentPlan.status == PlanStatus.ACTIVE)
            .order_by(TreatmentPlan.activated_at.desc(), TreatmentPlan.id.desc())
            .limit(1),
            TreatmentPlan,
            actor,
        )
    )
    if plan is None:
        return None
    ack = session.scalar(
        scope(
            select(PlanAcknowledgement)
            .join(
                TreatmentPlanVersion, TreatmentPlanVersion.id == PlanAcknowledgement.plan_version_id
            )
            .where(
                TreatmentPlanVersion.plan_id == plan.id,
                TreatmentPlanVersion.version == plan.current_version,
            ),
            PlanAcknowledgement,
            actor,
        )
    )
    return PlanCard(plan, ack)


@dataclass(slots=True)
class Dashboard:
    new: WhatsNew
    plan: PlanCard | None
    upcoming: list[Appointment]
    providers: dict[int, ProviderProfile]
    recent: list[labs.LabRow]


def for_patient(session: Session, actor: Actor) -> Dashboard:
    """Everything the dashboard shows, in a fixed number of queries."""
    upcoming = appointments.list_for(session, actor, upcoming=True, limit=3)
    return Dashboard(
        new=whats_new(session, actor.user_id),
        plan=active_plan(session, actor),
        upcoming=upcoming,
        providers=appointments.providers_by_id(session, {a.provider_id for a in upcoming}),
        recent=labs.list_latest(session, actor, limit=5),
    )
