"""Access to the staff and admin areas, derived from the URL map so new routes are covered.

dr.okafor is a provider but not on alice's care team: every staff route that names one of
alice's records answers 404, exactly as for a record that does not exist. Other roles never
get into an area that is not theirs (403, or 404 when the record is checked first).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import utcnow
from portal.models import (
    Appointment,
    Attachment,
    Conversation,
    LabResult,
    PlanStatus,
    TreatmentPlan,
)
from portal.services import attachments, schedule
from tests.conftest import Demo, post

#: Form data that gets every POST past its own validation to the access check.
FORM = {
    "status": "completed",
    "body": "Hello",
    "reason": "A reason",
    "result_value": "5",
    "test_code": "718-7",
    "test_name": "Hemoglobin",
    "summary": "A plan",
    "subject": "A subject",
    "provider_id": "1",
}


def _rules(app: Flask, prefix: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefix):
            methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
            found.append((rule.endpoint, rule.rule, methods))
    return found


def _first(session: Session, stmt):  # type: ignore[no-untyped-def]
    row = session.scalar(unscoped(stmt.limit(1), "test fixtures"))
    assert row is not None
    return row


@pytest.fixture
def alice_records(session: Session, people: Demo) -> dict[str, object]:
    """One of each of alice's records (and dr.chen's schedule rows), by URL argument name."""
    pid = people.user("alice").patient.id
    chen = people.actor("dr_chen")
    rule = schedule.add_rule(
        session, chen, weekday=6, start_minute=600, end_minute=660, slot_minutes=30, location=None
    )
    day_off = schedule.add_exception(
        session, chen, day=utcnow().date() + timedelta(days=40), reason=None, today=utcnow().date()
    )
    attachment = _first(session, select(Attachment).where(Attachment.patient_id == pid))
    session.commit()
    return {
        "patient_id": pid,
        "result_id": _first(session, select(LabResult.id).where(LabResult.patient_id == pid)),
        "plan_id": _first(
            session,
            select(TreatmentPlan.id).where(
                TreatmentPlan.patient_id == pid, TreatmentPlan.status == PlanStatus.DRAFT
            ),
        ),
        "conversation_id": _first(
            session, select(Conversation.id).where(Conversation.patient_id == pid)
        ),
        "appointment_id": _first(
            session,
            select(Appointment.id).where(
                Appointment.patient_id == pid, Appointment.start_at > utcnow()
            ),
        ),
        "attachment_id": attachment.id,
        "rule_id": rule.id,
        "exception_id": day_off.id,
        "provider_id": chen.provider_id,
        "user_id": people.user("alice").id,
    }


def _url(rule: str, values: dict[str, object]) -> str:
    path = rule
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in path, f"no test value for an argument of {rule}: add it to alice_records"
    return path


def test_provider_outside_the_care_team_gets_404_from_every_staff_route_naming_alices_records(
    app: Flask, as_user, people: Demo, alice_records: dict[str, object]
) -> None:
    # Arrange
    client: FlaskClient = as_user("dr_okafor")
    okafor = people.user("dr_okafor")
    values = {
        **alice_records,
        "token": attachments.link_token(int(alice_records["attachment_id"]), okafor.id),  # type: ignore[call-overload]
    }
    checked = []
    # Act
    for endpoint, rule, methods in _rules(app, "staff."):
        if "<" not in rule:
            continue
        path = _url(rule, values)
        for method in methods:
            response = client.get(path) if method == "GET" else post(client, path, FORM)
            # Assert
            assert response.status_code == 404, f"{method} {path} ({endpoint})"
            checked.append(endpoint)
    assert {"staff.chart", "staff.result", "staff.attachment", "staff.remove_rule"} <= set(checked)


def test_provider_on_the_care_team_opens_alices_records_by_the_same_routes(
    app: Flask, as_user, people: Demo, alice_records: dict[str, object]
) -> None:
    client = as_user("dr_chen")
    values = {
        **alice_records,
        "token": attachments.link_token(
            int(alice_records["attachment_id"]),  # type: ignore[call-overload]
            people.user("dr_chen").id,
        ),
    }
    for _endpoint, rule, methods in _rules(app, "staff."):
        if "GET" in methods and "<" in rule:
            path = _url(rule, values)
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("who", "area"),
    [
        ("alice", "staff."),
        ("alice", "admin."),
        ("admin", "staff."),
        ("dr_chen", "admin."),
    ],
)
def test_a_role_never_gets_into_an_area_that_is_not_its_own(
    app: Flask, as_user, people: Demo, alice_records: dict[str, object], who: str, area: str
) -> None:
    client = as_user(who)
    values = {**alice_records, "token": "not-a-token"}
    for endpoint, rule, methods in _rules(app, area):
        path = _url(rule, values)
        for method in methods:
            response = client.get(path) if method == "GET" else post(client, path, FORM)
            assert response.status_code in (403, 404), f"{who}: {method} {path} ({endpoint})"
