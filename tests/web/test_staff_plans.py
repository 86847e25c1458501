"""Treatment plans from the provider's side: draft, edit, approve and activate, complete."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import RoleScope, reader
from portal.models import PlanStatus, TreatmentPlan
from portal.services import plans
from tests.conftest import Demo, post


def _draft(client: FlaskClient, patient_id: int, summary: str = "Asthma: inhaler review") -> int:
    response = post(
        client,
        f"/staff/patients/{patient_id}/plans/new",
        {"summary": summary, "details": "Use the preventer inhaler twice a day."},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _plans(session: Session, people: Demo) -> dict[int, TreatmentPlan]:
    session.expire_all()
    chen = people.actor("dr_chen")
    stmt = RoleScope(chen.role).scope(select(TreatmentPlan), TreatmentPlan)
    rows = session.scalars(stmt, reader(chen))
    return {p.id: p for p in rows if p.patient_id == people.user("alice").patient.id}


def test_a_draft_needs_a_summary(as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    response = post(
        client, f"/staff/patients/{people.user('alice').patient.id}/plans/new", {"summary": ""}
    )
    assert response.status_code == 422
    assert 'aria-describedby="summary-error"' in response.get_data(as_text=True)


def test_activating_a_plan_records_the_approver_and_completes_the_old_one_when_asked(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange
    client = as_user("dr_chen")
    alice = people.user("alice").patient.id
    before = {i for i, p in _plans(session, people).items() if p.status is PlanStatus.ACTIVE}
    plan_id = _draft(client, alice)
    # Act
    response = post(client, f"/staff/plans/{plan_id}/activate", {"complete_others": "y"})
    # Assert
    assert response.status_code == 303
    now = _plans(session, people)
    assert now[plan_id].status is PlanStatus.ACTIVE
    assert now[plan_id].approver_id == people.user("dr_chen").id
    assert all(now[i].status is PlanStatus.COMPLETED for i in before)


def test_activating_without_completing_others_keeps_both_active(
    session: Session, as_user, people: Demo
) -> None:
    client = as_user("dr_chen")
    before = {i for i, p in _plans(session, people).items() if p.status is PlanStatus.ACTIVE}
    plan_id = _draft(client, people.user("alice").patient.id)
    post(client, f"/staff/plans/{plan_id}/activate", {})
    now = _plans(session, people)
    assert all(now[i].status is PlanStatus.ACTIVE for i in before | {plan_id})


def test_each_saved_change_of_an_active_plan_is_a_new_version_with_its_acknowledgement(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange: alice acknowledged version 2 of her new plan
    client = as_user("dr_chen")
    plan_id = _draft(client, people.user("alice").patient.id)
    post(client, f"/staff/plans/{plan_id}/activate", {"complete_others": "y"})
    plans.acknowledge(session, people.actor("alice"), plan_id)
    session.commit()
    # Act
    response = post(
        client,
        f"/staff/plans/{plan_id}/edit",
        {
            "summary": "Asthma: inhaler review",
            "details": "Twice a day, and before exercise.",
            "note": "Added exercise advice.",
        },
    )
    # Assert
    assert response.status_code == 303
    history = plans.history(session, people.actor("dr_chen"), _plans(session, people)[plan_id])
    assert [(v.version, v.status, ack is not None) for v, ack in history] == [
        (3, PlanStatus.ACTIVE, False),
        (2, PlanStatus.ACTIVE, True),
        (1, PlanStatus.DRAFT, False),
    ]
    page = client.get(f"/staff/plans/{plan_id}").get_data(as_text=True)
    assert "Added exercise advice." in page
    assert "Not acknowledged" in page


def test_completing_a_plan_and_completing_it_again(session: Session, as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    plan_id = _draft(client, people.user("alice").patient.id)
    post(client, f"/staff/plans/{plan_id}/activate", {})
    assert post(client, f"/staff/plans/{plan_id}/complete").status_code == 303
    assert _plans(session, people)[plan_id].status is PlanStatus.COMPLETED
    again = post(client, f"/staff/plans/{plan_id}/complete")
    assert again.status_code == 422
    assert "Only an active plan can be completed." in again.get_data(as_text=True)
