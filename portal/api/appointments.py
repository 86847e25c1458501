"""Providers, their open slots and appointments (docs/api.md).

Whom a caller may book with, which slots they may see, which visits are theirs and who may
cancel what are the appointments service's rules; this module parses, calls one verb and
shapes the answer. People are named by user id (`userId`, `providerId`, the `{provider_id}`
of a slots URL), patients by PatientProfile id (`patientId`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import Field, PlainValidator, WithJsonSchema
from sqlalchemy.orm import Session

from portal import zones
from portal.access import Actor
from portal.api import bp
from portal.api.operations import operation
from portal.api.schemas import (
    Instant,
    InstantIn,
    PageOut,
    PageQuery,
    ProviderOut,
    Record,
    RecordId,
    Schema,
    with_example,
)
from portal.audit import audited
from portal.models import Appointment, AppointmentStatus, AuditAction, Entity
from portal.services import accounts, appointments

TAG = "Appointments"

#: The slots window when the caller names no end: the same two weeks as the booking page.
DEFAULT_SLOT_DAYS = 14


def _date_or_instant(value: Any) -> date | datetime:
    """`2030-01-08` (a whole UTC day) or an instant that says its zone."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value
    elif isinstance(value, str) and value.isascii() and len(value) <= 40:
        if len(value) == 10:
            return date.fromisoformat(value)  # ValueError: pydantic reports it on the field
        moment = datetime.fromisoformat(value)
    else:
        raise ValueError("give a date (2030-01-08) or an instant (2030-01-08T09:00:00Z)")
    if moment.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2030-01-08T09:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00
        raise ValueError("out of range") from None


#: A query value that is either a date (a whole UTC day) or an aware instant.
DateOrInstant = Annotated[
    date | datetime,
    PlainValidator(_date_or_instant),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ]
        }
    ),
]


# --- Shapes ----------------------------------------------------------------------------------


class SlotOut(Schema):
    """An open slot: book it by sending its `startAt`."""

    model_config = with_example(
        {
            "startAt": "2027-01-12T09:00:00Z",
            "endAt": "2027-01-12T09:20:00Z",
            "location": "Riverside Clinic",
        }
    )

    start_at: Instant
    end_at: Instant
    location: str | None


class AppointmentOut(Record):
    """A visit. `providerId` is the provider's user id (as in `GET /providers`' `userId`)."""

    model_config = with_example(
        {
            "id": 311,
            "createdAt": "2026-11-30T16:12:45Z",
            "updatedAt": "2026-11-30T16:12:45Z",
            "patientId": 5,
            "providerId": 2,
            "startAt": "2027-01-12T09:00:00Z",
            "endAt": "2027-01-12T09:20:00Z",
            "status": "scheduled",
            "reason": "Follow-up of HbA1c",
            "location": "Riverside Clinic",
            "cancelReason": None,
            "replacesId": None,
            "proposedBy": None,
        }
    )

    patient_id: int
    provider_id: int
    start_at: Instant
    end_at: Instant
    status: AppointmentStatus
    reason: str | None
    location: str | None
    #: Why it was cancelled, as given by whoever cancelled it (the clinic must give one).
    cancel_reason: str | None
    #: A request to move a confirmed visit: that visit's id. It stands until this request is
    #: confirmed (then it is cancelled as moved) and stays if the request is declined.
    replaces_id: int | None = None
    #: The user id of the provider who proposed this time: while `requested`, it waits for
    #: the patient to accept it (`POST /appointments/{id}/accept`) or cancel it.
    proposed_by: int | None = None


class SlotsQuery(Schema):
    """Dates, both included: the clinic's days (`PORTAL_TIMEZONE`; its opening hours are
    clinic times), `from` defaulting to today there, `to` to two weeks on; at most 31 days.
    The slots themselves are instants in UTC."""

    since: date | None = Field(default=None, alias="from")
    until: date | None = Field(default=None, alias="to")


class AppointmentsQuery(PageQuery):
    """Visits starting from `from` up to `to` (a date includes that whole UTC day; an instant
    is exact, `to` excluded), with `status`; soonest first."""

    since: DateOrInstant | None = Field(default=None, alias="from")
    until: DateOrInstant | None = Field(default=None, alias="to")
    status: AppointmentStatus | None = None

    def window(self) -> tuple[datetime | None, datetime | None]:
        """[since, until) as UTC instants; a date `to` ends after that day."""
        since, until = self.since, self.until
        if isinstance(since, date) and not isinstance(since, datetime):
            since = datetime.combine(since, time(), UTC)
        if isinstance(until, date) and not isinstance(until, datetime):
            # The last day there is has no end to name: no upper bound, then.
            until = (
                None if until == date.max else datetime.combine(until, time(), UTC) + timedelta(1)
            )
        return since, until


