"""Seed fidelity (issue 25, item 5): a message is `delivered` when it reaches its recipient
(their next page here; their socket in tests/integration), the audit entry carries the seed's
`summary`, the seed's "patient-only" visibility is refused with the reason documented, and
numbers written like `1e3` are read and flagged."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from portal.services import labs, messaging
from tests.api.conftest import problem
from tests.conftest import Demo, login


def _status(api: Any, thread: int, message_id: int) -> str:
    items = api("dr_chen").get(f"/conversations/{thread}/messages?limit=100").json["items"]
    return str(next(m["status"] for m in items if m["id"] == message_id))


def test_a_message_is_delivered_when_its_recipient_opens_a_page_then_read(
    api, people: Demo, session: Session, app: Flask
) -> None:
    thread = api("alice").get("/conversations").json["items"][0]["id"]
    sent = api("alice").post(f"/conversations/{thread}/messages", json={"body": "Hello"})
    assert sent.status_code == 201
    message_id = sent.json["id"]
    assert sent.json["status"] == "sent"
    # Reading the thread through the API delivers nothing by itself (it is not their page).
    assert _status(api, thread, message_id) == "sent"
    chen = app.test_client()
    login(chen, "dr.chen@example.org")
    assert chen.get("/staff/patients").status_code == 200
    assert _status(api, thread, message_id) == "delivered"
    assert api("dr_chen").post(f"/messages/{message_id}/read").json["status"] == "read"
    chen.get("/staff/patients")
    assert _status(api, thread, message_id) == "read"  # delivery never undoes a read


def test_marking_delivered_touches_only_the_recipients_sent_messages(
    session: Session, people: Demo
) -> None:
    chen = people.user("dr_chen").id
    before = messaging.has_undelivered(session, chen)
    changed = messaging.mark_delivered(session, chen)
    assert before == (changed > 0)
    assert not messaging.has_undelivered(session, chen)
    assert messaging.mark_delivered(session, chen) == 0
    session.rollback()


def test_every_audit_entry_has_the_seeds_summary_without_names(api, people: Demo) -> None:
    pid = people.user("alice").patient.id
    api("dr_chen").get(f"/patients/{pid}")
    items = api("admin").get("/audit-events", query_string={"patientId": pid}).json["items"]
    assert items
    assert all(e["summary"] for e in items)
    viewed = next(
        e for e in items if e["action"] == "view" and e["entityType"] == "patient_profile"
    )
    assert viewed["summary"] == f"dr.chen@example.org (provider) view patient_profile {pid}"
    assert all("Alice" not in e["summary"] for e in items)


def test_the_seeds_patient_only_visibility_is_refused(api, people: Demo) -> None:
    # Refused on purpose (docs/architecture.md, "Results the care team cannot see"): a
    # result its ordering clinician cannot see could not be followed up.
    body = problem(
        api("dr_chen").post(
            f"/patients/{people.user('alice').patient.id}/lab-results",
            json={
                "testCode": "2345-7",
                "testName": "Glucose",
                "resultValue": "92",
                "status": "final",
                "visibility": "patient_only",
            },
        ),
        422,
    )
    assert "body.visibility" in body["errors"]


@pytest.mark.parametrize(
    ("text", "number"),
    [("1e3", 1000.0), ("4.5E-2", 0.045), ("<2e2", 200.0), ("-1.5e1", -15.0), ("92", 92.0)],
)
def test_numbers_in_scientific_notation_are_read(text: str, number: float) -> None:
    assert labs.parse_value(text) == pytest.approx(number)


def test_a_value_written_like_1e3_is_flagged_against_its_range(api, people: Demo) -> None:
    pid = people.user("alice").patient.id
    made = api("dr_chen").post(
        f"/patients/{pid}/lab-results",
        json={
            "testCode": "777-3",
            "testName": "Platelets",
            "resultValue": "4.8e2",
            "units": "10*3/uL",
            "referenceRange": "1.5e2-4.5e2",
            "status": "final",
        },
    )
    assert made.status_code == 201, made.json
    assert (made.json["resultValue"], made.json["flag"]) == ("4.8e2", "high")
    # Past any real result: refused with the message that says what is accepted.
    huge = api("dr_chen").post(
        f"/patients/{pid}/lab-results",
        json={
            "testCode": "777-3",
            "testName": "Platelets",
            "resultValue": "1e400",
            "status": "final",
        },
    )
    assert problem(huge, 422)["errors"]["resultValue"] == [labs.TOO_LARGE]
