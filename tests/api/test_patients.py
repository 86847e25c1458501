"""GET /patients and GET /patients/{id}: the roster a provider (or an admin) may search, one
patient's profile for the patient, their providers and admins; 404 for anyone else."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from portal.models import AuditAction, AuditOutcome
from portal.services import paging
from tests.api.conftest import problem
from tests.conftest import Demo
from tests.web.audit_support import entries_for

PATIENT_FIELDS = {
    "id",
    "createdAt",
    "updatedAt",
    "medicalRecordNumber",
    "displayName",
    "dateOfBirth",
    "primaryClinic",
    "isActive",
    "userId",
}


def _names(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return [p["displayName"] for p in response.json["items"]]


# --- GET /patients ---


def test_a_provider_lists_their_assigned_patients_a_to_z(api) -> None:
    response = api("dr_chen").get("/patients")
    assert _names(response) == ["Alice Martin", "Bob Okonkwo", "Sam Martin"]
    body = response.json
    assert body["nextCursor"] is None
    assert set(body["items"][0]) == PATIENT_FIELDS
    assert body["items"][0]["medicalRecordNumber"] == "MRN-100001"
    assert body["items"][0]["dateOfBirth"] == "1984-03-12"
    assert body["items"][0]["createdAt"].endswith("Z")


def test_an_admin_lists_every_patient(api) -> None:
    names = _names(api("admin").get("/patients?limit=100"))
    assert {"Alice Martin", "Bob Okonkwo", "Carol Jensen", "Dan Haddad"} <= set(names)


@pytest.mark.parametrize(
    ("q", "expected"), [("MRN-100003", ["Carol Jensen"]), ("dan", ["Dan Haddad"])]
)
def test_q_searches_name_and_mrn(api, q: str, expected: list[str]) -> None:
    assert _names(api("admin").get(f"/patients?q={q}")) == expected


def test_a_providers_search_never_finds_someone_elses_patient(api) -> None:
    assert _names(api("dr_chen").get("/patients?q=carol")) == []
    assert _names(api("dr_okafor").get("/patients?q=MRN-100001")) == []


def test_pages_follow_the_cursor_without_repeating_anyone(api) -> None:
    client = api("dr_chen")
    first = client.get("/patients?limit=1").json
    assert [p["displayName"] for p in first["items"]] == ["Alice Martin"]
    assert first["nextCursor"]
    second = client.get(f"/patients?limit=1&cursor={first['nextCursor']}").json
    assert [p["displayName"] for p in second["items"]] == ["Bob Okonkwo"]
    third = client.get(f"/patients?limit=1&cursor={second['nextCursor']}").json
    assert [p["displayName"] for p in third["items"]] == ["Sam Martin"]
    assert third["nextCursor"] is None


def test_a_patient_may_never_list_patients(api) -> None:
    problem(api("alice").get("/patients"), 403)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"cursor={paging.encode('lab_results', ['Zed', 9])}", "cursor"),  # another list's
        (f"cursor={paging.encode('patients', ['Zed'])}", "cursor"),  # a key cut short
        ("cursor=forged", "cursor"),
        ("limit=0", "query.limit"),
        ("limit=%C2%B2", "query.limit"),
        ("sort=name", "query.sort"),
    ],
)
def test_bad_query_input_is_a_422_with_the_field(api, query: str, field: str) -> None:
    body = problem(api("dr_chen").get(f"/patients?{query}"), 422)
    assert field in body["errors"], body


def test_the_list_is_recorded_once_as_a_token_read(api, session: Session, people: Demo) -> None:
    response = api("dr_chen").get("/patients")
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.VIEW
    assert entry.entity_type == "patient_list"
    assert entry.actor_id == people.user("dr_chen").id
    assert json.loads(entry.detail)["via"] == "token"


# --- GET /patients/{id} ---


@pytest.mark.parametrize("name", ["alice", "dr_chen", "admin"])
def test_the_patient_their_provider_and_an_admin_read_the_profile(
    api, people: Demo, name: str
) -> None:
    alice = people.user("alice").patient
    response = api(name).get(f"/patients/{alice.id}")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert set(response.json) == PATIENT_FIELDS
    assert response.json["id"] == alice.id
    assert response.json["displayName"] == "Alice Martin"


@pytest.mark.parametrize("name", ["bob", "dr_okafor"])
def test_another_patient_or_an_unassigned_provider_gets_a_404(api, people: Demo, name: str) -> None:
    problem(api(name).get(f"/patients/{people.user('alice').patient.id}"), 404)


def test_an_id_no_row_can_have_is_a_404(api) -> None:
    problem(api("admin").get(f"/patients/{2**63}"), 404)
    problem(api("admin").get("/patients/0"), 404)


def test_reading_a_profile_is_recorded_against_that_patient(
    api, session: Session, people: Demo
) -> None:
    pid = people.user("alice").patient.id
    response = api("dr_chen").get(f"/patients/{pid}")
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "patient_profile")
    assert (entry.entity_id, entry.patient_id) == (str(pid), pid)
    assert json.loads(entry.detail)["via"] == "token"

    refused = api("dr_okafor").get(f"/patients/{pid}")
    (denied,) = entries_for(session, refused)
    assert denied.action is AuditAction.ACCESS_DENIED
    assert denied.outcome is AuditOutcome.DENIED
