"""The admin audit report: filters, keyset pages, CSV export (itself audited), admins only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from werkzeug.exceptions import Forbidden

from portal import audit
from portal.actor import Actor
from portal.audit.report import AuditFilters, audit_events
from portal.db import utcnow
from portal.models import AuditAction, Entity
from portal.services.paging import InvalidCursor
from tests.web.audit_support import a_result_of, entries_for


def _entries_about(session, people, name: str, n: int, actor: str = "dr_chen") -> list[int]:  # type: ignore[no-untyped-def]
    user = people.user(actor)
    ids = [
        audit.record(
            session,
            Actor.of(user),
            AuditAction.VIEW,
            Entity.LAB_RESULT,
            i,
            patient_id=people.user(name).patient.id,
        ).id
        for i in range(n)
    ]
    session.commit()
    return ids


def test_the_report_pages_newest_first_without_gaps_or_repeats(session, people) -> None:
    # Arrange
    made = _entries_about(session, people, "alice", 7)
    admin = people.actor("admin")
    only_these = AuditFilters(patient_id=people.user("alice").patient.id)
    # Act
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = audit_events(session, admin, only_these, cursor=cursor, limit=3)
        seen += [row.id for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    # Assert
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen))
    assert set(made) <= set(seen)


def test_the_report_filters_by_patient_name_or_mrn_actor_action_and_dates(session, people) -> None:
    _entries_about(session, people, "alice", 2)
    bob_ids = _entries_about(session, people, "bob", 2, actor="dr_chen")
    admin = people.actor("admin")
    bob = people.user("bob").patient
    today = utcnow().date()

    by_name = audit_events(session, admin, AuditFilters(patient=bob.display_name.split()[0]))
    by_mrn = audit_events(session, admin, AuditFilters(patient=bob.medical_record_number.lower()))
    by_actor = audit_events(
        session, admin, AuditFilters(actor_email="DR.CHEN@example.org", patient_id=bob.id)
    )
    by_action = audit_events(session, admin, AuditFilters(action=AuditAction.EXPORT))
    yesterday = audit_events(
        session, admin, AuditFilters(date_to=today - timedelta(days=1), patient_id=bob.id)
    )
    today_only = audit_events(
        session, admin, AuditFilters(date_from=today, date_to=today, patient_id=bob.id)
    )

    assert {r.patient_id for r in by_name.rows} == {bob.id}
    assert {r.patient_id for r in by_mrn.rows} == {bob.id}
    assert set(bob_ids) <= {r.id for r in by_actor.rows}
    assert {r.actor_email for r in by_actor.rows} == {"dr.chen@example.org"}
    assert {r.action for r in by_action.rows} <= {"export"}
    assert not {r.id for r in yesterday.rows} & set(bob_ids)
    assert set(bob_ids) <= {r.id for r in today_only.rows}
    row = by_mrn.rows[0]
    assert (row.patient_name, row.patient_mrn) == (bob.display_name, bob.medical_record_number)


@pytest.mark.parametrize("who", ["alice", "dr_chen"])
def test_only_admins_may_query_the_report(session, people, who: str) -> None:
    with pytest.raises(Forbidden):
        audit_events(session, people.actor(who), AuditFilters())


@pytest.mark.parametrize("path", ["/admin/audit", "/admin/audit.csv"])
@pytest.mark.parametrize("who", ["alice", "dr_chen"])
def test_the_report_pages_are_forbidden_to_others(as_user, path: str, who: str) -> None:
    assert as_user(who).get(path).status_code == 403


def test_the_admin_sees_who_did_what_to_which_patient(as_user, session, people) -> None:
    # Arrange: dr.chen looks at one of alice's results.
    result = a_result_of(session, people, "alice")
    client = as_user("dr_chen")
    viewed = client.get(f"/staff/results/{result.id}")
    client.delete_cookie("portal_session")
    alice = people.user("alice").patient
    # Act
    admin = as_user("admin")
    page = admin.get(
        "/admin/audit",
        query_string={"patient": alice.medical_record_number, "actor": "dr.chen@example.org"},
    )
    # Assert
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert viewed.headers["X-Request-ID"] in html
    assert alice.display_name in html
    assert alice.medical_record_number in html
    assert "dr.chen@example.org (Provider)" in html.replace('<span class="muted">', "").replace(
        "</span>", ""
    )


def test_the_report_answers_an_htmx_request_with_the_results_block(as_user) -> None:
    response = as_user("admin").get(
        "/admin/audit", query_string={"action": "sign_in"}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="audit-results-heading" tabindex="-1"' in html


def test_invalid_filters_are_shown_with_the_form_and_422(as_user) -> None:
    response = as_user("admin").get("/admin/audit", query_string={"date_from": "yesterday"})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.get_data(as_text=True)


@pytest.mark.parametrize("cursor", ["abc", "%C2%B2", "%D9%A3", "1e9999", "0", "9" * 30])
def test_a_forged_cursor_shows_the_newest_entries_with_422(as_user, cursor: str) -> None:
    response = as_user("admin").get(f"/admin/audit?cursor={cursor}")
    assert response.status_code == 422
    assert "This page link is not valid." in response.get_data(as_text=True)


@pytest.mark.parametrize("limit", ["%C2%B2", "1e9999", "-5", "9" * 30])
def test_a_malformed_limit_is_not_found(as_user, limit: str) -> None:
    assert as_user("admin").get(f"/admin/audit?limit={limit}").status_code == 404


@pytest.mark.parametrize("cursor", ["٣", " 3", "3 ", "+3", "9" * 19])
def test_the_report_takes_only_the_cursors_it_hands_out(session, people, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        audit_events(session, people.actor("admin"), AuditFilters(), cursor=cursor)


def test_the_report_names_patients_without_a_hand_made_scope(session, people) -> None:
    # Its one statement joins patient_profile: scoped by access (the meta-test keeps
    # `portal_scoped` there), so an admin's page names every patient concerned.
    _entries_about(session, people, "carol", 1)
    rows = audit_events(
        session, people.actor("admin"), AuditFilters(patient_id=people.user("carol").patient.id)
    ).rows
    assert rows
    assert {r.patient_name for r in rows} == {people.user("carol").patient.display_name}


def test_the_csv_export_streams_matching_entries_and_is_itself_audited(
    as_user, session, people
) -> None:
    # Arrange
    made = _entries_about(session, people, "bob", 3)
    bob = people.user("bob").patient
    client = as_user("admin")
    # Act
    # buffered: read the streamed body while the request is still open, as a server does.
    response = client.get(
        "/admin/audit.csv", query_string={"patient": bob.medical_record_number}, buffered=True
    )
    body = response.get_data(as_text=True)
    # Assert
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert set(map(str, made)) <= {r["id"] for r in rows}
    assert {r["patient_mrn"] for r in rows} == {bob.medical_record_number}
    (export,) = entries_for(session, response)
    assert export.action is AuditAction.EXPORT
    assert export.actor_id == people.user("admin").id
    assert bob.display_name not in export.detail
    assert "patient" in export.detail


def test_viewing_the_report_is_itself_audited(as_user, session) -> None:
    response = as_user("admin").get("/admin/audit")
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "audit_log")


def test_a_csv_cell_cannot_smuggle_a_spreadsheet_formula(as_user) -> None:
    # The export records itself first, so its own (hostile) user agent is among the rows.
    response = as_user("admin").get(
        "/admin/audit.csv", headers={"User-Agent": '=HYPERLINK("http://evil")'}, buffered=True
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    agents = {r["user_agent"] for r in rows}
    assert '\'=HYPERLINK("http://evil")' in agents
    assert not any(a.startswith("=") for a in agents)


def test_no_csv_column_can_carry_a_formula(as_user, session, people) -> None:
    # A valid address may begin with "-": the actor's email column is neutralised too.
    from portal import audit
    from portal.models import AuditAction, Role
    from portal.services import accounts

    staff, _link = accounts.create_staff(
        session,
        people.actor("admin"),
        email="-2+3@example.org",
        role=Role.PROVIDER,
        display_name="Dr Minus",
    )
    audit.record(session, Actor.of(staff), AuditAction.VIEW, Entity.PATIENT_LIST)
    session.commit()
    response = as_user("admin").get("/admin/audit.csv", buffered=True)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    emails = {r["actor_email"] for r in rows}
    assert "'-2+3@example.org" in emails
    assert not any(cell[:1] in "=+-@" for r in rows for cell in r.values() if cell)