class AppointmentIn(Schema):
    """A visit at one of the provider's open slots (`GET /providers/{id}/slots`).

    A patient books for themself (`patientId` may be left out); a provider names the patient.
    The slot gives the visit its end and place: `endAt` and `location` may be sent, and then
    must be the slot's (otherwise 422 on that field), so a client never gets a visit other
    than the one it asked for.
    """

    model_config = with_example(
        {"providerId": 2, "startAt": "2027-01-12T09:00:00Z", "reason": "Follow-up of HbA1c"}
    )

    provider_id: RecordId
    patient_id: RecordId | None = None
    start_at: InstantIn
    end_at: InstantIn | None = None
    location: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class CancelIn(Schema):
    """Why the visit is cancelled: required from a provider (the patient is told)."""

    model_config = with_example({"reason": "I will be away that week; I will book again."})

    reason: str | None = Field(default=None, max_length=500)


def _visits(session: Session, visits: Sequence[Appointment]) -> list[AppointmentOut]:
    """The visits, their providers named by user id (one query for all of them)."""
    providers = appointments.providers_by_id(session, {v.provider_id for v in visits})
    return [
        AppointmentOut(
            id=v.id,
            created_at=v.created_at,
            updated_at=v.updated_at,
            patient_id=v.patient_id,
            provider_id=providers[v.provider_id].user_id,
            start_at=v.start_at,
            end_at=v.end_at,
            status=v.status,
            reason=v.reason,
            location=v.location,
            cancel_reason=v.cancel_reason,
            replaces_id=v.replaces_id,
            proposed_by=v.proposed_by_id,
        )
        for v in visits
    ]


# --- Operations ------------------------------------------------------------------------------


@operation(
    bp,
    "GET",
    "/providers",
    summary="Providers the caller may book with",
    tag=TAG,
    response=PageOut[ProviderOut],
)
@audited(AuditAction.VIEW, Entity.CARE_TEAM)
def list_providers(session: Session, actor: Actor) -> PageOut[ProviderOut]:
    """A patient's care team; for a provider or an administrator, every active provider.
    By name; the list is short and comes whole (`nextCursor` is always null)."""
    team = appointments.providers_for(session, actor)
    return PageOut[ProviderOut](items=[ProviderOut.model_validate(p) for p in team])


@operation(
    bp,
    "GET",
    "/providers/<int:provider_id>/slots",
    summary="A provider's open slots",
    tag=TAG,
    query=SlotsQuery,
    response=PageOut[SlotOut],
    errors=(403,),
)
def provider_slots(
    session: Session, actor: Actor, provider_id: int, *, query: SlotsQuery
) -> PageOut[SlotOut]:
    """Open slots of the provider whose user id is `provider_id`, soonest first, in a window
    of at most 31 days (comes whole: `nextCursor` is always null). A patient sees only their
    care team's (404 for anyone else)."""
    start = query.since or zones.clinic_today()
    days = (query.until - start).days + 1 if query.until is not None else DEFAULT_SLOT_DAYS
    found = appointments.slots_for(session, actor, provider_id, start=start, days=days)
    return PageOut[SlotOut](
        items=[SlotOut(start_at=b, end_at=e, location=where) for b, e, where in found]
    )


@operation(
    bp,
    "GET",
    "/appointments",
    summary="The caller's appointments",
    tag=TAG,
    query=AppointmentsQuery,
    response=PageOut[AppointmentOut],
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.APPOINTMENT_LIST)
def list_appointments(
    session: Session, actor: Actor, *, query: AppointmentsQuery
) -> PageOut[AppointmentOut]:
    """A patient's visits, or a provider's schedule, soonest first."""
    since, until = query.window()
    page = appointments.list_for(
        session,
        actor,
        since=since,
        until=until,
        status=query.status,
        cursor=query.cursor,
        limit=query.limit,
    )
    return PageOut[AppointmentOut](items=_visits(session, page.rows), next_cursor=page.next_cursor)


@operation(
    bp,
    "POST",
    "/appointments",
    summary="Book an appointment",
    tag=TAG,
    body=AppointmentIn,
    response=AppointmentOut,
    status=201,
    idempotent=True,
    errors=(403, 409),
)
def book_appointment(session: Session, actor: Actor, *, body: AppointmentIn) -> AppointmentOut:
    """A patient's request (`requested`) or a provider's booking (`scheduled`). A start that
    is not an open slot now is a 422 on `startAt`, one another visit holds (perhaps booked a
    moment ago) a 409 "That time was just taken"; a provider not on the patient's care team
    a 422 on `providerId`."""
    provider = accounts.active_provider_for_user(session, body.provider_id)
    visit = appointments.book(
        session,
        actor,
        patient_id=body.patient_id,
        # Nobody's care team has a provider id 0: `book` refuses it on `provider_id`.
        provider_id=provider.id if provider is not None else 0,
        start_at=body.start_at,
        reason=body.reason,
    )
    appointments.confirm_slot(visit, end_at=body.end_at, location=body.location)
    (out,) = _visits(session, [visit])
    return out


