"""A provider's schedule: appointments by day or week, weekly hours and days off."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit, zones
from portal.access import Actor, Permission, RoleScope, reader, require, scoped
from portal.db import UTCDateTime, utcnow
from portal.models import (
    Appointment,
    AppointmentStatus,
    AuditAction,
    AvailabilityException,
    AvailabilityRule,
    BookingMode,
    Entity,
    PatientProfile,
    ProviderProfile,
)
from portal.services import paging
from portal.services.errors import ServiceError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ScheduleError(ServiceError):
    """Weekly hours or a day off that cannot be saved."""


@dataclass(frozen=True, slots=True)
class Period:
    view: str  # "day" or "week"
    first: date
    days: int

    @classmethod
    def of(cls, view: str | None, day: date) -> Period:
        if view == "week":
            return cls("week", day - timedelta(days=day.weekday()), 7)
        return cls("day", day, 1)

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.days - 1)

    @property
    def previous(self) -> date:
        return self.first - timedelta(days=self.days)

    @property
    def next(self) -> date:
        return self.first + timedelta(days=self.days)

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True, slots=True)
class Visit:
    appointment: Appointment
    patient: PatientProfile


def _visits_stmt(rs: RoleScope) -> Select[Appointment, PatientProfile]:
    """The reader's own appointments from `:start` to before `:end`, with their patients."""
    stmt = (
        select(Appointment, PatientProfile)
        .join(PatientProfile, PatientProfile.id == Appointment.patient_id)
        .where(
            Appointment.provider_id == rs.provider_id,
            Appointment.start_at >= bindparam("start", type_=UTCDateTime),
            Appointment.start_at < bindparam("end", type_=UTCDateTime),
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    return rs.scope(stmt, Appointment)


def visits(session: Session, actor: Actor, period: Period) -> dict[date, list[Visit]]:
    """The actor's appointments in `period`, by day, each with its patient (one query)."""
    require(actor, Permission.APPOINTMENT_MANAGE)
    zone = zones.clinic_zone()  # the clinic's days, as its hours are
    start = zones.day_start(period.first, zone)
    end = zones.day_start(period.next, zone)
    params = reader(actor, start=start, end=end)
    by_day: dict[date, list[Visit]] = {d: [] for d in period.dates()}
    for appointment, patient in session.execute(scoped(_visits_stmt, actor), params).unique():
        day = zones.local_day(appointment.start_at, zone)
        by_day.setdefault(day, []).append(Visit(appointment, patient))
    return by_day


_REQUESTS = paging.Keyset("requests", ((Appointment.start_at, False), (Appointment.id, False)))


def _requests_stmt(rs: RoleScope) -> paging.KeysetStatements:
    """The reader's pending requests from `:now` on, soonest first, with their patients."""
    stmt = (
        select(Appointment, PatientProfile)
        .join(PatientProfile, PatientProfile.id == Appointment.patient_id)
        .where(
            Appointment.provider_id == rs.provider_id,
            Appointment.status == AppointmentStatus.REQUESTED,
            # A time proposed back waits for the patient, not for the provider.
            Appointment.proposed_by_id.is_(None),
            Appointment.start_at >= bindparam("now", type_=UTCDateTime),
        )
    )
    return _REQUESTS.statements(rs.scope(stmt, Appointment))


def requests(
    session: Session, actor: Actor, *, cursor: str | None = None, limit: int = paging.DEFAULT_LIMIT
) -> paging.Page[Visit]:
    """The actor's "Appointment requests" queue: patients' requests still to confirm, move or
    decline, soonest first (past ones have lapsed and are not listed)."""
    require(actor, Permission.APPOINTMENT_MANAGE)
    page = scoped(_requests_stmt, actor).page(
        session,
        reader(actor, now=utcnow()),
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (row[0].start_at, row[0].id),
    )
    return replace(page, rows=[Visit(a, p) for a, p in page.rows])


def rules(session: Session, actor: Actor) -> list[AvailabilityRule]:
    require(actor, Permission.SCHEDULE_MANAGE)
    return list(
        session.scalars(
            select(AvailabilityRule)
            .where(AvailabilityRule.provider_id == actor.provider_id)
            .order_by(AvailabilityRule.weekday, AvailabilityRule.start_minute)
        )
    )


def exceptions(session: Session, actor: Actor, since: date) -> list[AvailabilityException]:
    require(actor, Permission.SCHEDULE_MANAGE)
    return list(
        session.scalars(
            select(AvailabilityException)
            .where(
                AvailabilityException.provider_id == actor.provider_id,
                AvailabilityException.day >= since,
            )
            .order_by(AvailabilityException.day)
        )
    )


def add_rule(
    session: Session,
    actor: Actor,
    *,
    weekday: int,
    start_minute: int,
    end_minute: int,
    slot_minutes: int,
    location: str | None,
) -> AvailabilityRule:
    """Weekly bookable hours on one weekday, on the clinic's clocks (`zones.clinic_zone`);
    they replace the default hours."""
    require(actor, Permission.SCHEDULE_MANAGE)
    if not 0 <= weekday <= 6:
        raise ScheduleError("weekday", "Choose a day of the week.")
    if end_minute <= start_minute:
        raise ScheduleError("end", "The end must be after the start.")
    if not 5 <= slot_minutes <= end_minute - start_minute:
        raise ScheduleError("slot_minutes", "Slots must fit within the hours.")
    for other in rules(session, actor):
        if (
            other.weekday == weekday
            and other.start_minute < end_minute
            and start_minute < other.end_minute
        ):
            raise ScheduleError("start", "These hours overlap hours already set for that day.")
    row = AvailabilityRule(
        provider_id=actor.provider_id,
        weekday=weekday,
        start_minute=start_minute,
        end_minute=end_minute,
        slot_minutes=slot_minutes,
        location=(location or "").strip() or None,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, AuditAction.CREATE, Entity.AVAILABILITY_RULE, row.id)
    return row


def remove_rule(session: Session, actor: Actor, rule_id: int) -> None:
    """Remove one of the actor's own weekly hours (404 for anyone else's)."""
    require(actor, Permission.SCHEDULE_MANAGE)
    row = session.scalar(
        select(AvailabilityRule).where(
            AvailabilityRule.id == rule_id, AvailabilityRule.provider_id == actor.provider_id
        )
    )
    if row is None:
        raise NotFound()
    session.delete(row)
    audit.record(session, actor, AuditAction.UPDATE, Entity.AVAILABILITY_RULE, rule_id)
    session.flush()


def add_exception(
    session: Session, actor: Actor, *, day: date, reason: str | None, today: date
) -> AvailabilityException:
    """A day the actor cannot be booked (existing visits stay: cancel them one by one)."""
    require(actor, Permission.SCHEDULE_MANAGE)
    if day < today:
        raise ScheduleError("day", "Choose today or a later day.")
    if any(e.day == day for e in exceptions(session, actor, day)):
        raise ScheduleError("day", "That day is already marked unavailable.")
    row = AvailabilityException(
        provider_id=actor.provider_id, day=day, reason=(reason or "").strip()[:200] or None
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, AuditAction.CREATE, Entity.AVAILABILITY_EXCEPTION, row.id)
    return row


def remove_exception(session: Session, actor: Actor, exception_id: int) -> None:
    require(actor, Permission.SCHEDULE_MANAGE)
    row = session.scalar(
        select(AvailabilityException).where(
            AvailabilityException.id == exception_id,
            AvailabilityException.provider_id == actor.provider_id,
        )
    )
    if row is None:
        raise NotFound()
    session.delete(row)
    audit.record(session, actor, AuditAction.UPDATE, Entity.AVAILABILITY_EXCEPTION, exception_id)
    session.flush()


def booking_mode(session: Session, actor: Actor) -> BookingMode:
    require(actor, Permission.SCHEDULE_MANAGE)
    mode = session.scalar(
        select(ProviderProfile.booking_mode).where(ProviderProfile.id == actor.provider_id)
    )
    return mode or BookingMode.REQUEST


def set_booking_mode(session: Session, actor: Actor, mode: BookingMode) -> None:
    """Whether patients book the actor's free times directly, request them, or only see them
    (and call); visits already made stay as they are."""
    require(actor, Permission.SCHEDULE_MANAGE)
    profile = session.scalar(select(ProviderProfile).where(ProviderProfile.id == actor.provider_id))
    if profile is None:
        raise NotFound()
    if profile.booking_mode is not mode:
        profile.booking_mode = mode
        audit.record(
            session,
            actor,
            AuditAction.UPDATE,
            Entity.PROVIDER_PROFILE,
            profile.id,
            detail={"booking_mode": str(mode)},
        )
    session.flush()


def minutes_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
