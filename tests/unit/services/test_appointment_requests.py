"""The staff's answers to requests, patients moving visits, booking modes, the open-booking
limit and outcomes (`portal.services.appointments`, `schedule.requests`, the notification list).

The clock is pinned to Monday 2030-01-07 09:00 UTC (clinic in UTC), dr.chen on default hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal.access import unscoped
from portal.db import set_clock
from portal.models import (
    Appointment,
    AppointmentStatus,
    BookingMode,
    EventType,
    Notification,
    ProviderProfile,
)
from portal.services import appointments, notifications, schedule
from portal.services.appointments import AppointmentError, SlotTaken
from tests.unit.services.conftest import World

TUESDAY_0900 = datetime(2030, 1, 8, 9, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


@pytest.fixture(autouse=True)
def monday(world: World) -> None:
    set_clock(lambda: datetime(2030, 1, 7, 9, tzinfo=UTC))


def _request(world: World, start_at: datetime = TUESDAY_0900) -> Appointment:
    return appointments.book(
        world.session,
        world.actor("alice"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=start_at,
        reason="Knee pain",
    )


def _mode(session: Session, world: World, mode: BookingMode) -> None:
    chen = session.get_one(ProviderProfile, world.chen_provider_id)
    chen.booking_mode = mode
    session.flush()


def _notes_to_alice(world: World, visit: Appointment) -> list[str]:
    stmt = select(Notification.text).where(
        Notification.user_id == world.people.user("alice").id,
        Notification.entity_id == visit.id,
        Notification.type == EventType.APPOINTMENT_UPDATED,
    )
    return list(world.session.scalars(unscoped(stmt, "test")))


def test_declining_needs_a_reason_which_the_patient_reads(world: World) -> None:
    visit = _request(world)
    chen = world.actor("dr_chen")
    with pytest.raises(AppointmentError) as refused:
        appointments.decline(world.session, chen, visit.id, "  ")
    assert refused.value.field == "reason"

    appointments.decline(world.session, chen, visit.id, "Please see the nurse first")

    assert visit.status is AppointmentStatus.CANCELLED
    assert visit.cancel_reason == "Please see the nurse first"
    assert "Appointment request declined" in _notes_to_alice(world, visit)
    # Answered once: not again (and the slot is free for others).
    with pytest.raises(AppointmentError, match="already been answered"):
        appointments.propose(world.session, chen, visit.id, TUESDAY_0900 + HALF_HOUR)
    with pytest.raises(AppointmentError, match="cannot become scheduled"):
        appointments.set_status(world.session, chen, visit.id, AppointmentStatus.SCHEDULED)
    assert _request(world).start_at == TUESDAY_0900


def test_another_providers_request_is_not_found(world: World) -> None:
    visit = _request(world)
    with pytest.raises(NotFound):
        appointments.decline(world.session, world.actor("dr_okafor"), visit.id, "No")


def test_proposing_moves_the_request_to_another_time_that_waits_for_the_patient(
    world: World,
) -> None:
    visit = _request(world)
    appointments.propose(world.session, world.actor("dr_chen"), visit.id, TUESDAY_0900 + HALF_HOUR)

    assert visit.start_at == TUESDAY_0900 + HALF_HOUR
    assert visit.end_at == TUESDAY_0900 + 2 * HALF_HOUR
    assert visit.status is AppointmentStatus.REQUESTED
    assert visit.awaits_patient
    assert "Another time was proposed" in _notes_to_alice(world, visit)
    appointments.accept(world.session, world.actor("alice"), visit.id)
    assert visit.status is AppointmentStatus.SCHEDULED


def test_a_proposal_must_be_an_open_time(world: World) -> None:
    visit = _request(world)
    other = appointments.book(
        world.session,
        world.actor("dr_chen"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=TUESDAY_0900 + HALF_HOUR,
        reason=None,
    )
    chen = world.actor("dr_chen")
    with pytest.raises(SlotTaken):
        appointments.propose(world.session, chen, visit.id, other.start_at)
    with pytest.raises(AppointmentError) as refused:
        appointments.propose(world.session, chen, visit.id, TUESDAY_0900 + timedelta(minutes=7))
    assert refused.value.field == "start_at"
    assert visit.status is AppointmentStatus.REQUESTED


def test_the_queue_lists_the_providers_pending_requests_soonest_first(world: World) -> None:
    later = _request(world, TUESDAY_0900 + 4 * HALF_HOUR)
    sooner = _request(world)
    answered = _request(world, TUESDAY_0900 + 2 * HALF_HOUR)
    appointments.set_status(
        world.session, world.actor("dr_chen"), answered.id, AppointmentStatus.SCHEDULED
    )

    queue = schedule.requests(world.session, world.actor("dr_chen"))
    mine = [v.appointment.id for v in queue.rows if v.appointment.start_at >= TUESDAY_0900]
    assert mine == [sooner.id, later.id]
    assert all(v.patient.id == v.appointment.patient_id for v in queue.rows)
    assert schedule.requests(world.session, world.actor("dr_okafor")).rows == []


def test_a_patient_moves_a_visit_in_one_step(world: World) -> None:
    visit = _request(world)
    moved = appointments.reschedule(
        world.session, world.actor("alice"), visit.id, TUESDAY_0900 + 2 * HALF_HOUR
    )

    assert visit.status is AppointmentStatus.CANCELLED
    assert visit.cancel_reason == appointments.MOVED
    assert moved.id != visit.id
    assert (moved.start_at, moved.status, moved.reason) == (
        TUESDAY_0900 + 2 * HALF_HOUR,
        AppointmentStatus.REQUESTED,
        "Knee pain",
    )


def test_moving_has_the_same_cut_off_as_cancelling(world: World) -> None:
    visit = _request(world)
    set_clock(lambda: TUESDAY_0900 - timedelta(hours=23))
    with pytest.raises(AppointmentError, match="within 24 hours"):
        appointments.reschedule(
            world.session, world.actor("alice"), visit.id, TUESDAY_0900 + 2 * HALF_HOUR
        )
    assert visit.status is AppointmentStatus.REQUESTED


def test_the_clinic_chooses_how_patients_book_with_each_provider(
    session: Session, world: World
) -> None:
    _mode(session, world, BookingMode.DIRECT)
    assert _request(world).status is AppointmentStatus.SCHEDULED

    _mode(session, world, BookingMode.VIEW)
    with pytest.raises(AppointmentError) as refused:
        _request(world, TUESDAY_0900 + HALF_HOUR)
    assert refused.value.field == "provider_id"
    # Patients still see the free times; staff still book them.
    assert appointments.slots_for(
        session,
        world.actor("alice"),
        world.people.user("dr_chen").id,
        start=TUESDAY_0900.date(),
        days=1,
    )
    staff = appointments.book(
        session,
        world.actor("dr_chen"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=TUESDAY_0900 + HALF_HOUR,
        reason=None,
    )
    assert staff.status is AppointmentStatus.SCHEDULED


def test_the_provider_sets_their_own_booking_mode(session: Session, world: World) -> None:
    chen = world.actor("dr_chen")
    schedule.set_booking_mode(session, chen, BookingMode.VIEW)
    assert schedule.booking_mode(session, chen) is BookingMode.VIEW
    assert schedule.booking_mode(session, world.actor("dr_okafor")) is BookingMode.REQUEST


def test_a_patient_holds_at_most_a_few_upcoming_online_bookings(world: World) -> None:
    held = [_request(world, TUESDAY_0900 + i * HALF_HOUR) for i in range(3)]
    with pytest.raises(AppointmentError, match="already have 3 upcoming"):
        _request(world, TUESDAY_0900 + 3 * HALF_HOUR)

    appointments.cancel(world.session, world.actor("alice"), held[0].id)
    assert _request(world, TUESDAY_0900 + 3 * HALF_HOUR).status is AppointmentStatus.REQUESTED
    # Moving one is not a fourth.
    appointments.reschedule(
        world.session, world.actor("alice"), held[1].id, TUESDAY_0900 + 5 * HALF_HOUR
    )


@pytest.mark.parametrize("outcome", [AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW])
def test_a_visit_that_has_not_started_has_no_outcome(
    world: World, outcome: AppointmentStatus
) -> None:
    visit = _request(world)
    chen = world.actor("dr_chen")
    appointments.set_status(world.session, chen, visit.id, AppointmentStatus.SCHEDULED)
    with pytest.raises(AppointmentError, match="has not started"):
        appointments.set_status(world.session, chen, visit.id, outcome)

    set_clock(lambda: TUESDAY_0900 + timedelta(minutes=5))
    assert appointments.set_status(world.session, chen, visit.id, outcome).status is outcome


def test_the_notification_list_is_the_readers_own_and_opening_marks_read(world: World) -> None:
    visit = _request(world)
    chen, okafor = world.actor("dr_chen"), world.actor("dr_okafor")
    newest = notifications.own_page(world.session, chen).rows[0]
    assert (newest.entity_id, newest.read_at) == (visit.id, None)
    assert all(n.user_id == chen.user_id for n in notifications.own_page(world.session, chen).rows)

    with pytest.raises(NotFound):
        notifications.open_own(world.session, okafor, newest.id)
    assert notifications.open_own(world.session, chen, newest.id).read_at is not None
