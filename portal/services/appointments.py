"""Appointments: open slots, booking, cancelling and the visit's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal import audit, zones
from portal.access import (
    Actor,
    Permission,
    RoleScope,
    get_or_404,
    reader,
    require,
    scoped,
    unscoped,
)
from portal.db import UTCDateTime, utcnow
from portal.models import (
    HOLDS_SLOT,
    Appointment,
    AppointmentStatus,
    AuditAction,
    AvailabilityException,
    AvailabilityRule,
    BookingMode,
    CareAssignment,
    Entity,
    EventType,
    PatientProfile,
    ProviderProfile,
    Role,
)
from portal.services import accounts, care_team, messaging, notifications, paging
from portal.services.errors import N_, ServiceError
from portal.transactions import is_unique_violation

#: Patients cancel online until the same time on the clinic's clocks the day before the visit
#: (24 hours, or 23/25 when the clocks change in between): `cancel_deadline`.
CUTOFF_TEXT = N_("Appointments within 24 hours cannot be cancelled online. Please call the clinic.")
ACTIVE = HOLDS_SLOT
#: What a visit came to: recorded only once it has started.
OUTCOMES = (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)
#: Until a provider sets their own hours: weekdays 09:00-12:00 and 13:00-17:00, 30-minute slots.
DEFAULT_HOURS = ((9 * 60, 12 * 60), (13 * 60, 17 * 60))
DEFAULT_SLOT = 30
#: The longest window of open slots one request may ask for.
MAX_SLOT_DAYS = 31


class AppointmentError(ServiceError):
    """A booking, cancellation or status change that cannot be made."""


TAKEN = N_("That time was just taken; choose another.")


class SlotTaken(AppointmentError):
    """Someone else's visit holds this provider's slot: a conflict with their booking, not
    bad input (the API answers 409; the booking page shows it on the time)."""

    status = 409

    def __init__(self) -> None:
        super().__init__("start_at", TAKEN)


def _held_starts(provider_id: int, since: datetime, until: datetime) -> Select[datetime]:
    """Start times in [since, until) of the provider's visits that hold their slot."""
    return unscoped(
        select(Appointment.start_at).where(
            Appointment.provider_id == provider_id,
            Appointment.start_at >= since,
            Appointment.start_at < until,
            Appointment.status.in_(ACTIVE),
        ),
        "busy slots: start times only, no patient data leaves",
    )


def open_slots(
    session: Session, provider_id: int, start: date, days: int = 14
) -> list[tuple[datetime, datetime, str | None]]:
    """Bookable (start, end, location) slots for a provider, from their weekly hours.

    Days, weekdays and hours are the clinic's (`zones.clinic_zone`): a 09:00 slot is at 09:00
    on the clinic's clocks in winter and in summer, so its UTC moment moves when they change.
    """
    zone = zones.clinic_zone()
    rules = session.scalars(
        select(AvailabilityRule).where(AvailabilityRule.provider_id == provider_id)
    ).all()
    closed = set(
        session.scalars(
            select(AvailabilityException.day).where(
                AvailabilityException.provider_id == provider_id,
                AvailabilityException.day >= start,
                AvailabilityException.day < start + timedelta(days=days),
            )
        )
    )
    window_start = zones.day_start(start, zone)
    window_end = zones.day_start(start + timedelta(days=days), zone)
    taken = set(session.scalars(_held_starts(provider_id, window_start, window_end)))
    earliest = utcnow() + timedelta(hours=1)
    slots = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day in closed:
            continue
        for first, last, length, location in _hours_on(rules, day):
            for minute in range(first, last - length + 1, length):
                begin = zones.wall_time(day, minute, zone)
                # A reading the clocks skip that day (spring forward) is no slot.
                if begin is not None and begin > earliest and begin not in taken:
                    slots.append((begin, begin + timedelta(minutes=length), location))
    return slots


