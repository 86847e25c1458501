"""The provider's request queue and notification list, and the patient's booking and moving
pages, through the test client (CSRF, status codes, what each side then reads)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import set_clock
from portal.models import Appointment, AppointmentStatus, EventType, Notification
from portal.services import accounts, appointments
from tests.conftest import Demo, count_queries, login, post

TUESDAY_1000 = datetime(2030, 1, 8, 10, tzinfo=UTC)


@pytest.fixture
def requested(session: Session, people: Demo) -> Appointment:
    """Alice's request to see dr.chen on Tuesday 8 January 2030, 10:00 (clock a week before)."""
    set_clock(lambda: datetime(2030, 1, 1, 9, tzinfo=UTC))
    visit = appointments.book(
        session,
        people.actor("alice"),
        patient_id=people.user("alice").patient.id,
        provider_id=people.actor("dr_chen").provider_id or 0,
        start_at=TUESDAY_1000,
        reason="Knee pain",
    )
    session.commit()
    return visit


def _reload(session: Session, visit_id: int) -> Appointment:
    session.expire_all()
    stmt = select(Appointment).where(Appointment.id == visit_id)
    row = session.scalar(unscoped(stmt, "test"))
    assert row is not None
    return row


def _unread(session: Session, user_id: int) -> int:
    stmt = select(func.count(Notification.id)).where(
        Notification.user_id == user_id,
        Notification.read_at.is_(None),
        Notification.type == EventType.APPOINTMENT_UPDATED,
    )
    return int(session.scalar(unscoped(stmt, "test")) or 0)


def test_the_queue_shows_the_request_and_reads_its_notifications(
    app: Flask, as_user, requested: Appointment, session: Session, people: Demo
) -> None:
    chen = people.user("dr_chen").id
    assert _unread(session, chen) > 0
    client = as_user("dr_chen")
    page = client.get("/staff/appointments/requests").get_data(as_text=True)

    assert f'id="request-{requested.id}"' in page
    assert "Alice Martin" in page
    assert "Knee pain" in page
    assert _unread(session, chen) == 0
    # Opened again with nothing unread: it looks, and takes no write lock to mark nothing.
    with count_queries(app) as statements:
        assert client.get("/staff/appointments/requests").status_code == 200
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE NOTIFICATION")]


def test_confirming_from_the_queue(as_user, requested: Appointment, session: Session) -> None:
    client = as_user("dr_chen")
    path = f"/staff/appointments/requests/{requested.id}/confirm"
    assert client.post(path).status_code == 400  # no CSRF token
    assert post(client, path).status_code == 303
    assert _reload(session, requested.id).status is AppointmentStatus.SCHEDULED
    assert post(client, path).status_code == 422  # answered already


def test_a_declined_request_shows_the_patient_the_reason(
    client, as_user, requested: Appointment, session: Session
) -> None:
    staff = as_user("dr_chen")
    path = f"/staff/appointments/requests/{requested.id}/decline"
    refused = post(staff, path, {"reason": ""})
    assert refused.status_code == 422
    assert 'id="reason-error"' in refused.get_data(as_text=True)
    assert _reload(session, requested.id).status is AppointmentStatus.REQUESTED

    assert post(staff, path, {"reason": "Dr Chen is away; please choose May"}).status_code == 303
    post(staff, "/logout")
    page = as_user("alice").get("/my/appointments?upcoming=").get_data(as_text=True)
    assert "Dr Chen is away; please choose May" in page


def test_proposing_another_time_from_its_page(
    as_user, requested: Appointment, session: Session, app: Flask
) -> None:
    client = as_user("dr_chen")
    path = f"/staff/appointments/requests/{requested.id}/propose"
    page = client.get(path).get_data(as_text=True)
    new_time = (TUESDAY_1000 + timedelta(hours=1)).isoformat()
    assert f'value="{new_time}"' in page

    assert post(client, path, {"start_at": "not a time"}).status_code == 422
    assert post(client, path, {"start_at": new_time}).status_code == 303
    visit = _reload(session, requested.id)
    # The proposed time waits for the patient's acceptance, and leaves the provider's queue.
    assert (visit.start_at, visit.status) == (
        TUESDAY_1000 + timedelta(hours=1),
        AppointmentStatus.REQUESTED,
    )
    assert visit.awaits_patient
    queue = client.get("/staff/appointments/requests").get_data(as_text=True)
    assert f"/staff/appointments/requests/{requested.id}/propose" not in queue
    alice = app.test_client()
    login(alice, "alice@example.org")
    page = alice.get("/my/appointments").get_data(as_text=True)
    accept = f"/my/appointments/{requested.id}/accept"
    assert accept in page
    assert "Your provider proposed this time instead" in page
    assert post(alice, accept).status_code == 303
    assert _reload(session, requested.id).status is AppointmentStatus.SCHEDULED
    assert post(alice, accept).status_code == 422  # nothing left to accept


