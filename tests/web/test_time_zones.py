"""Times on the pages: stored in UTC, shown on the reader's clocks with the zone's abbreviation
(their own choice on their profile, else the clinic's); the API keeps UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from portal.db import set_clock
from portal.models import Appointment
from portal.services import appointments, profiles
from tests.conftest import Demo, post

VISIT = datetime(2030, 1, 8, 10, tzinfo=UTC)  # Tuesday: 11:00 in Berlin, 05:00 in New York


@pytest.fixture
def visit(
    app: Flask, session: Session, people: Demo, monkeypatch: pytest.MonkeyPatch
) -> Appointment:
    """Alice's visit with dr.chen, in a clinic in Berlin, with the clock a week before."""
    monkeypatch.setitem(app.config, "PORTAL_TIMEZONE", "Europe/Berlin")
    set_clock(lambda: datetime(2030, 1, 1, 9, tzinfo=UTC))
    booked = appointments.book(
        session,
        people.actor("alice"),
        patient_id=people.user("alice").patient.id,
        provider_id=people.actor("dr_chen").provider_id or 0,
        start_at=VISIT,
        reason="Check-up",
    )
    session.commit()
    return booked


@pytest.mark.usefixtures("visit")
def test_times_are_shown_on_the_clinics_clocks_by_default(as_user) -> None:
    page = as_user("alice").get("/my/appointments").get_data(as_text=True)

    assert "8 Jan 2030, 11:00 CET" in page
    assert "10:00 UTC" not in page


@pytest.mark.usefixtures("visit")
def test_a_patient_reads_times_in_her_own_zone(as_user, session: Session, people: Demo) -> None:
    client = as_user("alice")
    saved = post(client, "/account/time-zone", {"time_zone": "America/New_York"})
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith("/my/profile#time-zone")

    assert "8 Jan 2030, 05:00 EST" in client.get("/my/appointments").get_data(as_text=True)
    # The free times she is offered, too (the form still posts the UTC moment).
    booking = client.get("/my/appointments/new").get_data(as_text=True)
    assert "09:00–09:30 CET" not in booking
    assert "03:00–03:30 EST" in booking
    assert 'value="2030-01-02T03:00:00-05:00"' in booking
    # The API keeps ISO 8601 in UTC.
    listed = client.get("/api/v1/appointments?from=2030-01-08&to=2030-01-08").get_json()
    assert [a["startAt"] for a in listed["items"]] == ["2030-01-08T10:00:00Z"]


@pytest.mark.usefixtures("visit")
def test_staff_read_the_schedule_in_their_own_zone(as_user) -> None:
    client = as_user("dr_chen")
    assert "11:00–11:30 CET" in client.get("/staff/appointments?date=2030-01-08").get_data(
        as_text=True
    )

    assert post(client, "/account/time-zone", {"time_zone": "Asia/Tokyo"}).status_code == 303
    page = client.get("/staff/appointments?date=2030-01-08").get_data(as_text=True)
    assert "19:00–19:30 JST" in page
    assert "Times are shown in Asia/Tokyo" in client.get("/account").get_data(as_text=True)


def test_a_zone_not_on_the_list_is_refused_on_the_field(as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    refused = post(client, "/account/time-zone", {"time_zone": "Mars/Olympus_Mons"})

    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'id="time_zone-error"' in page
    assert "Choose a time zone from the list." in page
    assert people.user("dr_chen").time_zone is None


def test_the_choice_needs_the_forms_token(as_user) -> None:
    client = as_user("alice")
    assert client.post("/account/time-zone", data={"time_zone": "Asia/Tokyo"}).status_code == 400


def test_back_to_the_clinics_zone(session: Session, people: Demo) -> None:
    profiles.set_time_zone(session, people.actor("alice"), "Asia/Tokyo")
    profiles.set_time_zone(session, people.actor("alice"), None)
    assert people.user("alice").time_zone is None
