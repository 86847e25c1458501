"""Slots, the schedule's days and the cancel cut-off on the clinic's clocks (Europe/Berlin
here), in a week whose Sunday 31 March 2030 moves the clocks from 02:00 CET to 03:00 CEST.

The clock is pinned; the clinic's zone is set on the app for each test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from portal.db import set_clock
from portal.models import Appointment
from portal.services import appointments, profiles, schedule
from portal.services.appointments import AppointmentError
from portal.services.profiles import ProfileError
from tests.unit.services.conftest import World

BERLIN = ZoneInfo("Europe/Berlin")
THURSDAY = date(2030, 3, 28)  # the week Thursday 28 March .. Wednesday 3 April
SUNDAY = date(2030, 3, 31)  # clocks go forward at 02:00 local (01:00 UTC)


@pytest.fixture(autouse=True)
def berlin_clinic(app: Flask, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # After `world`, which finds alice's upcoming visit by the real clock.
    monkeypatch.setitem(app.config, "PORTAL_TIMEZONE", "Europe/Berlin")
    set_clock(lambda: datetime(2030, 3, 20, 12, tzinfo=UTC))


@pytest.fixture
def sunday_hours(session: Session, world: World) -> None:
    """Dr Chen also sees patients on Sundays, 01:00-04:00 and 09:00-12:00 (clinic time)."""
    for first, last in ((60, 240), (540, 720)):
        schedule.add_rule(
            session,
            world.actor("dr_chen"),
            weekday=SUNDAY.weekday(),
            start_minute=first,
            end_minute=last,
            slot_minutes=30,
            location=None,
        )


def _week(world: World) -> list[datetime]:
    found = appointments.slots_for(
        world.session, world.actor("alice"), world.people.user("dr_chen").id, start=THURSDAY, days=7
    )
    return [begin for begin, _end, _where in found]


def test_default_hours_stay_at_nine_on_the_clinics_clocks_across_the_change(world: World) -> None:
    starts = _week(world)
    first_of_day: dict[date, datetime] = {}
    for begin in starts:
        first_of_day.setdefault(begin.astimezone(BERLIN).date(), begin)

    # Weekdays only (Chen has no rules): Thu, Fri, then Mon-Wed after the change.
    assert sorted(first_of_day) == [date(2030, 3, d) for d in (28, 29)] + [
        date(2030, 4, d) for d in (1, 2, 3)
    ]
    assert {b.astimezone(BERLIN).strftime("%H:%M") for b in first_of_day.values()} == {"09:00"}
    # ... which is 08:00 UTC before the change and 07:00 UTC after it.
    assert first_of_day[date(2030, 3, 29)] == datetime(2030, 3, 29, 8, tzinfo=UTC)
    assert first_of_day[date(2030, 4, 1)] == datetime(2030, 4, 1, 7, tzinfo=UTC)
    # 16 slots a day, the lunch hour free, on the clinic's clocks.
    monday = [
        b.astimezone(BERLIN) for b in starts if b.astimezone(BERLIN).date() == date(2030, 4, 1)
    ]
    assert len(monday) == 14
    assert not [b for b in monday if b.hour == 12]


@pytest.mark.usefixtures("sunday_hours")
def test_the_hour_the_clocks_skip_has_no_slots(world: World) -> None:
    sunday = [b.astimezone(BERLIN) for b in _week(world) if b.astimezone(BERLIN).date() == SUNDAY]

    night = [b.strftime("%H:%M %Z") for b in sunday if b.hour < 9]
    assert night == ["01:00 CET", "01:30 CET", "03:00 CEST", "03:30 CEST"]


def test_booking_finds_the_slot_on_the_clinics_day(world: World) -> None:
    # 00:30 UTC on Friday is Friday 01:30 in Berlin: no slot; 08:00 UTC is Friday 09:00.
    visit = appointments.book(
        world.session,
        world.actor("alice"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=datetime(2030, 3, 29, 8, tzinfo=UTC),
        reason=None,
    )
    assert visit.start_at.astimezone(BERLIN).strftime("%a %H:%M %Z") == "Fri 09:00 CET"


def _sunday_visit(world: World) -> Appointment:
    """Alice's visit at Sunday 09:00 CEST (07:00 UTC), the day the clocks went forward."""
    return appointments.book(
        world.session,
        world.actor("alice"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=datetime(2030, 3, 31, 7, tzinfo=UTC),
        reason=None,
    )


@pytest.mark.usefixtures("sunday_hours")
def test_the_cut_off_is_the_same_clinic_time_the_day_before(world: World) -> None:
    visit = _sunday_visit(world)
    # Saturday 09:00 CET is 08:00 UTC: 23 hours before the visit, not 24.
    assert appointments.cancel_deadline(visit) == datetime(2030, 3, 30, 8, tzinfo=UTC)

    # Saturday 08:30 CET (07:30 UTC): more than 24 hours by the clinic's clocks; a 24-hour
    # count in UTC would already refuse.
    set_clock(lambda: datetime(2030, 3, 30, 7, 30, tzinfo=UTC))
    assert appointments.is_cancellable_online(visit, world.actor("alice"))
    appointments.cancel(world.session, world.actor("alice"), visit.id)


@pytest.mark.usefixtures("sunday_hours")
def test_after_the_clinic_time_the_day_before_the_patient_calls(world: World) -> None:
    visit = _sunday_visit(world)
    set_clock(lambda: datetime(2030, 3, 30, 8, 1, tzinfo=UTC))  # Saturday 09:01 CET

    assert not appointments.is_cancellable_online(visit, world.actor("alice"))
    with pytest.raises(AppointmentError, match="within 24 hours"):
        appointments.cancel(world.session, world.actor("alice"), visit.id)


def test_the_schedule_groups_visits_by_the_clinics_day(world: World) -> None:
    # Monday 00:30 in Berlin is Sunday 22:30 UTC: it belongs to Monday's page.
    schedule.add_rule(
        world.session,
        world.actor("dr_chen"),
        weekday=0,
        start_minute=30,
        end_minute=60,
        slot_minutes=30,
        location=None,
    )
    visit = appointments.book(
        world.session,
        world.actor("dr_chen"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
        start_at=datetime(2030, 3, 31, 22, 30, tzinfo=UTC),
        reason=None,
    )
    days = schedule.visits(
        world.session, world.actor("dr_chen"), schedule.Period.of("day", date(2030, 4, 1))
    )
    assert [v.appointment.id for v in days[date(2030, 4, 1)]] == [visit.id]


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", "europe/berlin"])
def test_a_zone_the_database_does_not_know_is_refused(world: World, name: str) -> None:
    with pytest.raises(ProfileError) as refused:
        profiles.set_time_zone(world.session, world.actor("alice"), name)
    assert refused.value.field == "time_zone"
    assert world.people.user("alice").time_zone is None


def test_everyone_chooses_their_own_zone(world: World) -> None:
    for name, zone in (("alice", "America/New_York"), ("dr_chen", "Asia/Tokyo")):
        profiles.set_time_zone(world.session, world.actor(name), zone)
        assert world.people.user(name).time_zone == zone
    profiles.set_time_zone(world.session, world.actor("alice"), "")
    assert world.people.user("alice").time_zone is None


def test_the_cut_off_is_not_twenty_four_hours_of_utc_by_accident(world: World) -> None:
    # Across the autumn change (Sunday 27 October 2030), the day before is 25 hours.
    visit = Appointment(start_at=datetime(2030, 10, 27, 8, tzinfo=UTC))  # 09:00 CET
    assert appointments.cancel_deadline(visit) == datetime(2030, 10, 26, 7, tzinfo=UTC)
    assert visit.start_at - appointments.cancel_deadline(visit) == timedelta(hours=25)
