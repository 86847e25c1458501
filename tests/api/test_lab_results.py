"""A patient's lab results through the API: the list (newest visible version of each, filters,
pages, one query per page), one result with the history the caller may see, a new result and
a correction. Patients never see provider-only, preliminary or held results; an unassigned
provider gets 404; a role that may never gets 403."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import AuditAction
from portal.services import paging
from tests.api.conftest import problem
from tests.conftest import Demo, count_queries
from tests.web.audit_support import entries_for

RESULT_FIELDS = {
    "id",
    "collectedAt",
    "createdAt",
    "updatedAt",
    "patientId",
    "testCode",
    "testName",
    "category",
    "status",
    "resultValue",
    "units",
    "referenceRange",
    "flag",
    "visibility",
    "publishedAt",
    "version",
    "orderedBy",
}
# Alice's demo results that she never sees: provider-only creatinine, a preliminary glucose,
# a genetic test held for review.
CARE_TEAM_ONLY = {"2160-0", "2345-7", "21636-6"}
POTASSIUM = "2823-3"  # published 6.8, then corrected to 4.2 with a reason
TSH = "3016-3"
CREATININE = "2160-0"


def _pid(people: Demo, name: str = "alice") -> int:
    return people.user(name).patient.id  # type: ignore[union-attr]


def _items(response) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.json["items"]  # type: ignore[no-any-return]


def _result_id(api, people: Demo, code: str) -> int:  # type: ignore[no-untyped-def]
    """Alice's result of test `code`, found as her provider."""
    (item,) = _items(api("dr_chen").get(f"/patients/{_pid(people)}/lab-results?testCode={code}"))
    return int(item["id"])


def _new_result(api, people: Demo, **fields: Any):  # type: ignore[no-untyped-def]
    body = {
        "testCode": "2345-7",
        "testName": "Glucose",
        "resultValue": "131",
        "status": "final",
        "visibility": "shared",
        **fields,
    }
    return api("dr_chen").post(f"/patients/{_pid(people)}/lab-results", json=body)


def _correct(  # type: ignore[no-untyped-def]
    api, result_id: int, name: str = "dr_chen", headers: dict[str, str] | None = None, **fields: Any
):
    body = {"resultValue": "3.3", "status": "corrected", "reason": "Recalibrated", **fields}
    return api(name).post(f"/lab-results/{result_id}/versions", json=body, headers=headers or {})


# --- GET /patients/{id}/lab-results ---


def test_a_patient_sees_the_latest_shared_version_of_each_result_newest_sample_first(
    api, people: Demo
) -> None:
    items = _items(api("alice").get(f"/patients/{_pid(people)}/lab-results?limit=100"))
    assert items
    assert all(set(i) == RESULT_FIELDS for i in items)
    assert {i["patientId"] for i in items} == {_pid(people)}
    assert not CARE_TEAM_ONLY & {i["testCode"] for i in items}
    assert {i["visibility"] for i in items} == {"shared"}
    collected = [i["collectedAt"] for i in items]
    assert collected == sorted(collected, reverse=True)
    (potassium,) = [i for i in items if i["testCode"] == POTASSIUM]
    assert (potassium["version"], potassium["resultValue"]) == (2, "4.2")
    assert potassium["status"] == "corrected"
    assert potassium["flag"] == "normal"
    assert potassium["orderedBy"] == people.user("dr_chen").id
    assert potassium["publishedAt"].endswith("Z")


def test_the_provider_also_sees_provider_only_and_preliminary_results(api, people: Demo) -> None:
    items = _items(api("dr_chen").get(f"/patients/{_pid(people)}/lab-results?limit=100"))
    assert {i["patientId"] for i in items} == {_pid(people)}
    by_code = {i["testCode"]: i for i in items}
    assert by_code.keys() >= CARE_TEAM_ONLY
    assert by_code[CREATININE]["visibility"] == "provider_only"
    assert by_code["2345-7"]["status"] == "preliminary"
    assert by_code["2345-7"]["publishedAt"] is None