def _hours_on(
    rules: Sequence[AvailabilityRule], day: date
) -> list[tuple[int, int, int, str | None]]:
    """(first minute, last minute, slot length, location) of the provider's hours on `day`."""
    if rules:
        return [
            (r.start_minute, r.end_minute, r.slot_minutes, r.location)
            for r in rules
            if r.weekday == day.weekday()
        ]
    if day.weekday() < 5:
        return [(a, b, DEFAULT_SLOT, None) for a, b in DEFAULT_HOURS]
    return []


UNAVAILABLE = N_("This time is no longer available; choose another.")


def slot_at(
    session: Session, provider_id: int, start_at: datetime
) -> tuple[datetime, datetime, str | None] | None:
    """The provider's open (start, end, location) slot that starts at `start_at`, or None.

    A naive `start_at` names no moment and matches nothing; an aware one is compared in UTC,
    among the slots of the clinic's day it falls on.
    """
    moment = _in_utc(start_at)
    if moment is None:
        return None
    found = open_slots(session, provider_id, zones.local_day(moment, zones.clinic_zone()), days=1)
    return next((slot for slot in found if slot[0] == moment), None)


def chosen_start(raw: str | None) -> datetime:
    """The start a form posted (an ISO moment); text that is none is refused like a gone slot."""
    try:
        return datetime.fromisoformat(raw or "")
    except ValueError:
        raise AppointmentError("start_at", UNAVAILABLE) from None


def _in_utc(start_at: datetime) -> datetime | None:
    """`start_at` in UTC, or None for one no slot can have (naive, or past the calendar)."""
    if start_at.tzinfo is None:
        return None
    try:
        moment = start_at.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00: no moment a slot has
        return None
    if moment.date() > date.max - timedelta(days=2):  # `open_slots`' window must end
        return None
    return moment


def _is_held(session: Session, provider_id: int, start_at: datetime) -> bool:
    moment = _in_utc(start_at)
    if moment is None:
        return False
    held = _held_starts(provider_id, moment, moment + timedelta(microseconds=1))
    return session.scalar(held) is not None


def _on_care_team(session: Session, patient_id: int | None, provider_id: int) -> bool:
    """Whether the provider (profile id) is on the patient's care team (`care_team.members`:
    a deactivated provider is not booked)."""
    if patient_id is None:
        return False
    assigned = session.scalar(
        care_team.members(patient_id, CareAssignment.id).where(
            CareAssignment.provider_id == provider_id
        )
    )
    return assigned is not None


def providers_for(session: Session, actor: Actor) -> list[ProviderProfile]:
    """Whom the actor may book with, by name: a patient's current care team; a provider or an
    administrator, every active provider (profiles name no patient)."""
    if actor.role is Role.PATIENT:
        return messaging.care_team(session, actor, actor.patient_id or 0)
    return accounts.active_providers(session)


def slots_for(
    session: Session, actor: Actor, provider_user_id: int, *, start: date, days: int
) -> list[tuple[datetime, datetime, str | None]]:
    """Open (start, end, location) slots of the active provider who signs in as
    `provider_user_id`, for `days` days (1..MAX_SLOT_DAYS) from `start`.

    A patient sees only their care team's slots, the only ones `book` accepts from them:
    another provider is a 404, exactly like one that does not exist.
    """
    require(actor, Permission.APPOINTMENT_BOOK)
    if not 1 <= days <= MAX_SLOT_DAYS:
        raise AppointmentError("to", f"Ask for 1 to {MAX_SLOT_DAYS} days of open slots.")
    if start > date.max - timedelta(days=days + 1):  # the window's end must be a date
        raise AppointmentError("from", N_("Choose an earlier date."))
    provider = accounts.active_provider_for_user(session, provider_user_id)
    if provider is None:
        raise NotFound()
    if actor.role is Role.PATIENT and not _on_care_team(session, actor.patient_id, provider.id):
        raise NotFound()
    return open_slots(session, provider.id, start, days)


