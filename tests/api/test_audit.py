"""The audit log through the API: the administrators' report and a patient's access log.

Each test drives a flow over the API first, then reads what it left in the log, so the
entries looked for exist whatever the demo seeded (and carry `via: token`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.db import set_clock
from portal.models import AuditAction
from tests.api.conftest import Api
from tests.conftest import Demo
from tests.web.audit_support import entries_for

People = Callable[[str], Api]
MONDAY_0900 = datetime(2030, 1, 7, 9, tzinfo=UTC)


def _ok(response: TestResponse) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.json


def _refused(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def _alice(people: Demo) -> int:
    patient = people.user("alice").patient
    assert patient is not None
    return patient.id


def _chen_books_for_alice(api: People, people: Demo) -> dict[str, Any]:
    """Dr Chen books alice on Tuesday 2030-01-08 09:00 with a token: a change to her record."""
    set_clock(lambda: MONDAY_0900)
    response = api("dr_chen").post(
        "/appointments",
        json={
            "providerId": people.user("dr_chen").id,
            "patientId": _alice(people),
            "startAt": "2030-01-08T09:00:00Z",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    booked: dict[str, Any] = response.json  # type: ignore[assignment]
    return booked


# --- GET /audit-events -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "dr_chen"])
def test_only_administrators_read_the_audit_log(api: People, name: str) -> None:
    _refused(api(name).get("/audit-events"), 403)


def test_the_admin_reads_the_entries_of_a_flow(session: Session, api: People, people: Demo) -> None:
    booked = _chen_books_for_alice(api, people)
    listed = api("dr_chen").get("/appointments?from=2030-01-08&to=2030-01-08")
    _ok(listed)
    chen = people.user("dr_chen").id

    response = api("admin").get(f"/audit-events?actorId={chen}&from=2030-01-07&to=2030-01-07")

    body = _ok(response)
    newest_first = body["items"]
    assert [(e["action"], e["entityType"]) for e in newest_first[:2]] == [
        ("view", "appointment_list"),
        ("create", "appointment"),
    ]
    read, created = newest_first[:2]
    assert created["entityId"] == str(booked["id"])
    assert created["patientId"] == _alice(people)
    assert created["patientName"] == "Alice Martin"
    assert read["requestId"] == listed.headers["X-Request-ID"]
    for entry in (read, created):
        assert entry["actorId"] == chen
        assert entry["actorEmail"] == "dr.chen@example.org"
        assert entry["actorRole"] == "provider"
        assert entry["outcome"] == "success"
        assert entry["metadata"]["via"] == "token"
        assert entry["metadata"]["channel"] == "api"
        assert entry["occurredAt"] == entry["createdAt"] == entry["updatedAt"]
        assert entry["occurredAt"].startswith("2030-01-07T09:00:00")
    # Reading the log is itself an entry.
    (own,) = entries_for(session, response)
    assert (own.action, own.entity_type) == (AuditAction.VIEW, "audit_log")
    assert '"via":"token"' in own.detail


def test_the_filters_combine(api: People, people: Demo) -> None:
    booked = _chen_books_for_alice(api, people)
    alice = _alice(people)

    body = _ok(api("admin").get(f"/audit-events?patientId={alice}&action=create&from=2030-01-07"))

    assert [e["entityId"] for e in body["items"]] == [str(booked["id"])]
    assert body["nextCursor"] is None
    # The day before the booking has none of it.
    body = _ok(api("admin").get(f"/audit-events?patientId={alice}&action=create&to=2030-01-06"))
    assert str(booked["id"]) not in {e["entityId"] for e in body["items"]}


def test_the_log_pages_with_a_cursor(api: People, people: Demo) -> None:
    _chen_books_for_alice(api, people)
    admin = api("admin")

    first = _ok(admin.get("/audit-events?limit=2"))
    second = _ok(admin.get(f"/audit-events?limit=2&cursor={first['nextCursor']}"))

    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("action=peek", "query.action", id="bad-action"),
        pytest.param("actorId=abc", "query.actorId", id="bad-actor-id"),
        pytest.param("patientId=0", "query.patientId", id="patient-id-0"),
        pytest.param("from=2030-02-30", "query.from", id="bad-date"),
        pytest.param("cursor=bm90LWEtY3Vyc29y", "cursor", id="bad-cursor"),
        pytest.param("limit=101", "query.limit", id="limit-101"),
        pytest.param("actor=admin@example.org", "query.actor", id="unknown-parameter"),
    ],
)
def test_a_log_query_that_does_not_validate_is_a_422(api: People, query: str, field: str) -> None:
    body = _refused(api("admin").get(f"/audit-events?{query}"), 422)

    assert field in body["errors"]


def test_the_last_date_there_is_is_a_date_like_any_other(api: People) -> None:
    _ok(api("admin").get("/audit-events?from=0001-01-01&to=9999-12-31&limit=1"))


# --- GET /me/access-log ------------------------------------------------------------------------


def test_a_patient_reads_who_touched_their_records(
    session: Session, api: People, people: Demo
) -> None:
    _chen_books_for_alice(api, people)
    chen_name = people.user("dr_chen").provider.display_name  # type: ignore[union-attr]

    response = api("alice").get("/me/access-log?limit=5")

    body = _ok(response)
    newest = body["items"][0]
    assert newest == {
        "occurredAt": newest["occurredAt"],
        "who": chen_name,
        "role": "Provider",
        "action": "Created",
        "record": "an appointment",
        "proxy": False,
    }
    assert newest["occurredAt"].startswith("2030-01-07T09:00:00")
    assert body["nextCursor"] is not None  # the demo's own history follows
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "patient_profile")
    assert entry.patient_id == _alice(people)


def test_the_access_log_is_the_patients_own(api: People, people: Demo) -> None:
    _chen_books_for_alice(api, people)

    # Bob's log says nothing of what was done to alice's record.
    entries = _ok(api("bob").get("/me/access-log?limit=100"))["items"]
    assert not [e for e in entries if e["occurredAt"].startswith("2030-01-07")]


@pytest.mark.parametrize("name", ["dr_chen", "admin"])
def test_staff_have_no_access_log_of_their_own(api: People, name: str) -> None:
    _refused(api(name).get("/me/access-log"), 403)


def test_a_bad_access_log_cursor_is_a_422(api: People) -> None:
    body = _refused(api("alice").get("/me/access-log?cursor=bm90LWEtY3Vyc29y"), 422)

    assert "cursor" in body["errors"]
