"""The provider's patient list (search, pages, what needs attention) and the chart."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import Actor, unscoped
from portal.models import CareAssignment, Role
from portal.services import accounts, messaging, paging
from portal.services import patients as roster
from tests.conftest import Demo, count_queries


def test_a_provider_lists_only_the_patients_in_their_care(as_user) -> None:
    html = as_user("dr_chen").get("/staff/patients").get_data(as_text=True)
    assert "Alice Martin" in html
    assert "Bob Okonkwo" in html
    assert "Carol Jensen" not in html


def test_searching_by_mrn_or_part_of_a_name_narrows_the_list(as_user) -> None:
    client = as_user("dr_chen")
    by_mrn = client.get("/staff/patients?q=mrn-100002").get_data(as_text=True)
    assert "Bob Okonkwo" in by_mrn
    assert "Alice Martin" not in by_mrn
    by_name = client.get("/staff/patients?q=alic").get_data(as_text=True)
    assert "Alice Martin" in by_name
    assert "Bob Okonkwo" not in by_name
    assert "No patient matches" in client.get("/staff/patients?q=carol").get_data(as_text=True)


def test_a_search_wildcard_is_matched_literally(as_user) -> None:
    html = as_user("dr_chen").get("/staff/patients?q=%25").get_data(as_text=True)
    assert "Alice Martin" not in html


def test_the_list_answers_htmx_with_the_list_block_only(as_user) -> None:
    response = as_user("dr_chen").get("/staff/patients?q=alice", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "Alice Martin" in html
    assert "<html" not in html
    assert 'id="patient-list-heading" tabindex="-1"' in html


def test_the_list_shows_what_needs_attention(session: Session, people: Demo) -> None:
    # Arrange: alice writes to dr.chen twice (each count differs from the others)
    alice = people.actor("alice")
    for subject in ("Test", "Another"):
        messaging.start_conversation(
            session,
            alice,
            patient_id=alice.patient_id or 0,
            recipient_user_id=people.user("dr_chen").id,
            subject=subject,
            body="Hello",
        )
    # Act
    page = roster.search(session, people.actor("dr_chen"), "alice")
    # Assert: the new message; the demo's revised plan not yet acknowledged, the preliminary
    # glucose and the held genetic test
    [row] = page.rows
    assert page.total == 1
    assert row.attention.unread_messages == 2
    assert row.attention.unacknowledged_plans == 1
    assert row.attention.preliminary_results == 1
    assert row.attention.held_results == 1


def test_the_list_costs_the_same_number_of_queries_for_many_patients(
    app: Flask, session: Session, people: Demo
) -> None:
    chen = people.actor("dr_chen")
    admin = people.actor("admin")
    with count_queries(app) as few:
        before = roster.search(session, chen)
    for i in range(25):
        patient = accounts.register_patient(
            session, admin, medical_record_number=f"MRN-9{i:05d}", display_name=f"Zed {i}"
        )
        accounts.assign_provider(
            session, admin, patient_id=patient.id, provider_id=chen.provider_id or 0
        )
    with count_queries(app) as many:
        page = roster.search(session, chen)
    assert len(page.rows) == roster.PER_PAGE
    assert page.total == before.total + 25
    # Counted in the reader's scope: his current care assignments, not every patient.
    his = select(func.count(func.distinct(CareAssignment.patient_id))).where(
        CareAssignment.provider_id == chen.provider_id, CareAssignment.ended_at.is_(None)
    )
    assert page.total == session.scalar(unscoped(his, "test: the expected count"))
    past_the_end = roster.search(session, chen, cursor=paging.encode("patients", ("~", 2**31 - 1)))
    assert (past_the_end.rows, past_the_end.total) == ([], page.total)
    assert len(many) == len(few) <= 2  # the page with its total, and its attention


def test_pages_link_to_each_other_with_plain_links(session: Session, people: Demo, as_user) -> None:
    chen = people.actor("dr_chen")
    admin = people.actor("admin")
    for i in range(21):
        patient = accounts.register_patient(
            session, admin, medical_record_number=f"MRN-8{i:05d}", display_name=f"Yan {i:02d}"
        )
        accounts.assign_provider(
            session, admin, patient_id=patient.id, provider_id=chen.provider_id or 0
        )
    session.commit()
    client = as_user("dr_chen")
    first = client.get("/staff/patients?q=Yan").get_data(as_text=True)
    next_page = re.search(r'href="(/staff/patients\?[^"]*cursor=[^"]+)"[^>]*>Next page', first)
    assert next_page
    second = client.get(next_page[1].replace("&amp;", "&")).get_data(as_text=True)
    assert "Yan 20" in second
    assert "Yan 20" not in first
    back = re.search(r'href="(/staff/patients\?[^"]*cursor=[^"]+)"[^>]*>Previous page', second)
    assert back
    again = client.get(back[1].replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r"Yan \d\d", again) == re.findall(r"Yan \d\d", first)


def test_the_chart_shows_profile_results_plans_messages_and_appointments(
    as_user, people: Demo
) -> None:
    html = as_user("dr_chen").get(f"/staff/patients/{people.user('alice').patient.id}")
    text = html.get_data(as_text=True)
    assert html.status_code == 200
    for heading in ("Profile", "Recent results", "Treatment plans", "Messages", "Appointments"):
        assert f">{heading}</h2>" in text
    assert "MRN-100001" in text
    assert "Type 2 diabetes: metformin and diet" in text
    assert "Question about my cholesterol results" in text
    assert 'aria-label="Chart sections"' in text


def test_admins_find_every_patient_but_no_clinical_content(as_user, people: Demo) -> None:
    client = as_user("admin")
    html = client.get("/admin/patients").get_data(as_text=True)
    assert "Alice Martin" in html
    assert "Carol Jensen" in html
    team = client.get(f"/admin/patients/{people.user('alice').patient.id}/care-team")
    text = team.get_data(as_text=True)
    assert "Dr Mei Chen" in text
    assert "metformin" not in text
    assert "Hemoglobin" not in text


def test_admin_actor_sees_no_attention_counts(session: Session, people: Demo) -> None:
    admin = Actor(people.user("admin").id, Role.ADMIN)
    page = roster.search(session, admin, "alice")
    assert not page.rows[0].attention.any
