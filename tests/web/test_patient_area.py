"""The rest of the patient area: dashboard, treatment plans, appointments and profile."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from portal.access import RoleScope, reader
from portal.db import set_clock
from portal.models import (
    HOLDS_SLOT,
    Appointment,
    AppointmentStatus,
    AuditAction,
    ReleasePreference,
)
from portal.services import appointments, dashboard
from tests.conftest import login, post
from tests.support import PASSWORD
from tests.web.audit_support import entries_for
from tests.web.patient_records import records_of

# --- Dashboard -----------------------------------------------------------------------------------


def test_the_dashboard_starts_with_what_is_new(as_user) -> None:
    page = as_user("alice").get("/my/").get_data(as_text=True)
    new = page.index("What is new")
    assert new < page.index("Your treatment plan") < page.index("Recent lab results")
    assert re.search(r"\d+ new or corrected lab results", page)
    assert "1 unread message" in page
    assert "please read it and acknowledge it" in page
    assert "Corrected lab result: Potassium" in page


def test_the_dashboard_badge_and_list_agree_on_unread_messages(as_user, session, people):
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    page = client.get("/my/").get_data(as_text=True)
    assert 'class="badge">1<' in page
    assert "1 unread message" in page
    client.get(f"/my/messages/{mine.conversation_id}")
    page = client.get("/my/").get_data(as_text=True)
    assert 'class="badge">' not in page
    assert "unread message" not in page


def test_the_dashboard_fragment_is_only_the_new_block(as_user) -> None:
    page = as_user("alice").get("/my/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in page
    assert "What is new" in page


# --- Treatment plans -----------------------------------------------------------------------------


def test_plans_list_active_first_then_completed(as_user) -> None:
    page = as_user("alice").get("/my/treatment-plans").get_data(as_text=True)
    active = page.index("Type 2 diabetes: metformin and diet")
    completed = page.index("Blood pressure: lifestyle changes")
    assert page.index("Active") < active < page.index("Completed") < completed


def test_acknowledging_a_plan_is_recorded_and_shown_with_its_time(as_user, session, people):
    # Arrange
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    url = f"/my/treatment-plans/{mine.plan_id}"
    before = client.get(url).get_data(as_text=True)
    assert ">Acknowledge</button>" in before
    assert "Dose increased after the last HbA1c." in before  # the version history
    # Act
    response = post(client, f"{url}/acknowledge")
    again = post(client, f"{url}/acknowledge")
    # Assert
    assert response.status_code == again.status_code == 303
    after = client.get(url).get_data(as_text=True)
    assert "You confirmed you read this version on" in after
    assert ">Acknowledge</button>" not in after
    assert "please read it and acknowledge it" not in client.get("/my/").get_data(as_text=True)


def test_a_completed_plan_offers_nothing_to_acknowledge(as_user, session, people) -> None:
    client = as_user("alice")
    page = client.get("/my/treatment-plans").get_data(as_text=True)
    old = re.search(r'href="/my/treatment-plans/(\d+)">Blood pressure', page)
    assert old
    detail = client.get(f"/my/treatment-plans/{old.group(1)}").get_data(as_text=True)
    assert "nothing to acknowledge" in detail
    assert post(client, f"/my/treatment-plans/{old.group(1)}/acknowledge").status_code == 303


# --- Appointments --------------------------------------------------------------------------------


def _appointment(session, people, appointment_id: int) -> Appointment:
    session.expire_all()
    alice = people.actor("alice")
    stmt = select(Appointment).where(Appointment.id == appointment_id)
    row = session.scalar(RoleScope(alice.role).scope(stmt, Appointment), reader(alice))
    assert row is not None
    return row


def test_appointments_show_upcoming_and_past_with_provider_place_and_reason(as_user) -> None:
    page = as_user("alice").get("/my/appointments").get_data(as_text=True)
    assert page.index("Upcoming") < page.index("Follow-up of blood results")
    assert page.index("Past") < page.index("Diabetes review")
    assert "Dr Mei Chen" in page
    assert "Riverside Clinic, room 4" in page


def test_cancelling_an_upcoming_appointment(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    response = post(client, f"/my/appointments/{mine.appointment_id}/cancel")
    assert response.status_code == 303
    assert _appointment(session, people, mine.appointment_id).status is (
        AppointmentStatus.CANCELLED
    )


def test_a_visit_the_clinic_cancelled_leaves_next_appointments_and_shows_its_reason(
    as_user, session, people
) -> None:
    # The issue: cancelled visits filled the dashboard's "Next appointments", and the reason
    # the clinic gave was shown nowhere to the patient.
    mine = records_of(session, people, "alice")
    appointments.cancel(session, people.actor("dr_chen"), mine.appointment_id, "Doctor unavailable")
    alice = people.actor("alice")

    visits, _providers = dashboard.upcoming(session, alice)

    assert mine.appointment_id not in {v.id for v in visits}
    assert visits, "alice's other upcoming visit is still listed"
    assert all(v.status in HOLDS_SLOT for v in visits)
    client = as_user("alice")
    home = client.get("/my/").get_data(as_text=True)
    assert "Cancelled" not in home.split('id="visits-heading"')[1].split("</section>")[0]
    listed = client.get("/my/appointments").get_data(as_text=True)
    assert "Cancelled" in listed
    assert "Reason for cancelling: Doctor unavailable" in listed


def test_a_visit_the_patient_cancelled_shows_no_reason_line(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    appointments.cancel(session, people.actor("alice"), mine.appointment_id)
    listed = as_user("alice").get("/my/appointments").get_data(as_text=True)
    assert "Cancelled" in listed
    assert "Reason for cancelling" not in listed


def test_within_24_hours_cancelling_online_is_refused_and_explained(
    as_user, session, people
) -> None:
    # Arrange: three hours before alice's next appointment
    mine = records_of(session, people, "alice")
    start = _appointment(session, people, mine.appointment_id).start_at
    set_clock(lambda: start - timedelta(hours=3))
    client = as_user("alice")
    listed = client.get("/my/appointments").get_data(as_text=True)
    assert "Within 24 hours: call the clinic to cancel" in listed
    # Act
    response = post(client, f"/my/appointments/{mine.appointment_id}/cancel")
    # Assert
    assert response.status_code == 422
    assert "cannot be cancelled online. Please call the clinic." in response.get_data(as_text=True)
    # The refusal shows the visits again: one read entry naming the visit, no cancellation.
    entries = entries_for(session, response)
    assert [(e.action, e.entity_type, e.entity_id) for e in entries] == [
        (AuditAction.VIEW, "appointment", str(mine.appointment_id))
    ]
    assert _appointment(session, people, mine.appointment_id).status is not (
        AppointmentStatus.CANCELLED
    )


def test_requesting_an_appointment_at_an_open_slot(as_user, session, people) -> None:
    client = as_user("alice")
    form = client.get("/my/appointments/new").get_data(as_text=True)
    slot = re.search(r'<option value="([^"]+)">\d\d:\d\d–', form)
    assert slot
    chen = people.user("dr_chen").provider
    response = post(
        client,
        "/my/appointments/new",
        {"provider_id": str(chen.id), "start_at": slot.group(1), "reason": "Knee pain"},
    )
    assert response.status_code == 303
    page = client.get("/my/appointments").get_data(as_text=True)
    assert "Knee pain" in page
    assert "Requested" in page


def test_requesting_without_a_time_is_422_with_the_error_on_the_field(as_user, people) -> None:
    client = as_user("alice")
    chen = people.user("dr_chen").provider
    response = post(client, "/my/appointments/new", {"provider_id": str(chen.id)})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.get_data(as_text=True)


# --- Profile -------------------------------------------------------------------------------------


def test_saving_contact_details_and_the_release_preference(as_user, people, session) -> None:
    client = as_user("alice")
    response = post(
        client,
        "/my/profile",
        {
            "contact_phone": "+44 20 7946 0000",
            "contact_email": "alice.home@example.org",
            "mail_messages": "y",
            "preferred_language": "es",
            "release_preference": "after_review",
        },
    )
    assert response.status_code == 303
    session.expire_all()
    profile = people.user("alice").patient
    assert profile.contact_phone == "+44 20 7946 0000"
    assert profile.release_preference is ReleasePreference.AFTER_REVIEW
    page = client.get("/my/profile").get_data(as_text=True)
    assert 'value="after_review" checked' in page or 'checked id="release_preference-1"' in page


def test_an_invalid_contact_email_is_422_and_tied_to_its_field(as_user) -> None:
    response = post(
        as_user("alice"),
        "/my/profile",
        {
            "contact_email": "not an email",
            "preferred_language": "en",
            "release_preference": "after_review",
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'aria-describedby="contact_email-error"' in page


def test_a_refused_profile_change_records_one_read_of_the_profile(as_user, session, people):
    response = post(
        as_user("alice"),
        "/my/profile",
        {"mail_plans": "y", "preferred_language": "en", "release_preference": "after_review"},
    )
    assert response.status_code == 422
    assert "Enter an email address to be notified by email." in response.get_data(as_text=True)
    assert [(e.action, e.entity_type, e.patient_id) for e in entries_for(session, response)] == [
        (AuditAction.VIEW, "patient_profile", people.user("alice").patient.id)
    ]


def test_the_access_log_section_is_there(as_user) -> None:
    page = as_user("alice").get("/my/profile").get_data(as_text=True)
    assert "Who viewed or changed my records" in page


def test_the_profile_links_to_the_signed_in_devices(as_user) -> None:
    page = as_user("alice").get("/my/profile").get_data(as_text=True)
    assert "Signed-in devices" in page
    assert re.search(r'<a href="/account#devices">See and sign out your devices</a>', page)


def test_changing_the_password_ends_other_sessions_but_not_this_one(app, as_user) -> None:
    # Arrange: alice is signed in on two devices
    here = as_user("alice")
    elsewhere = app.test_client()
    login(elsewhere, "alice@example.org")
    new = "a much longer new passphrase 2026"
    # Act
    response = post(
        here,
        "/my/profile/password",
        {"pw-current_password": PASSWORD, "pw-password": new, "pw-confirm": new},
    )
    # Assert
    assert response.status_code == 303
    assert here.get("/my/").status_code == 200
    assert elsewhere.get("/my/").status_code == 302


def test_a_wrong_current_password_changes_nothing(app, as_user) -> None:
    here = as_user("alice")
    new = "a much longer new passphrase 2026"
    response = post(
        here,
        "/my/profile/password",
        {"pw-current_password": "wrong one", "pw-password": new, "pw-confirm": new},
    )
    assert response.status_code == 422
    assert "That is not your current password." in response.get_data(as_text=True)
    other = app.test_client()
    login(other, "alice@example.org")  # the old password still works


def test_a_time_taken_since_the_form_was_shown_is_a_clear_error_on_the_time(
    as_user, session, people
) -> None:
    client = as_user("alice")
    form = client.get("/my/appointments/new").get_data(as_text=True)
    slot = re.search(r'<option value="([^"]+)">\d\d:\d\d–', form)
    assert slot
    chen = people.user("dr_chen").provider
    appointments.book(  # bob books it while alice's form is open
        session,
        people.actor("bob"),
        patient_id=None,
        provider_id=chen.id,
        start_at=datetime.fromisoformat(slot.group(1)),
        reason=None,
    )

    response = post(
        client, "/my/appointments/new", {"provider_id": str(chen.id), "start_at": slot.group(1)}
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "That time was just taken; choose another." in page
    assert 'aria-invalid="true"' in page


def test_the_page_of_a_booking_the_database_refused_shows_just_taken_not_a_500(
    as_user, session, people, monkeypatch
) -> None:
    # As when two bookings both read the slot open (PostgreSQL): the unique index refuses the
    # second at flush, and its page must still render (no PendingRollbackError).
    client = as_user("alice")
    form = client.get("/my/appointments/new").get_data(as_text=True)
    slot = re.search(r'<option value="([^"]+)">\d\d:\d\d–', form)
    assert slot
    chen = people.user("dr_chen").provider
    start = datetime.fromisoformat(slot.group(1))
    open_then = appointments.slot_at(session, chen.id, start)
    appointments.book(
        session,
        people.actor("bob"),
        patient_id=None,
        provider_id=chen.id,
        start_at=start,
        reason=None,
    )
    monkeypatch.setattr(appointments, "slot_at", lambda *_args: open_then)

    response = post(
        client, "/my/appointments/new", {"provider_id": str(chen.id), "start_at": slot.group(1)}
    )

    assert response.status_code == 422
    assert "That time was just taken; choose another." in response.get_data(as_text=True)


@pytest.mark.parametrize("start_at", ["not a time", "2030-01-08T09:00:00"])
def test_a_posted_time_that_is_no_slot_is_a_422_on_the_time(as_user, people, start_at) -> None:
    client = as_user("alice")
    chen = people.user("dr_chen").provider
    response = post(
        client, "/my/appointments/new", {"provider_id": str(chen.id), "start_at": start_at}
    )
    assert response.status_code == 422
    assert "This time is no longer available; choose another." in response.get_data(as_text=True)