@pytest.mark.parametrize(
    ("name", "query", "codes"),
    [
        ("alice", "status=corrected", {POTASSIUM}),
        ("alice", "status=preliminary", set()),
        ("dr_chen", "status=preliminary", {"2345-7"}),
        ("alice", "testCode=4548-4", {"4548-4"}),
        ("alice", "testCode=4548-4&status=corrected", set()),
    ],
)
def test_status_and_test_code_filter_the_list(
    api, people: Demo, name: str, query: str, codes: set[str]
) -> None:
    items = _items(api(name).get(f"/patients/{_pid(people)}/lab-results?{query}&limit=100"))
    assert {i["testCode"] for i in items} == codes
    if query.startswith("testCode=4548-4") and codes:
        assert len(items) == 4  # one a visit, four visits


def test_pages_walk_the_whole_list_once(api, people: Demo) -> None:
    client, path = api("alice"), f"/patients/{_pid(people)}/lab-results"
    everything = [i["id"] for i in _items(client.get(f"{path}?limit=100"))]
    seen: list[int] = []
    cursor = None
    while True:
        body = client.get(f"{path}?limit=7" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [i["id"] for i in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == everything


def test_one_query_per_page_whatever_its_size(app: Flask, api, people: Demo) -> None:
    client, path = api("dr_chen"), f"/patients/{_pid(people)}/lab-results"
    _items(client.get(f"{path}?limit=1"))  # the token's first use (it is touched) is behind us
    reads, totals = [], []
    for limit in (3, 25):
        with count_queries(app) as statements:
            assert len(_items(client.get(f"{path}?limit={limit}"))) == limit
        reads.append([s for s in statements if re.search(r"\blab_result\b", s)])
        totals.append(len(statements))
    # The page carries its total: one read of results, and nothing more for more rows.
    assert [len(r) for r in reads] == [1, 1], reads
    assert totals[0] == totals[1]


@pytest.mark.parametrize("name", ["dr_okafor", "bob"])
def test_someone_elses_patient_is_a_404(api, people: Demo, name: str) -> None:
    problem(api(name).get(f"/patients/{_pid(people)}/lab-results"), 404)


def test_a_patient_without_results_is_an_empty_list_not_a_404(
    api, session: Session, people: Demo
) -> None:
    from portal.services import accounts

    admin = people.actor("admin")
    patient = accounts.register_patient(
        session, admin, medical_record_number="MRN-T-0900", display_name="New Patient"
    )
    accounts.assign_provider(
        session, admin, patient_id=patient.id, provider_id=people.actor("dr_chen").provider_id
    )
    session.commit()
    response = api("dr_chen").get(f"/patients/{patient.id}/lab-results")
    assert response.json == {"items": [], "nextCursor": None}
    # Finding out the patient is theirs does not make the entry about the patient's profile.
    (entry,) = entries_for(session, response)
    assert (entry.entity_type, entry.patient_id) == ("lab_result_list", patient.id)


def test_an_admin_may_never_read_results(api, people: Demo) -> None:
    problem(api("admin").get(f"/patients/{_pid(people)}/lab-results"), 403)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=pending", "query.status"),
        ("flag=high", "query.flag"),
        ("limit=101", "query.limit"),
        ("cursor=not-a-cursor", "cursor"),
        (f"cursor={paging.encode('patients', ['Alice Martin', 1])}", "cursor"),
        (f"cursor={paging.encode('lab_results', ['2026-01-01', 1, 2])}", "cursor"),
    ],
)
def test_bad_query_input_is_a_422_with_the_field(api, people: Demo, query: str, field: str) -> None:
    body = problem(api("alice").get(f"/patients/{_pid(people)}/lab-results?{query}"), 422)
    assert field in body["errors"], body


def test_the_list_is_recorded_once_against_the_patient(api, session: Session, people: Demo) -> None:
    response = api("dr_chen").get(f"/patients/{_pid(people)}/lab-results")
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "lab_result_list")
    assert entry.patient_id == _pid(people)
    assert json.loads(entry.detail)["via"] == "token"


# --- GET /lab-results/{id} ---


