"""The staff area's request boundary: refused changes that show a record are audited as reads,
the chart shows the release state the service derives, and malformed query input is a 404."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import Appointment, AppointmentStatus, AuditAction, AuditOutcome
from tests.conftest import Demo, post
from tests.web.audit_support import a_conversation_of, a_result_of, entries_for

# --- Audit by what is shown ----------------------------------------------------------------------


def test_an_empty_reply_re_renders_the_thread_and_records_exactly_one_read(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange
    client = as_user("dr_chen")
    thread = a_conversation_of(session, people, "alice")
    # Act
    response = post(client, f"/staff/messages/{thread.id}/reply", {"body": ""})
    # Assert
    assert response.status_code == 422
    assert thread.subject in response.get_data(as_text=True)
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.VIEW
    assert entry.outcome is AuditOutcome.SUCCESS
    assert (entry.entity_type, entry.entity_id) == ("conversation", str(thread.id))
    assert entry.patient_id == people.user("alice").patient.id
    assert entry.actor_id == people.user("dr_chen").id


def test_releasing_an_already_released_result_re_renders_it_and_records_exactly_one_read(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange: a result alice already sees, with nothing held
    client = as_user("dr_chen")
    result = a_result_of(session, people, "alice")
    # Act
    response = post(client, f"/staff/results/{result.id}/release")
    # Assert
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert result.test_name in html
    assert "This result has nothing waiting to be released." in html
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.VIEW
    assert (entry.entity_type, entry.entity_id) == ("lab_result", str(result.id))
    assert entry.patient_id == people.user("alice").patient.id


def test_a_refused_status_change_re_renders_the_schedule_and_records_one_read(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange: a visit of alice's that is over (completed): it cannot become a no-show
    client = as_user("dr_chen")
    visit = session.scalars(
        unscoped(
            select(Appointment)
            .where(
                Appointment.patient_id == people.user("alice").patient.id,
                Appointment.status == AppointmentStatus.COMPLETED,
            )
            .limit(1),
            "test fixture",
        )
    ).one()
    day = visit.start_at.date().isoformat()
    # Act
    response = post(
        client,
        f"/staff/appointments/{visit.id}/status",
        {"status": "no_show", "view": "day", "date": day},
    )
    # Assert: the day's schedule, with alice's name, and its read recorded
    assert response.status_code == 422
    assert people.user("alice").patient.display_name in response.get_data(as_text=True)
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "appointment")


# --- The release state the service derives, shown by the chart ---------------------------------


def test_the_chart_shows_each_results_release_state_in_the_services_words(
    session: Session, as_user, people: Demo
) -> None:
    html = as_user("dr_chen").get(f"/staff/patients/{people.user('alice').patient.id}")
    text = html.get_data(as_text=True)
    # The demo gives alice a released, a care-team-only, a preliminary and a result her
    # clinician holds until a date (released then: "From ...").
    for wording in ("Yes", "No: care team only", "No: preliminary"):
        assert f"<td>{wording}</td>" in text, wording
    assert "<td>From " in text


# --- Malformed query input names no page ---------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "/staff/appointments?date=2026-13-45",
        "/staff/appointments?date=tomorrow",
        "/staff/appointments?date=%D9%A2%D9%A0%D9%A2%D9%A6-01-01",
        "/staff/appointments?view=week&date=9999-12-31",  # its next week does not exist
        "/staff/appointments?view=day&date=0001-01-01",
    ],
)
def test_malformed_query_input_is_a_404_never_a_500(as_user, query: str) -> None:
    assert as_user("dr_chen").get(query).status_code == 404


def test_well_formed_pages_and_days_still_answer(as_user) -> None:
    client = as_user("dr_chen")
    assert client.get("/staff/patients?cursor=%C2%B2").status_code == 422
    assert client.get("/staff/messages?cursor=99999999999999999999").status_code == 422
    assert client.get("/staff/appointments?view=week&date=2030-01-07").status_code == 200


def test_a_malformed_day_in_a_schedule_form_changes_nothing(
    session: Session, as_user, alice_records: dict[str, object]
) -> None:
    client = as_user("dr_chen")
    visit = alice_records["appointment_id"]
    response = post(
        client,
        f"/staff/appointments/{visit}/status",
        {"status": "no_show", "view": "day", "date": "２０３０-01-07"},
    )
    assert response.status_code == 404
    session.expire_all()
    status = session.scalar(
        unscoped(select(Appointment.status).where(Appointment.id == visit), "test")
    )
    assert status is not AppointmentStatus.NO_SHOW