def confirm_slot(visit: Appointment, *, end_at: datetime | None, location: str | None) -> None:
    """A client that also names the visit's end or place must name the slot's own: `book`
    takes them from the slot, and a disagreement is refused rather than silently replaced
    (raised in the booking's unit of work, so the booking rolls back with it)."""
    if end_at is not None and end_at != visit.end_at:
        ends = visit.end_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        raise AppointmentError("end_at", f"The slot at this time ends at {ends}.")
    if location is not None and location != visit.location:
        raise AppointmentError("location", N_("The slot at this time has another location."))


def book(
    session: Session,
    actor: Actor,
    *,
    patient_id: int | None,
    provider_id: int,
    start_at: datetime,
    reason: str | None,
    replaces: Appointment | None = None,
) -> Appointment:
    """A patient requests, or a provider schedules, a visit at one of the provider's open slots.

    `patient_id` None is the actor's own record (a patient booking for themself); a provider
    must name the patient (refused on `patient_id`), one of their own (404 otherwise).
    The slot that starts at `start_at` gives the visit its end and its place: a caller names
    only the start, so it cannot stretch one slot over a day. A start that is not an open slot
    now (closed, past, or never one) is refused on `start_at`; one another visit holds,
    whether it was booked before this call or while it ran, with `SlotTaken`. `replaces`:
    the confirmed visit a request moves (`reschedule`), not counted toward the limit.
    """
    require(actor, Permission.APPOINTMENT_BOOK)
    if patient_id is None:
        if actor.patient_id is None:
            raise AppointmentError("patient_id", N_("Choose the patient the visit is for."))
        patient_id = actor.patient_id
    patient = get_or_404(session, PatientProfile, patient_id, actor)
    if not _on_care_team(session, patient.id, provider_id):
        raise AppointmentError("provider_id", N_("Choose someone from the care team."))
    status = AppointmentStatus.SCHEDULED
    if actor.role is Role.PATIENT:
        status = _patient_booking_status(session, provider_id)
        _within_open_limit(session, patient.id, actor.user_id, replaces)
    begin, end, location = _open_slot(session, provider_id, start_at)
    appointment = Appointment(
        patient_id=patient.id,
        provider_id=provider_id,
        start_at=begin,
        end_at=end,
        reason=(reason or "").strip()[:500] or None,
        location=location,
        status=status,
        booked_by_id=actor.user_id,
        replaces_id=replaces.id if replaces is not None else None,
    )
    session.add(appointment)
    _flush_holding(session)
    text = (
        N_("Appointment requested")
        if status is AppointmentStatus.REQUESTED
        else N_("Appointment booked")
    )
    _changed(session, actor, appointment, AuditAction.CREATE, text)
    return appointment


def _open_slot(
    session: Session, provider_id: int, start_at: datetime
) -> tuple[datetime, datetime, str | None]:
    """The open slot at `start_at`, or the refusal: `SlotTaken` when a visit holds it."""
    slot = slot_at(session, provider_id, start_at)
    if slot is None:
        if _is_held(session, provider_id, start_at):
            raise SlotTaken()
        raise AppointmentError("start_at", UNAVAILABLE)
    return slot


def _flush_holding(session: Session) -> None:
    """Write a visit that takes a slot. Another booking of it may have committed after the
    check read it open (the unique index of migration 0005): `SlotTaken`, and the unit of
    work rolls this change back."""
    try:
        session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise SlotTaken() from exc
        raise


#: How many upcoming visits a patient may hold that they booked online themself (stated on
#: the booking form): one patient cannot take every free time of a provider.
MAX_OPEN_REQUESTS = 3
VIEW_ONLY = N_("Appointments with this provider are made by phone. Please call the clinic.")


def _patient_booking_status(session: Session, provider_id: int) -> AppointmentStatus:
    """What a patient's booking with the provider becomes, by the clinic's choice for them."""
    mode = session.scalar(
        select(ProviderProfile.booking_mode).where(ProviderProfile.id == provider_id)
    )
    if mode is BookingMode.VIEW:
        raise AppointmentError("provider_id", VIEW_ONLY)
    return (
        AppointmentStatus.SCHEDULED if mode is BookingMode.DIRECT else AppointmentStatus.REQUESTED
    )