def test_a_corrected_result_shows_every_version_with_its_reason(api, people: Demo) -> None:
    result_id = _result_id(api, people, POTASSIUM)
    body = api("alice").get(f"/lab-results/{result_id}").json
    assert (body["version"], body["resultValue"]) == (2, "4.2")
    assert [v["version"] for v in body["versions"]] == [2, 1]
    latest, first = body["versions"]
    assert first["resultValue"] == "6.8"
    assert first["flag"] == "critical_high"
    assert "haemolysed" in latest["reason"]
    assert latest["publishedBy"] == people.user("dr_chen").id
    assert latest["publishedAt"].endswith("Z")


@pytest.mark.parametrize(("name", "status"), [("dr_okafor", 404), ("bob", 404), ("admin", 403)])
def test_someone_elses_result_is_refused(api, people: Demo, name: str, status: int) -> None:
    problem(api(name).get(f"/lab-results/{_result_id(api, people, TSH)}"), status)


def test_a_patient_gets_a_404_for_their_own_provider_only_result(api, people: Demo) -> None:
    problem(api("alice").get(f"/lab-results/{_result_id(api, people, CREATININE)}"), 404)


def test_reading_a_result_is_recorded_once(api, session: Session, people: Demo) -> None:
    result_id = _result_id(api, people, TSH)
    response = api("alice").get(f"/lab-results/{result_id}")
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "lab_result")
    assert (entry.entity_id, entry.patient_id) == (str(result_id), _pid(people))
    assert json.loads(entry.detail)["via"] == "token"


# --- POST /patients/{id}/lab-results ---


def test_a_provider_publishes_a_result_the_patient_then_sees(api, people: Demo) -> None:
    response = _new_result(api, people)
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    created = response.json
    assert set(created) == RESULT_FIELDS
    # Blank units and range take the catalog's; the flag follows from them.
    assert (created["units"], created["referenceRange"]) == ("mg/dL", "70-99")
    assert (created["flag"], created["status"], created["version"]) == ("high", "final", 1)
    assert created["category"] == "chemistry"
    assert created["orderedBy"] == people.user("dr_chen").id
    mine = _items(api("alice").get(f"/patients/{_pid(people)}/lab-results?limit=1"))
    assert mine[0]["id"] == created["id"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"resultValue": "36893488147419103232"}, "resultValue"),
        ({"referenceRange": "0-" + "9" * 70}, "referenceRange"),
    ],
)
def test_a_number_too_large_to_be_a_result_is_a_422_on_its_field(
    api, people: Demo, fields: dict[str, str], field: str
) -> None:
    response = _new_result(api, people, **fields)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert list(response.json["errors"]) == [field]


def test_collected_at_is_kept_and_orders_the_list_while_units_stay_ucum(api, people: Demo) -> None:
    taken = (utcnow() - timedelta(days=400)).replace(microsecond=0)
    stamp = taken.isoformat().replace("+00:00", "Z")
    response = _new_result(api, people, testCode="6690-2", testName="WBC", collectedAt=stamp)
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    assert response.json["collectedAt"] == stamp
    assert response.json["units"] == "10*3/uL"  # the code; pages write 10³/µL
    # Published just now, but its sample is 400 days old: not at the top of the list.
    newest = _items(api("alice").get(f"/patients/{_pid(people)}/lab-results?limit=1"))
    assert newest[0]["id"] != response.json["id"]


@pytest.mark.parametrize(
    "when", [timedelta(hours=1), None], ids=["in the future", "without a time zone"]
)
def test_a_collection_time_in_the_future_or_without_zone_is_a_422(
    api, people: Demo, when: timedelta | None
) -> None:
    stamp = (utcnow() + when).isoformat().replace("+00:00", "Z") if when else "2026-01-31T09:00:00"
    body = problem(_new_result(api, people, collectedAt=stamp), 422)
    assert any(key.endswith("collectedAt") for key in body["errors"]), body


