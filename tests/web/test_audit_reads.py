"""Every request that shows PHI records one entry, declared at the route; no entry, no page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.access import RoleScope, reader
from portal.audit import chain
from portal.models import Attachment, AuditAction, AuditOutcome
from portal.services import attachments
from tests.web.audit_support import a_result_of, entries_for

HTMX_FRAGMENT = {"HX-Request": "true"}


def test_viewing_a_lab_result_records_who_saw_which_record_of_whom(
    as_user, session, people
) -> None:
    # Arrange
    client = as_user("alice")
    result = a_result_of(session, people, "alice")
    # Act
    response = client.get(
        f"/my/lab-results/{result.id}", headers={"User-Agent": "audit-test-agent/1.0"}
    )
    # Assert
    assert response.status_code == 200
    (entry,) = entries_for(session, response)
    assert entry.actor_id == people.user("alice").id
    assert entry.actor_role == "patient"
    assert entry.action is AuditAction.VIEW
    assert (entry.entity_type, entry.entity_id) == ("lab_result", str(result.id))
    assert entry.patient_id == people.user("alice").patient.id
    assert entry.outcome is AuditOutcome.SUCCESS
    assert entry.client_addr == "127.0.0.1"
    assert entry.user_agent == "audit-test-agent/1.0"


def test_an_htmx_fragment_is_recorded_like_the_page(as_user, session, people) -> None:
    client = as_user("alice")

    response = client.get("/my/lab-results", headers=HTMX_FRAGMENT)

    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.VIEW
    assert entry.entity_type == "lab_result_list"
    assert entry.patient_id == people.user("alice").patient.id


def test_a_provider_viewing_a_chart_is_recorded_against_that_patient(
    as_user, session, people
) -> None:
    client = as_user("dr_chen")
    alice = people.user("alice").patient

    response = client.get(f"/staff/patients/{alice.id}")

    assert response.status_code == 200
    (entry,) = entries_for(session, response)
    assert entry.actor_id == people.user("dr_chen").id
    assert entry.patient_id == alice.id


def test_the_request_id_is_the_servers_own_whatever_the_client_sends(as_user, session) -> None:
    client = as_user("alice")
    sent = {"X-Request-ID": "trace-0123456789abcdef"}

    first, second = client.get("/my/", headers=sent), client.get("/my/", headers=sent)

    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert "trace-0123456789abcdef" not in ids
    assert len(ids) == 2  # a client cannot make two requests' entries share an id
    (entry,) = entries_for(session, first)
    assert entry.request_id == first.headers["X-Request-ID"]


def test_someone_elses_record_is_recorded_as_access_denied(as_user, session, people) -> None:
    # Arrange
    bobs = a_result_of(session, people, "bob")
    client = as_user("alice")
    # Act
    response = client.get(f"/my/lab-results/{bobs.id}")
    # Assert
    assert response.status_code == 404
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.ACCESS_DENIED
    assert entry.outcome is AuditOutcome.DENIED
    assert entry.entity_id == str(bobs.id)
    # The entry does not tie alice's attempt to bob: she learnt nothing about him.
    assert entry.patient_id is None


def test_a_role_refused_at_the_door_is_recorded_as_access_denied(as_user, session) -> None:
    client = as_user("alice")

    response = client.get("/admin/audit")

    assert response.status_code == 403
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.ACCESS_DENIED
    assert entry.entity_type == "audit_log"


def test_a_page_whose_entry_cannot_be_written_is_not_delivered(
    as_user, session, people, monkeypatch
) -> None:
    # Arrange
    client = as_user("alice")
    result = a_result_of(session, people, "alice")

    def broken(*_args: object) -> str:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(chain, "append", broken)
    # Act
    response = client.get(f"/my/lab-results/{result.id}")
    # Assert: fail closed, with no PHI in the body and nothing cached.
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert result.test_name not in body
    assert "no-store" in response.headers["Cache-Control"]
    assert "Content-Security-Policy" in response.headers
    monkeypatch.undo()
    assert entries_for(session, response) == []


def test_a_download_whose_entry_cannot_be_written_is_not_delivered(
    as_user, session, people, monkeypatch
) -> None:
    alice = people.actor("alice")
    stmt = select(Attachment).where(Attachment.patient_id == alice.patient_id)
    attachment = session.scalars(
        RoleScope(alice.role).scope(stmt, Attachment), reader(alice)
    ).first()
    if attachment is None:
        pytest.skip("the demo data has no attachment alice can see")
    client = as_user("alice")
    url = f"/my/attachments/{attachments.link_token(attachment.id, people.user('alice').id)}"
    assert client.get(url).status_code == 200

    def broken(*_args: object) -> str:
        raise OSError("audit disk full")

    monkeypatch.setattr(chain, "append", broken)
    response = client.get(url)

    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "attachment" not in response.headers.get("Content-Disposition", "")


def test_reads_are_not_recorded_when_auditing_is_switched_off_for_benchmarks(
    app, as_user, session, monkeypatch
) -> None:
    client = as_user("alice")
    monkeypatch.setitem(app.config, "AUDIT_ENABLED", False)

    response = client.get("/my/")

    assert response.status_code == 200
    assert entries_for(session, response) == []