def _within_open_limit(
    session: Session, patient_id: int, user_id: int, moving: Appointment | None = None
) -> None:
    stmt = select(func.count()).where(
        Appointment.patient_id == patient_id,
        Appointment.booked_by_id == user_id,
        Appointment.status.in_(ACTIVE),
        Appointment.start_at >= utcnow(),
    )
    if moving is not None:  # the visit being moved gives its place to the request
        stmt = stmt.where(Appointment.id != moving.id)
    held = session.scalar(
        unscoped(stmt, "a count of the patient's own online bookings (checked by `book`)")
    )
    if (held or 0) >= MAX_OPEN_REQUESTS:
        raise AppointmentError(
            "start_at",
            gettext(
                "You already have %(count)d upcoming appointments booked online. "
                "Cancel or move one, or call the clinic.",
                count=MAX_OPEN_REQUESTS,
            ),
        )


def _changed(
    session: Session, actor: Actor, appointment: Appointment, action: AuditAction, text: str
) -> None:
    audit.record(
        session,
        actor,
        action,
        Entity.APPOINTMENT,
        appointment.id,
        patient_id=appointment.patient_id,
        detail={"status": str(appointment.status)},
    )
    provider_user = session.scalar(
        select(ProviderProfile.user_id).where(ProviderProfile.id == appointment.provider_id)
    )
    patient_user = notifications.patient_user_id(session, appointment.patient_id)
    notifications.stage(
        session,
        [u for u in (provider_user, patient_user) if u != actor.user_id],
        type=EventType.APPOINTMENT_UPDATED,
        entity_id=appointment.id,
        patient_id=appointment.patient_id,
        text=text,
    )


def cancel(
    session: Session, actor: Actor, appointment_id: int, reason: str | None = None
) -> Appointment:
    """Cancel an upcoming visit; patients cannot within 24 hours of it (they call the clinic).

    Staff must give a `reason` (refused on `reason`): the patient did not ask for it.
    """
    appointment = get_or_404(session, Appointment, appointment_id, actor)
    if appointment.status not in ACTIVE:
        raise AppointmentError("status", N_("This appointment can no longer be cancelled."))
    if actor.role is not Role.PATIENT and not (reason or "").strip():
        raise AppointmentError("reason", N_("Give the reason for cancelling."))
    if actor.role is Role.PATIENT and utcnow() > cancel_deadline(appointment):
        raise AppointmentError("status", CUTOFF_TEXT)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = (reason or "").strip() or None
    _changed(session, actor, appointment, AuditAction.CANCEL, N_("Appointment cancelled"))
    session.flush()
    return appointment


def set_status(
    session: Session, actor: Actor, appointment_id: int, status: AppointmentStatus
) -> Appointment:
    """Provider confirms a request or records the outcome (completed, no-show)."""
    require(actor, Permission.APPOINTMENT_MANAGE)
    appointment = get_or_404(session, Appointment, appointment_id, actor)
    allowed = {
        AppointmentStatus.SCHEDULED: {AppointmentStatus.REQUESTED},
        AppointmentStatus.COMPLETED: set(ACTIVE),
        AppointmentStatus.NO_SHOW: set(ACTIVE),
    }
    if appointment.status not in allowed.get(status, set()):
        raise AppointmentError("status", f"A {appointment.status} visit cannot become {status}.")
    if status is AppointmentStatus.SCHEDULED and appointment.proposed_by_id is not None:
        raise AppointmentError("status", WAITS_FOR_PATIENT)
    if status in OUTCOMES and appointment.start_at > utcnow():
        raise AppointmentError("status", N_("A visit that has not started has no outcome yet."))
    appointment.status = status
    _changed(session, actor, appointment, AuditAction.UPDATE, f"Appointment {status}")
    if status is AppointmentStatus.SCHEDULED:
        _retire_moved(session, actor, appointment)
    session.flush()
    return appointment