def test_the_notification_list_marks_one_read_when_opened(
    as_user, requested: Appointment, session: Session, people: Demo
) -> None:
    client = as_user("dr_chen")
    page = client.get("/staff/notifications").get_data(as_text=True)
    assert "Appointment requested" in page
    event_id = int(re.findall(r"/staff/notifications/(\d+)", page)[0])

    opened = client.get(f"/staff/notifications/{event_id}")
    assert opened.status_code == 303
    assert opened.headers["Location"].endswith("/staff/appointments/requests")
    session.expire_all()
    read_at = select(Notification.read_at).where(Notification.id == event_id)
    assert session.scalar(unscoped(read_at, "test")) is not None
    assert post(client, "/staff/notifications/read").status_code == 303
    assert _unread(session, people.user("dr_chen").id) == 0


def test_show_free_times_puts_neither_token_nor_reason_in_the_url(as_user) -> None:
    page = as_user("alice").get("/my/appointments/new").get_data(as_text=True)
    get_forms = re.findall(r'<form method="get".*?</form>', page, flags=re.S)

    assert len(get_forms) == 1
    assert "Show free times" in get_forms[0]
    assert "csrf_token" not in get_forms[0]
    assert 'name="reason"' not in get_forms[0]
    assert 'formmethod="get"' not in page
    assert "up to 3 upcoming appointments booked online" in page


def test_moving_to_a_time_just_taken_keeps_the_old_visit(
    as_user, requested: Appointment, session: Session, people: Demo
) -> None:
    taken = appointments.book(
        session,
        people.actor("dr_chen"),
        patient_id=people.user("bob").patient.id,
        provider_id=people.actor("dr_chen").provider_id or 0,
        start_at=TUESDAY_1000 + timedelta(minutes=30),
        reason=None,
    )
    session.commit()
    client = as_user("alice")
    path = f"/my/appointments/{requested.id}/reschedule"
    assert "Move appointment" in client.get(path).get_data(as_text=True)

    refused = post(client, path, {"start_at": taken.start_at.isoformat()})
    assert refused.status_code == 422
    assert "That time was just taken" in refused.get_data(as_text=True)
    assert _reload(session, requested.id).status is AppointmentStatus.REQUESTED

    later = TUESDAY_1000 + timedelta(hours=1)
    assert post(client, path, {"start_at": later.isoformat()}).status_code == 303
    assert _reload(session, requested.id).status is AppointmentStatus.CANCELLED


def test_the_provider_chooses_the_booking_mode(as_user, people: Demo, session: Session) -> None:
    client = as_user("dr_chen")
    assert (
        post(client, "/staff/appointments/booking-mode", {"booking_mode": "view"}).status_code
        == 303
    )
    session.expire_all()
    assert people.user("dr_chen").provider.booking_mode.value == "view"
    post(client, "/logout")
    page = as_user("alice").get("/my/appointments/new").get_data(as_text=True)
    assert "are made by phone" in page


def test_the_nav_counts_unread_notifications_until_they_are_read(
    as_user, requested: Appointment
) -> None:
    client = as_user("dr_chen")
    nav = re.compile(r'>Notifications <span class="badge">(\d+)')
    before = nav.search(client.get("/staff/notifications").get_data(as_text=True))
    assert before is not None
    assert int(before.group(1)) >= 1

    post(client, "/staff/notifications/read")
    assert nav.search(client.get("/staff/notifications").get_data(as_text=True)) is None


def test_a_visit_with_a_provider_who_left_the_care_team_is_moved_by_phone(
    as_user, requested: Appointment, session: Session, people: Demo
) -> None:
    accounts.unassign_provider(
        session,
        people.actor("admin"),
        patient_id=requested.patient_id,
        provider_id=requested.provider_id,
    )
    session.commit()
    page = as_user("alice").get(f"/my/appointments/{requested.id}/reschedule")

    assert page.status_code == 200
    assert "Please call the clinic" in page.get_data(as_text=True)