@operation(
    bp,
    "POST",
    "/appointments/<int:appointment_id>/cancel",
    summary="Cancel an appointment",
    tag=TAG,
    body=CancelIn,
    response=AppointmentOut,
    idempotent=True,
)
def cancel_appointment(
    session: Session, actor: Actor, appointment_id: int, *, body: CancelIn
) -> AppointmentOut:
    """For the patient or the provider of the visit (404 for anyone else). A patient cannot
    cancel within 24 hours of the visit (422: call the clinic); a provider gives a reason."""
    visit = appointments.cancel(session, actor, appointment_id, body.reason)
    (out,) = _visits(session, [visit])
    return out


class DeclineIn(Schema):
    """Why the clinic declines the request: the patient reads it."""

    model_config = with_example({"reason": "Dr Chen is away that week; please choose May."})

    reason: str = Field(min_length=1, max_length=500)


class MoveIn(Schema):
    """The new time: one of the provider's open slots (`GET /providers/{id}/slots`)."""

    model_config = with_example({"startAt": "2027-01-14T10:30:00Z"})

    start_at: InstantIn


def _one(session: Session, visit: Appointment) -> AppointmentOut:
    (out,) = _visits(session, [visit])
    return out


@operation(
    bp,
    "POST",
    "/appointments/<int:appointment_id>/confirm",
    summary="Confirm a requested appointment",
    tag=TAG,
    response=AppointmentOut,
    errors=(403,),
    idempotent=True,
)
def confirm_appointment(session: Session, actor: Actor, appointment_id: int) -> AppointmentOut:
    """The provider of a `requested` visit schedules it (422 on `status` once answered)."""
    return _one(
        session,
        appointments.set_status(session, actor, appointment_id, AppointmentStatus.SCHEDULED),
    )


@operation(
    bp,
    "POST",
    "/appointments/<int:appointment_id>/decline",
    summary="Decline a requested appointment",
    tag=TAG,
    body=DeclineIn,
    response=AppointmentOut,
    errors=(403,),
    idempotent=True,
)
def decline_appointment(
    session: Session, actor: Actor, appointment_id: int, *, body: DeclineIn
) -> AppointmentOut:
    """The provider declines a `requested` visit; it is `cancelled` with the reason as its
    `cancelReason`, which the patient sees."""
    return _one(session, appointments.decline(session, actor, appointment_id, body.reason))


@operation(
    bp,
    "POST",
    "/appointments/<int:appointment_id>/propose",
    summary="Answer a request with another time",
    tag=TAG,
    body=MoveIn,
    response=AppointmentOut,
    errors=(403, 409),
    idempotent=True,
)
def propose_appointment(
    session: Session, actor: Actor, appointment_id: int, *, body: MoveIn
) -> AppointmentOut:
    """The provider answers a `requested` visit with another of their open slots: it moves
    there, stays `requested` with `proposedBy`, and waits for the patient to accept it (409
    when that time was just taken)."""
    return _one(session, appointments.propose(session, actor, appointment_id, body.start_at))


@operation(
    bp,
    "POST",
    "/appointments/<int:appointment_id>/accept",
    summary="Accept the time a provider proposed",
    tag=TAG,
    response=AppointmentOut,
    errors=(403,),
    idempotent=True,
)
def accept_appointment(session: Session, actor: Actor, appointment_id: int) -> AppointmentOut:
    """The patient accepts a proposed time: the visit is `scheduled` (a visit it moves is
    cancelled now). To refuse it, cancel it. 422 when no proposal waits."""
    return _one(session, appointments.accept(session, actor, appointment_id))


@operation(
    bp,
    "POST",
    "/appointments/<int:appointment_id>/reschedule",
    summary="Move an appointment to another time",
    tag=TAG,
    body=MoveIn,
    response=AppointmentOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
)
def reschedule_appointment(
    session: Session, actor: Actor, appointment_id: int, *, body: MoveIn
) -> AppointmentOut:
    """Cancels the visit and books the new time with the same provider, both or neither;
    answers the new visit. A patient can move a visit until the same time on the clinic's
    clocks the day before it (then 422: call the clinic)."""
    return _one(session, appointments.reschedule(session, actor, appointment_id, body.start_at))
