"""Treatment plans through the API: the list (drafts hidden from patients, filters, pages, 404
before anything for someone else's patient, one audit entry), a new draft (idempotent), and
the lifecycle steps with the services' refusals (403 by role, 404 by scope, 422 by state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import (
    AuditAction,
    AuditOutcome,
    PlanAcknowledgement,
    PlanStatus,
    TreatmentPlan,
)
from tests.api.conftest import Api
from tests.conftest import Demo
from tests.web.audit_support import entries_for

ApiFor = Callable[[str], Api]

PLAN_FIELDS = {
    "id",
    "patientId",
    "status",
    "summary",
    "details",
    "startDate",
    "endDate",
    "version",
    "createdBy",
    "activatedAt",
    "completedAt",
    "createdAt",
    "updatedAt",
    "approvedBy",
    "acknowledgedAt",
}


def _alice(people: Demo) -> int:
    return int(people.user("alice").patient.id)


def _plans_of(session: Session, patient_id: int) -> dict[int, TreatmentPlan]:
    session.expire_all()
    stmt = select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
    return {p.id: p for p in session.scalars(unscoped(stmt, "test: every plan of a patient"))}


def _one(session: Session, patient_id: int, status: PlanStatus) -> int:
    return next(p.id for p in _plans_of(session, patient_id).values() if p.status is status)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    return body


def _items(api: Api, path: str) -> list[dict[str, Any]]:
    response = api.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert set(response.json) == {"items", "nextCursor"}
    items: list[dict[str, Any]] = response.json["items"]
    return items


# --- GET /patients/{id}/treatment-plans ----------------------------------------------------------


def test_a_patient_lists_their_plans_with_the_current_versions_content(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    items = _items(api("alice"), f"/patients/{alice}/treatment-plans")
    stored = _plans_of(session, alice)
    active = next(i for i in items if i["status"] == "active")
    assert set(active) == PLAN_FIELDS
    plan = stored[active["id"]]
    assert active["patientId"] == alice
    assert active["version"] == plan.current_version > 1  # revised after activation (demo)
    assert active["createdBy"] == people.user("dr_chen").id
    assert active["summary"] == plan.summary
    assert active["details"]  # from the current version, not the plan row
    assert active["activatedAt"].endswith("Z")
    assert active["completedAt"] is None
    assert {i["status"] for i in items} == {"active", "completed"}


def test_a_patient_never_sees_a_draft_even_when_asking_for_drafts(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    draft = _one(session, alice, PlanStatus.DRAFT)
    everything = _items(api("alice"), f"/patients/{alice}/treatment-plans?limit=100")
    assert draft not in {i["id"] for i in everything}
    assert _items(api("alice"), f"/patients/{alice}/treatment-plans?status=draft") == []


def test_the_assigned_provider_sees_drafts_and_filters_by_status(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    stored = _plans_of(session, alice)
    chen = api("dr_chen")
    everything = _items(chen, f"/patients/{alice}/treatment-plans?limit=100")
    assert {i["id"] for i in everything} == set(stored)
    for status in PlanStatus:
        items = _items(chen, f"/patients/{alice}/treatment-plans?status={status.value}")
        expected = {i for i, p in stored.items() if p.status is status}
        assert {i["id"] for i in items} == expected
        assert expected, f"the demo has a {status} plan for alice"


def test_pages_follow_the_cursor_without_repeats_or_gaps(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    chen = api("dr_chen")
    seen: list[int] = []
    path = f"/patients/{alice}/treatment-plans?limit=1"
    cursor: str | None = None
    for _ in range(10):
        response = chen.get(path + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200
        assert len(response.json["items"]) <= 1
        seen += [i["id"] for i in response.json["items"]]
        cursor = response.json["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(_plans_of(session, alice))
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("name", ["dr_okafor", "bob"])
def test_someone_elses_patient_is_a_404(api: ApiFor, people: Demo, name: str) -> None:
    response = api(name).get(f"/patients/{_alice(people)}/treatment-plans")
    _problem(response, 404)


def test_an_admin_never_reads_plans(api: ApiFor, people: Demo) -> None:
    _problem(api("admin").get(f"/patients/{_alice(people)}/treatment-plans"), 403)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=archived", "query.status"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "query.limit"),
        ("limit=101", "query.limit"),
        ("colour=blue", "query.colour"),
    ],
)
def test_bad_query_input_is_a_422_naming_the_field(
    api: ApiFor, people: Demo, query: str, field: str
) -> None:
    response = api("alice").get(f"/patients/{_alice(people)}/treatment-plans?{query}")
    assert field in _problem(response, 422)["errors"]


def test_a_cursor_of_another_list_is_refused(api: ApiFor, people: Demo) -> None:
    alice = _alice(people)
    first = api("dr_chen").get(f"/patients/{alice}/treatment-plans?limit=1")
    cursor = first.json["nextCursor"] or ""
    assert cursor
    completed = f"/patients/{alice}/treatment-plans?status=completed&cursor={cursor}"
    _problem(api("dr_chen").get(completed), 422)


def test_the_list_is_recorded_once_as_a_read_of_that_patients_plans(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    response = api("dr_chen").get(f"/patients/{alice}/treatment-plans")
    assert response.status_code == 200
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.VIEW
    assert entry.entity_type == "treatment_plan_list"
    assert entry.patient_id == alice
    assert entry.actor_id == people.user("dr_chen").id
    assert '"via":"token"' in entry.detail


def test_a_refused_list_is_recorded_as_denied(api: ApiFor, session: Session, people: Demo) -> None:
    response = api("dr_okafor").get(f"/patients/{_alice(people)}/treatment-plans")
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.ACCESS_DENIED
    assert entry.outcome is AuditOutcome.DENIED


# --- POST /patients/{id}/treatment-plans ---------------------------------------------------------

DRAFT = {
    "summary": "Blood pressure: lifestyle first",
    "details": "Walk 30 minutes a day.",
    "startDate": "2026-02-01",
    "endDate": "2026-03-15",
}


def test_the_provider_writes_a_draft_the_patient_cannot_see(
    api: ApiFor, people: Demo, session: Session
) -> None:
    alice = _alice(people)
    response = api("dr_chen").post(f"/patients/{alice}/treatment-plans", json=DRAFT)
    assert response.status_code == 201, response.get_data(as_text=True)
    plan = response.json
    assert set(plan) == PLAN_FIELDS
    assert (plan["status"], plan["version"], plan["patientId"]) == ("draft", 1, alice)
    assert plan["details"] == DRAFT["details"]
    assert plan["startDate"] == "2026-02-01"
    assert plan["createdBy"] == people.user("dr_chen").id
    assert _plans_of(session, alice)[plan["id"]].status is PlanStatus.DRAFT
    seen_by_alice = _items(api("alice"), f"/patients/{alice}/treatment-plans?limit=100")
    assert plan["id"] not in {i["id"] for i in seen_by_alice}


def test_a_draft_posted_twice_with_one_key_is_written_once(
    api: ApiFor, people: Demo, session: Session
) -> None:
    alice = _alice(people)
    before = len(_plans_of(session, alice))
    key = {"Idempotency-Key": "plan-retry-1"}
    first = api("dr_chen").post(f"/patients/{alice}/treatment-plans", json=DRAFT, headers=key)
    again = api("dr_chen").post(f"/patients/{alice}/treatment-plans", json=DRAFT, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(_plans_of(session, alice)) == before + 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"summary": "   "}, "summary"),
        ({"endDate": "2026-01-01"}, "endDate"),
        ({"startDate": "2026-02-30"}, "body.startDate"),
        ({"summary": "x" * 301}, "body.summary"),
        ({"colour": "blue"}, "body.colour"),
    ],
)
def test_a_draft_with_bad_input_is_a_422_naming_the_field(
    api: ApiFor, people: Demo, change: dict[str, str], field: str
) -> None:
    response = api("dr_chen").post(
        f"/patients/{_alice(people)}/treatment-plans", json={**DRAFT, **change}
    )
    assert field in _problem(response, 422)["errors"]


def test_only_the_assigned_provider_writes_a_draft(api: ApiFor, people: Demo) -> None:
    path = f"/patients/{_alice(people)}/treatment-plans"
    _problem(api("alice").post(path, json=DRAFT), 403)
    _problem(api("dr_okafor").post(path, json=DRAFT), 404)


# --- Lifecycle ---------------------------------------------------------------------------------


def test_activating_a_draft_completes_the_active_plan_and_keeps_versions(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    draft = _one(session, alice, PlanStatus.DRAFT)
    was_active = _one(session, alice, PlanStatus.ACTIVE)
    response = api("dr_chen").post(f"/treatment-plans/{draft}/activate")
    assert response.status_code == 200, response.get_data(as_text=True)
    plan = response.json
    assert (plan["id"], plan["status"], plan["version"]) == (draft, "active", 2)
    assert plan["activatedAt"] is not None
    # It says who approved it and what became of the other active plan.
    assert plan["approvedBy"] == people.user("dr_chen").id
    assert (plan["completedPlanIds"], plan["keptActivePlanIds"]) == ([was_active], [])
    assert plan["acknowledgedAt"] is None
    stored = _plans_of(session, alice)
    assert stored[was_active].status is PlanStatus.COMPLETED
    # Now the patient sees it, with the same content.
    seen = _items(api("alice"), f"/patients/{alice}/treatment-plans?status=active")
    assert [i["id"] for i in seen] == [draft]
    assert seen[0]["details"] == plan["details"]


def test_the_caller_may_keep_the_other_active_plans_when_activating(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    draft = _one(session, alice, PlanStatus.DRAFT)
    was_active = _one(session, alice, PlanStatus.ACTIVE)
    response = api("dr_chen").post(
        f"/treatment-plans/{draft}/activate", json={"otherActivePlans": "keep"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (response.json["completedPlanIds"], response.json["keptActivePlanIds"]) == (
        [],
        [was_active],
    )
    stored = _plans_of(session, alice)
    assert stored[was_active].status is PlanStatus.ACTIVE
    assert stored[draft].status is PlanStatus.ACTIVE
    bad = api("dr_chen").post(
        f"/treatment-plans/{was_active}/activate", json={"otherActivePlans": "archive"}
    )
    assert "body.otherActivePlans" in _problem(bad, 422)["errors"]


def test_the_provider_reads_whether_the_patient_acknowledged_the_current_version(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    active = _one(session, alice, PlanStatus.ACTIVE)
    before = _items(api("dr_chen"), f"/patients/{alice}/treatment-plans?status=active")
    assert [p["acknowledgedAt"] for p in before if p["id"] == active] == [None]
    assert api("alice").post(f"/treatment-plans/{active}/acknowledge").status_code == 200
    after = _items(api("dr_chen"), f"/patients/{alice}/treatment-plans?status=active")
    (plan,) = [p for p in after if p["id"] == active]
    assert plan["acknowledgedAt"] is not None
    assert plan["approvedBy"] is not None


def test_a_step_the_plans_state_does_not_allow_is_a_422(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    active = _one(session, alice, PlanStatus.ACTIVE)
    completed = _one(session, alice, PlanStatus.COMPLETED)
    chen = api("dr_chen")
    assert "status" in _problem(chen.post(f"/treatment-plans/{active}/activate"), 422)["errors"]
    assert "status" in _problem(chen.post(f"/treatment-plans/{completed}/complete"), 422)["errors"]
    assert _plans_of(session, alice)[active].status is PlanStatus.ACTIVE


def test_completing_the_active_plan(api: ApiFor, session: Session, people: Demo) -> None:
    active = _one(session, _alice(people), PlanStatus.ACTIVE)
    response = api("dr_chen").post(f"/treatment-plans/{active}/complete")
    assert response.status_code == 200
    assert response.json["status"] == "completed"
    assert response.json["completedAt"]


def test_a_patient_may_never_activate_or_complete(
    api: ApiFor, session: Session, people: Demo
) -> None:
    active = _one(session, _alice(people), PlanStatus.ACTIVE)
    _problem(api("alice").post(f"/treatment-plans/{active}/complete"), 403)
    _problem(api("alice").post(f"/treatment-plans/{active}/activate"), 403)


def test_another_provider_cannot_reach_the_plan(
    api: ApiFor, session: Session, people: Demo
) -> None:
    draft = _one(session, _alice(people), PlanStatus.DRAFT)
    _problem(api("dr_okafor").post(f"/treatment-plans/{draft}/activate"), 404)


def _acknowledgements(session: Session, patient_id: int) -> int:
    stmt = select(func.count(PlanAcknowledgement.id)).where(
        PlanAcknowledgement.patient_id == patient_id
    )
    return int(session.scalar(unscoped(stmt, "test: counting acknowledgements")) or 0)


def test_the_patient_acknowledges_the_active_version_once(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    active = _one(session, alice, PlanStatus.ACTIVE)
    before = _acknowledgements(session, alice)
    first = api("alice").post(f"/treatment-plans/{active}/acknowledge")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert (first.json["id"], first.json["status"]) == (active, "active")
    again = api("alice").post(f"/treatment-plans/{active}/acknowledge")
    assert again.status_code == 200
    # The demo's current version was not yet acknowledged: one new acknowledgement, not two.
    assert _acknowledgements(session, alice) == before + 1


def test_only_the_patient_acknowledges_and_only_an_active_plan(
    api: ApiFor, session: Session, people: Demo
) -> None:
    alice = _alice(people)
    active = _one(session, alice, PlanStatus.ACTIVE)
    completed = _one(session, alice, PlanStatus.COMPLETED)
    draft = _one(session, alice, PlanStatus.DRAFT)
    _problem(api("dr_chen").post(f"/treatment-plans/{active}/acknowledge"), 403)
    _problem(api("bob").post(f"/treatment-plans/{active}/acknowledge"), 404)
    _problem(api("alice").post(f"/treatment-plans/{draft}/acknowledge"), 404)
    _problem(api("alice").post(f"/treatment-plans/{completed}/acknowledge"), 422)