def test_a_retried_create_with_the_same_key_makes_one_result(api, people: Demo) -> None:
    headers = {"Idempotency-Key": "glucose-2026-01-31"}
    client, path = api("dr_chen"), f"/patients/{_pid(people)}/lab-results"
    body = {"testCode": "2345-7", "testName": "Glucose", "resultValue": "88", "status": "final"}
    one = client.post(path, json=body, headers=headers)
    two = client.post(path, json=body, headers=headers)
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.headers.get("Idempotent-Replayed") == "true"
    assert one.json == two.json
    glucose = _items(client.get(f"{path}?testCode=2345-7&limit=100"))
    assert [i["id"] for i in glucose].count(one.json["id"]) == 1
    assert len(glucose) == 2  # the demo's preliminary one, and this one


def test_a_patient_may_never_create_a_result(api, people: Demo) -> None:
    body = {"testCode": "2345-7", "testName": "Glucose", "resultValue": "5", "status": "final"}
    problem(api("alice").post(f"/patients/{_pid(people)}/lab-results", json=body), 403)


def test_an_unassigned_provider_gets_a_404(api, people: Demo) -> None:
    body = {"testCode": "2345-7", "testName": "Glucose", "resultValue": "5", "status": "final"}
    problem(api("dr_okafor").post(f"/patients/{_pid(people)}/lab-results", json=body), 404)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "corrected"}, "body.status"),
        ({"visibility": "everyone"}, "body.visibility"),
        ({"flag": "high"}, "body.flag"),
        ({"testName": "   "}, "testName"),
        ({"resultValue": ""}, "resultValue"),
    ],
)
def test_bad_input_to_create_is_a_422_with_the_field(
    api, people: Demo, fields: dict[str, Any], field: str
) -> None:
    body = problem(_new_result(api, people, **fields), 422)
    assert field in body["errors"], body


# --- POST /lab-results/{id}/versions ---


def test_a_correction_keeps_the_earlier_value_readable(api, people: Demo) -> None:
    result_id = _result_id(api, people, TSH)
    response = _correct(api, result_id, units="mIU/L", referenceRange="0.4-4.0")
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    assert (response.json["version"], response.json["resultValue"]) == (2, "3.3")
    seen = api("alice").get(f"/lab-results/{result_id}").json
    assert [(v["version"], v["resultValue"]) for v in seen["versions"]] == [(2, "3.3"), (1, "2.1")]
    assert seen["versions"][0]["reason"] == "Recalibrated"
    assert seen["versions"][0]["status"] == "corrected"


def test_a_correction_without_visibility_keeps_a_provider_only_result_from_the_patient(
    api, people: Demo
) -> None:
    result_id = _result_id(api, people, CREATININE)
    response = _correct(api, result_id, resultValue="1.0", status="amended")
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    assert response.json["visibility"] == "provider_only"
    problem(api("alice").get(f"/lab-results/{result_id}"), 404)


def test_a_retried_correction_with_the_same_key_adds_one_version(api, people: Demo) -> None:
    result_id = _result_id(api, people, TSH)
    headers = {"Idempotency-Key": "tsh-fix-1"}
    one = _correct(api, result_id, headers=headers)
    two = _correct(api, result_id, headers=headers)
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.headers.get("Idempotent-Replayed") == "true"
    history = api("dr_chen").get(f"/lab-results/{result_id}").json["versions"]
    assert [v["version"] for v in history] == [2, 1]


@pytest.mark.parametrize(("name", "status"), [("alice", 403), ("dr_okafor", 404)])
def test_only_an_assigned_provider_corrects(api, people: Demo, name: str, status: int) -> None:
    problem(_correct(api, _result_id(api, people, TSH), name=name), status)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "final"}, "status"),  # finalising is for a preliminary result only
        ({"status": "preliminary"}, "body.status"),
        ({"reason": ""}, "reason"),  # a published result's change says why (the service's)
        ({"resultValue": " "}, "resultValue"),
        ({"visibility": "public"}, "body.visibility"),
        ({"testName": "TSH"}, "body.testName"),
    ],
)
def test_bad_input_to_a_correction_is_a_422_with_the_field(
    api, people: Demo, fields: dict[str, Any], field: str
) -> None:
    body = problem(_correct(api, _result_id(api, people, TSH), **fields), 422)
    assert field in body["errors"], body