def _retire_moved(session: Session, actor: Actor, confirmed: Appointment) -> None:
    """A confirmed move request: the visit it moves is cancelled now, as moved (not before:
    until now the patient kept it)."""
    if confirmed.replaces_id is None:
        return
    old = get_or_404(session, Appointment, confirmed.replaces_id, actor)
    if old.status not in ACTIVE:
        return  # cancelled meanwhile (by the patient or the clinic)
    old.status = AppointmentStatus.CANCELLED
    old.cancel_reason = MOVED
    _changed(session, actor, old, AuditAction.CANCEL, N_("Appointment moved"))


def _request_of(session: Session, actor: Actor, appointment_id: int) -> Appointment:
    """The provider's own pending request (404 for anyone else's; refused once answered)."""
    appointment = get_or_404(session, Appointment, appointment_id, actor)
    if appointment.status is not AppointmentStatus.REQUESTED:
        raise AppointmentError("status", N_("This request has already been answered."))
    if appointment.proposed_by_id is not None:
        raise AppointmentError("status", WAITS_FOR_PATIENT)
    return appointment


WAITS_FOR_PATIENT = N_("Another time was proposed: it waits for the patient's answer.")


def decline(session: Session, actor: Actor, appointment_id: int, reason: str) -> Appointment:
    """Staff decline a patient's request; the patient sees `reason` (required)."""
    require(actor, Permission.APPOINTMENT_MANAGE)
    appointment = _request_of(session, actor, appointment_id)
    reason = (reason or "").strip()
    if not reason:
        raise AppointmentError("reason", N_("Give the reason the patient will read."))
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = reason[:500]
    _changed(session, actor, appointment, AuditAction.CANCEL, N_("Appointment request declined"))
    session.flush()
    return appointment


def propose(session: Session, actor: Actor, appointment_id: int, start_at: datetime) -> Appointment:
    """Staff answer a request with another of the provider's open times: the request moves
    there (the time is held) and waits for the patient, who accepts it (`accept`) or cancels
    it; it leaves the provider's queue. A visit the request would move stands meanwhile."""
    require(actor, Permission.APPOINTMENT_MANAGE)
    appointment = _request_of(session, actor, appointment_id)
    begin, end, location = _open_slot(session, appointment.provider_id, start_at)
    appointment.start_at, appointment.end_at, appointment.location = begin, end, location
    appointment.proposed_by_id = actor.user_id
    _flush_holding(session)
    _changed(session, actor, appointment, AuditAction.UPDATE, N_("Another time was proposed"))
    session.flush()
    return appointment


def accept(session: Session, actor: Actor, appointment_id: int) -> Appointment:
    """The patient accepts the time their provider proposed: the visit is scheduled there
    (and a visit it moves is cancelled now, as moved). Refusing it is cancelling it."""
    require(actor, Permission.APPOINTMENT_ACCEPT)
    appointment = get_or_404(session, Appointment, appointment_id, actor)
    if not appointment.awaits_patient:
        raise AppointmentError("status", N_("There is no proposed time to accept."))
    if appointment.start_at <= utcnow():
        raise AppointmentError("status", N_("The proposed time has passed."))
    appointment.status = AppointmentStatus.SCHEDULED
    _changed(session, actor, appointment, AuditAction.UPDATE, N_("The proposed time was accepted"))
    _retire_moved(session, actor, appointment)
    session.flush()
    return appointment


def reschedule(
    session: Session, actor: Actor, appointment_id: int, start_at: datetime
) -> Appointment:
    """Move a visit with the same provider and reason, in the caller's one unit of work. For a
    patient, the same cut-off as cancelling, and the new visit is a request or scheduled as
    booking makes it. Scheduled at once: the old visit is cancelled now. A request to move a
    confirmed visit (the provider takes requests): the old visit stands until the request is
    confirmed (`set_status`, `propose`), and stays if it is declined."""
    require(actor, Permission.APPOINTMENT_BOOK)
    old = get_or_404(session, Appointment, appointment_id, actor)
    if (
        actor.role is Role.PATIENT
        and old.status is AppointmentStatus.SCHEDULED
        and _patient_booking_status(session, old.provider_id) is AppointmentStatus.REQUESTED
    ):
        if utcnow() > cancel_deadline(old):
            raise AppointmentError("status", CUTOFF_TEXT)
        return book(
            session,
            actor,
            patient_id=old.patient_id,
            provider_id=old.provider_id,
            start_at=start_at,
            reason=old.reason,
            replaces=old,
        )
    old = cancel(session, actor, appointment_id, MOVED)
    return book(
        session,
        actor,
        patient_id=old.patient_id,
        provider_id=old.provider_id,
        start_at=start_at,
        reason=old.reason,
    )


