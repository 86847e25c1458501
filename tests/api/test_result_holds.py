"""Release rules that follow the information-blocking rule (issue 25; 45 CFR 171): a result
reaches the patient when published; a patient may choose to wait for their clinician; a
clinician may hold one result for one patient, naming themself and recording the harm it
prevents, until a set end, audited and shown to the patient; category rules only when the
clinic turns them on, on a page that says what they mean."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import set_clock, utcnow
from portal.models import AuditEvent, Entity, LabResult, PatientProfile, ReleasePreference
from portal.services import labs
from portal.transactions import unit_of_work
from tests.api.conftest import problem
from tests.conftest import Demo, login

BRCA = {
    "testCode": "21636-6",  # the catalog's "genetic" category, which the demo's rules hold
    "testName": "BRCA1 gene mutations",
    "resultValue": "No pathogenic variant detected",
    "status": "final",
}
REASON = "A genetic result is explained in person first: the visit is on Friday."


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _pid(people: Demo) -> int:
    return people.user("alice").patient.id


def _publish(api: Any, people: Demo, **extra: Any) -> Any:
    return api("dr_chen").post(f"/patients/{_pid(people)}/lab-results", json={**BRCA, **extra})


def _pinned() -> datetime:
    start = utcnow().replace(microsecond=0)
    set_clock(lambda: start)
    return start


def _patient_page(client: FlaskClient) -> str:
    login(client, "alice@example.org")
    return client.get("/my/lab-results").get_data(as_text=True)


def test_by_default_a_result_reaches_the_patient_when_published(api, people: Demo) -> None:
    # The demo clinic has a "genetic: held for review" rule, but category rules are off.
    _pinned()
    made = _publish(api, people)
    assert made.status_code == 201, made.json
    seen = api("alice").get(f"/lab-results/{made.json['id']}")
    assert seen.status_code == 200
    assert seen.json["versions"][0]["releasedAt"] is not None


def test_the_category_rules_apply_only_when_the_clinic_turns_them_on(
    api, people: Demo, category_rules: None
) -> None:
    made = _publish(api, people)
    assert made.status_code == 201
    problem(api("alice").get(f"/lab-results/{made.json['id']}"), 404)


def test_the_admin_page_says_what_the_category_rules_mean(as_user) -> None:
    page = as_user("admin").get("/admin/release-policy").get_data(as_text=True)
    assert "45 CFR 171" in page
    assert "The category rules are off" in page
    assert 'type="checkbox"' in page
    assert "Apply the category rules" in page


def test_the_patients_own_choice_to_wait_for_their_clinician_stays(
    api, people: Demo, session: Session
) -> None:
    profile = session.get(PatientProfile, _pid(people))
    assert profile is not None
    profile.release_preference = ReleasePreference.AFTER_REVIEW
    session.commit()
    made = _publish(api, people)
    problem(api("alice").get(f"/lab-results/{made.json['id']}"), 404)
    released = api("dr_chen").post(f"/lab-results/{made.json['id']}/release")
    assert released.status_code == 200, released.json
    assert api("alice").get(f"/lab-results/{made.json['id']}").status_code == 200


@pytest.mark.parametrize(
    ("hold", "field"),
    [
        ({"until": "2099-01-01T00:00:00Z"}, "holdReason"),
        ({"reason": "   ", "until": "2099-01-01T00:00:00Z"}, "holdReason"),
        ({"reason": REASON}, "heldUntil"),
        ({"reason": REASON, "until": "2001-01-01T00:00:00Z"}, "heldUntil"),  # past
        ({"reason": REASON, "until": "2099-01-01T00:00:00Z"}, "heldUntil"),  # > 30 days
    ],
)
def test_a_hold_without_a_reason_or_a_near_end_is_refused_and_nothing_is_written(
    api, people: Demo, session: Session, hold: dict[str, str], field: str
) -> None:
    _pinned()
    before = session.scalar(
        unscoped(select(LabResult.id).order_by(LabResult.id.desc()).limit(1), "test: newest")
    )
    body = problem(_publish(api, people, hold=hold), 422)
    assert field in body["errors"], body
    after = session.scalar(
        unscoped(select(LabResult.id).order_by(LabResult.id.desc()).limit(1), "test: newest")
    )
    assert after == before


def test_a_held_result_names_its_clinician_and_end_to_the_patient_and_is_audited(
    api, people: Demo, session: Session, client: FlaskClient
) -> None:
    start = _pinned()
    until = start + timedelta(days=4)
    made = _publish(api, people, hold={"reason": REASON, "until": _z(until)})
    assert made.status_code == 201, made.json
    result_id = made.json["id"]
    problem(api("alice").get(f"/lab-results/{result_id}"), 404)
    # The care team reads who, why and until when.
    hold = api("dr_chen").get(f"/lab-results/{result_id}").json["hold"]
    assert hold == {
        "heldBy": people.user("dr_chen").id,
        "reason": REASON,
        "until": _z(until),
        "active": True,
    }
    # The patient reads who holds it and until when, never the value or the reason.
    page = _patient_page(client)
    line = next(p for p in page.split("<p ") if "BRCA1 gene mutations</strong>" in p and "Mei" in p)
    assert "held by your clinician, Dr Mei Chen, until" in line
    assert f"{until.day} " in line
    assert str(until.year) in line
    assert "No pathogenic" not in page
    assert "Friday" not in page
    # The hold is in the audit trail: who placed it and its end (the reason stays on the row).
    entries = session.scalars(
        unscoped(
            select(AuditEvent).where(
                AuditEvent.entity_type == Entity.LAB_RESULT,
                AuditEvent.entity_id == str(result_id),
            ),
            "test: audit",
        )
    ).all()
    (placed,) = [e for e in entries if json.loads(e.detail).get("hold") == "placed"]
    assert placed.actor_id == people.user("dr_chen").id
    assert json.loads(placed.detail)["held_until"] == until.isoformat()
    assert REASON not in placed.detail


def test_an_expired_hold_releases_the_result_with_no_further_step(
    api, people: Demo, client: FlaskClient
) -> None:
    start = _pinned()
    until = start + timedelta(days=2)
    made = _publish(api, people, hold={"reason": REASON, "until": _z(until)})
    result_id = made.json["id"]
    set_clock(lambda: until - timedelta(minutes=1))
    with unit_of_work() as s:
        assert labs.release_due(s) == 0
    problem(api("alice").get(f"/lab-results/{result_id}"), 404)
    set_clock(lambda: until + timedelta(minutes=1))
    with unit_of_work() as s:
        assert labs.release_due(s) >= 1
    seen = api("alice").get(f"/lab-results/{result_id}")
    assert seen.status_code == 200
    assert seen.json["resultValue"] == BRCA["resultValue"]
    assert api("dr_chen").get(f"/lab-results/{result_id}").json["hold"]["active"] is False


def test_a_clinician_holds_a_preliminary_result_before_finalising_it(api, people: Demo) -> None:
    start = _pinned()
    made = _publish(api, people, status="preliminary")
    result_id = made.json["id"]
    held = api("dr_chen").post(
        f"/lab-results/{result_id}/hold",
        json={"reason": REASON, "until": _z(start + timedelta(days=1))},
    )
    assert held.status_code == 200, held.json
    final = api("dr_chen").post(
        f"/lab-results/{result_id}/versions", json={"resultValue": "Negative", "status": "final"}
    )
    assert final.status_code == 201, final.json
    assert final.json["versions"][0]["releaseDueAt"] == _z(start + timedelta(days=1))
    problem(api("alice").get(f"/lab-results/{result_id}"), 404)
    # Once the patient has seen a result, no hold can be placed on it.
    seen = _publish(api, people)
    late = api("dr_chen").post(
        f"/lab-results/{seen.json['id']}/hold",
        json={"reason": REASON, "until": _z(start + timedelta(days=1))},
    )
    assert "holdReason" in problem(late, 422)["errors"]
    # Only an assigned provider holds a result.
    problem(api("alice").post(f"/lab-results/{result_id}/hold", json={"reason": REASON}), 403)
    problem(
        api("dr_okafor").post(
            f"/lab-results/{result_id}/hold",
            json={"reason": REASON, "until": _z(start + timedelta(days=1))},
        ),
        404,
    )
