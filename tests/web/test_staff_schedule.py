"""The provider's schedule: days and weeks, visit outcomes, weekly hours and days off."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import set_clock, utcnow
from portal.models import Appointment, AppointmentStatus, AvailabilityException, AvailabilityRule
from portal.services import appointments
from tests.conftest import Demo, post


@pytest.fixture
def requested(session: Session, people: Demo) -> Appointment:
    """A visit alice requested with dr.chen on a Tuesday at 10:00, years past the demo data's
    bookings (which follow the day the suite runs), with the clock pinned a week before."""
    set_clock(lambda: datetime(2030, 1, 1, 9, tzinfo=UTC))
    start = datetime.combine(date(2030, 1, 8), time(10), UTC)
    visit = appointments.book(
        session,
        people.actor("alice"),
        patient_id=people.user("alice").patient.id,
        provider_id=people.actor("dr_chen").provider_id or 0,
        start_at=start,
        reason="Check-up",
    )
    session.commit()
    return visit


def _status(session: Session, appointment_id: int) -> Appointment:
    session.expire_all()
    row = session.scalar(
        unscoped(select(Appointment).where(Appointment.id == appointment_id), "test")
    )
    assert row is not None
    return row


def test_the_day_and_week_views_show_the_providers_visits(as_user, requested) -> None:
    client = as_user("dr_chen")
    day = requested.start_at.date().isoformat()
    day_page = client.get(f"/staff/appointments?view=day&date={day}").get_data(as_text=True)
    assert "Alice Martin" in day_page
    assert "Requested" in day_page
    week = client.get(f"/staff/appointments?view=week&date={day}").get_data(as_text=True)
    assert "Week of" in week
    assert "Alice Martin" in week
    other_day = (requested.start_at.date() + timedelta(days=1)).isoformat()
    assert "Check-up" not in client.get(f"/staff/appointments?date={other_day}").get_data(
        as_text=True
    )


def test_a_provider_confirms_a_request_then_records_the_outcome(
    session: Session, as_user, requested
) -> None:
    client = as_user("dr_chen")
    path = f"/staff/appointments/{requested.id}/status"
    assert post(client, path, {"status": "scheduled"}).status_code == 303
    assert _status(session, requested.id).status is AppointmentStatus.SCHEDULED
    # A visit that has not started yet has no outcome.
    for outcome in ("completed", "no_show"):
        early = post(client, path, {"status": outcome})
        assert early.status_code == 422
        assert "has not started" in early.get_data(as_text=True)
    assert _status(session, requested.id).status is AppointmentStatus.SCHEDULED
    set_clock(lambda: requested.start_at + timedelta(minutes=20))
    client = as_user("dr_chen")  # a week on: the earlier session has ended
    assert post(client, path, {"status": "no_show"}).status_code == 303
    assert _status(session, requested.id).status is AppointmentStatus.NO_SHOW
    assert post(client, path, {"status": "completed"}).status_code == 422


def test_cancelling_needs_a_reason_and_records_it(session: Session, as_user, requested) -> None:
    client = as_user("dr_chen")
    path = f"/staff/appointments/{requested.id}/cancel"
    assert post(client, path, {"reason": ""}).status_code == 422
    assert post(client, path, {"reason": "Clinic closed"}).status_code == 303
    visit = _status(session, requested.id)
    assert visit.status is AppointmentStatus.CANCELLED
    assert visit.cancel_reason == "Clinic closed"


def test_weekly_hours_replace_the_default_hours_and_refuse_overlaps(
    session: Session, as_user, people: Demo
) -> None:
    # A Tuesday years past the demo data's bookings, whatever day the suite runs on.
    set_clock(lambda: datetime(2030, 1, 1, 9, tzinfo=UTC))
    client = as_user("dr_chen")
    hours = {"weekday": "2", "start": "08:00", "end": "12:00", "slot_minutes": "30"}
    assert post(client, "/staff/availability/rules", hours).status_code == 303
    overlap = post(client, "/staff/availability/rules", {**hours, "start": "11:00", "end": "13:00"})
    assert overlap.status_code == 422
    assert "overlap" in overlap.get_data(as_text=True)
    provider = people.actor("dr_chen").provider_id or 0
    today = utcnow().date()
    wednesday = today + timedelta(days=(2 - today.weekday()) % 7 + 7)
    slots = appointments.open_slots(session, provider, wednesday, days=1)
    assert slots[0][0].hour == 8
    assert len(slots) == 8
    assert appointments.open_slots(session, provider, wednesday + timedelta(days=1), days=1) == []
    rule = session.scalar(select(AvailabilityRule).where(AvailabilityRule.provider_id == provider))
    assert rule is not None
    assert post(client, f"/staff/availability/rules/{rule.id}/remove").status_code == 303


def test_a_day_off_closes_the_day_for_booking(session: Session, as_user, people: Demo) -> None:
    set_clock(lambda: datetime(2030, 1, 1, 9, tzinfo=UTC))
    client = as_user("dr_chen")
    day = date(2030, 1, 8)
    assert (
        post(client, "/staff/availability/exceptions", {"day": day.isoformat()}).status_code == 303
    )
    provider = people.actor("dr_chen").provider_id or 0
    assert appointments.open_slots(session, provider, day, days=1) == []
    past = post(client, "/staff/availability/exceptions", {"day": "2029-12-01"})
    assert past.status_code == 422
    row = session.scalar(
        select(AvailabilityException).where(AvailabilityException.provider_id == provider)
    )
    assert row is not None
    assert post(client, f"/staff/availability/exceptions/{row.id}/remove").status_code == 303