MOVED = N_("Moved to another time")


#: `list_for`'s filters: bind parameters; which of them a statement has is its shape.
_NOW = bindparam("now", type_=UTCDateTime)
_SINCE = bindparam("since", type_=UTCDateTime)
_UNTIL = bindparam("until", type_=UTCDateTime)
_STATUS = bindparam("status", type_=Appointment.status.type)
_LIST_NAMES = {True: "upcoming_visits", False: "past_visits", None: "visits"}


def _visits(
    rs: RoleScope, upcoming: bool | None, since: bool, until: bool, by_status: bool
) -> paging.KeysetStatements:
    """Visits from `now` on, soonest first; or before it, latest first; or (None) all of
    them, soonest first. `since`/`until`/`by_status` add those filters."""
    stmt = select(Appointment)
    if upcoming is not None:
        stmt = stmt.where(Appointment.start_at >= _NOW if upcoming else Appointment.start_at < _NOW)
    if since:
        stmt = stmt.where(Appointment.start_at >= _SINCE)
    if until:
        stmt = stmt.where(Appointment.start_at < _UNTIL)
    if by_status:
        stmt = stmt.where(Appointment.status == _STATUS)
    if rs.role is Role.PROVIDER:
        stmt = stmt.where(Appointment.provider_id == rs.provider_id)
    later_first = upcoming is False
    keyset = paging.Keyset(
        _LIST_NAMES[upcoming],
        ((Appointment.start_at, later_first), (Appointment.id, later_first)),
    )
    return keyset.statements(rs.scope(stmt, Appointment))


def list_for(
    session: Session,
    actor: Actor,
    *,
    upcoming: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: AppointmentStatus | None = None,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[Appointment]:
    """A page of the visits the actor takes part in (a patient's own, a provider's own
    schedule): upcoming soonest first, past latest first, or (None) all soonest first;
    only those starting in [`since`, `until`) and with `status`, where given."""
    require(actor, Permission.APPOINTMENT_BOOK)  # administrators take part in no visit
    shape = (upcoming, since is not None, until is not None, status is not None)
    params = reader(actor, now=utcnow(), since=since, until=until, status=status)
    page = scoped(_visits, actor, *shape).page(
        session,
        params,
        cursor=cursor,
        limit=paging.clamp(limit),
        key_of=lambda row: (row[0].start_at, row[0].id),
    )
    return replace(page, rows=[row[0] for row in page.rows])


# --- Reads for the patient area (helper "patient") ---


def providers_by_id(session: Session, provider_ids: set[int]) -> dict[int, ProviderProfile]:
    """Provider profiles by id, for names next to appointments (one query)."""
    if not provider_ids:
        return {}
    rows = session.scalars(select(ProviderProfile).where(ProviderProfile.id.in_(provider_ids)))
    return {p.id: p for p in rows.unique()}


def is_cancellable_online(appointment: Appointment, actor: Actor) -> bool:
    """Whether `cancel` would accept this visit from the actor now (the list shows why not)."""
    if appointment.status not in ACTIVE:
        return False
    return actor.role is not Role.PATIENT or utcnow() <= cancel_deadline(appointment)


def cancel_deadline(appointment: Appointment) -> datetime:
    """Until when (inclusive) a patient may cancel or move the visit online: the visit's time
    on the clinic's clocks, one day earlier."""
    return zones.same_time_day_before(appointment.start_at, zones.clinic_zone())
