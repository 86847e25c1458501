"""Booking rules in `portal.services.appointments.book`, whatever door (page, API) calls it.

The clock is pinned to Monday 2030-01-07 09:00 UTC, years past the demo's own visits, so the
open slots are the same on every day the suite runs.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db import set_clock
from portal.models import Appointment, AppointmentStatus
from portal.services import appointments, schedule
from portal.services.appointments import AppointmentError
from portal.transactions import is_unique_violation
from tests.unit.services.conftest import World

MONDAY_0900 = datetime(2030, 1, 7, 9, tzinfo=UTC)
TUESDAY = datetime(2030, 1, 8, tzinfo=UTC)


@pytest.fixture
def tuesday_hours(session: Session, world: World) -> None:
    """Dr Chen's only hours: Tuesdays 09:00-12:00 in 45-minute slots, in room 7."""
    set_clock(lambda: MONDAY_0900)
    schedule.add_rule(
        session,
        world.actor("dr_chen"),
        weekday=TUESDAY.weekday(),
        start_minute=9 * 60,
        end_minute=12 * 60,
        slot_minutes=45,
        location="Riverside Clinic, room 7",
    )


def _book(world: World, start_at: datetime):  # type: ignore[no-untyped-def]
    return appointments.book(
        world.session,
        world.actor("alice"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=start_at,
        reason="Knee pain",
    )


def _refused(world: World, start_at: datetime) -> AppointmentError:
    with pytest.raises(AppointmentError) as refused:
        _book(world, start_at)
    return refused.value


@pytest.mark.usefixtures("tuesday_hours")
def test_the_visit_takes_its_end_and_place_from_the_open_slot(world: World) -> None:
    visit = _book(world, TUESDAY + timedelta(hours=9, minutes=45))

    assert visit.start_at == TUESDAY + timedelta(hours=9, minutes=45)
    assert visit.end_at == TUESDAY + timedelta(hours=10, minutes=30)
    assert visit.location == "Riverside Clinic, room 7"
    assert visit.status is AppointmentStatus.REQUESTED


@pytest.mark.usefixtures("tuesday_hours")
def test_the_same_moment_in_another_offset_is_the_same_slot(world: World) -> None:
    paris = timezone(timedelta(hours=1))
    visit = _book(world, datetime(2030, 1, 8, 10, tzinfo=paris))  # 09:00 UTC

    assert visit.start_at == TUESDAY + timedelta(hours=9)
    assert visit.end_at == TUESDAY + timedelta(hours=9, minutes=45)


@pytest.mark.usefixtures("tuesday_hours")
@pytest.mark.parametrize(
    "start_at",
    [
        pytest.param(TUESDAY + timedelta(hours=9, minutes=30), id="inside-a-slot"),
        pytest.param(TUESDAY + timedelta(hours=13), id="outside-the-hours"),
        pytest.param(TUESDAY + timedelta(days=1, hours=9), id="a-day-without-hours"),
        pytest.param(MONDAY_0900 - timedelta(days=7), id="in-the-past"),
        pytest.param(datetime(2030, 1, 8, 9), id="no-time-zone"),  # noqa: DTZ001
    ],
)
def test_a_start_that_is_not_an_open_slot_is_refused(world: World, start_at: datetime) -> None:
    error = _refused(world, start_at)

    assert error.field == "start_at"
    assert error.message == "This time is no longer available; choose another."


@pytest.mark.usefixtures("tuesday_hours")
def test_a_slot_already_taken_is_refused_as_just_taken(world: World) -> None:
    _book(world, TUESDAY + timedelta(hours=9))

    error = _refused(world, TUESDAY + timedelta(hours=9))

    assert isinstance(error, appointments.SlotTaken)
    assert (error.field, error.status) == ("start_at", 409)
    assert error.message == "That time was just taken; choose another."


@pytest.mark.usefixtures("tuesday_hours")
def test_the_loser_of_a_race_past_the_check_is_told_the_time_was_just_taken(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two bookings that both read the slot as open before either wrote (PostgreSQL, read
    # committed): the database's unique index refuses the second, never a second visit.
    start = TUESDAY + timedelta(hours=9)
    open_then = appointments.slot_at(world.session, world.chen_provider_id, start)
    _book(world, start)
    monkeypatch.setattr(appointments, "slot_at", lambda *_args: open_then)

    with pytest.raises(appointments.SlotTaken):
        appointments.book(
            world.session,
            world.actor("bob"),
            patient_id=None,
            provider_id=world.chen_provider_id,
            start_at=start,
            reason=None,
        )


def _visit(world: World, start: datetime, status: AppointmentStatus) -> Appointment:
    return Appointment(
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=start,
        end_at=start + timedelta(minutes=30),
        status=status,
        booked_by_id=world.people.user("alice").id,
    )


@pytest.mark.parametrize("second", [AppointmentStatus.REQUESTED, AppointmentStatus.SCHEDULED])
def test_the_database_holds_one_active_visit_per_provider_and_start(
    world: World, second: AppointmentStatus
) -> None:
    start = TUESDAY + timedelta(days=7, hours=9)
    world.session.add(_visit(world, start, AppointmentStatus.SCHEDULED))
    world.session.flush()
    world.session.add(_visit(world, start, second))

    with pytest.raises(IntegrityError) as refused, world.session.begin_nested():
        world.session.flush()
    assert is_unique_violation(refused.value)


def test_visits_that_no_longer_hold_the_slot_do_not_block_it(world: World) -> None:
    start = TUESDAY + timedelta(days=7, hours=9)
    for status in (
        AppointmentStatus.CANCELLED,
        AppointmentStatus.CANCELLED,
        AppointmentStatus.COMPLETED,
        AppointmentStatus.NO_SHOW,
        AppointmentStatus.SCHEDULED,
    ):
        world.session.add(_visit(world, start, status))
    world.session.flush()  # no error: only the scheduled one holds the slot


def test_the_default_hours_give_half_hour_slots_with_no_place(world: World) -> None:
    # No weekly hours of their own: weekdays 09:00-12:00 and 13:00-17:00, 30-minute slots.
    set_clock(lambda: MONDAY_0900)

    visit = _book(world, TUESDAY + timedelta(hours=14))

    assert visit.end_at == TUESDAY + timedelta(hours=14, minutes=30)
    assert visit.location is None


def test_a_caller_cannot_name_the_end_or_the_place() -> None:
    # The 09:00-17:00 visit on one 09:00 slot: `book` takes no end or place to stretch.
    parameters = inspect.signature(appointments.book).parameters

    assert "end_at" not in parameters
    assert "location" not in parameters
