"""Two versions of a treatment plan side by side (issue 12, point 6), for the patient and the
provider: what changed in summary, details and dates, marked in words as well as style."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.services import plans
from portal.transactions import unit_of_work
from tests.conftest import Demo, login

FIRST = plans.PlanInput(
    "Blood sugar: diet first",
    "Walk 30 minutes a day.\nCheck sugar before breakfast.",
    date(2026, 1, 5),
    date(2026, 6, 30),
)
SECOND = plans.PlanInput(
    "Blood sugar: diet and metformin",
    "Walk 30 minutes a day.\nTake metformin 500 mg with dinner.",
    date(2026, 1, 5),
    date(2026, 9, 30),
)


@pytest.fixture
def plan_id(session: Session, people: Demo) -> int:
    """alice's plan: a draft (v1), activated (v2), then revised while active (v3)."""
    chen = people.actor("dr_chen")
    with unit_of_work(session) as w:
        plan = plans.create_draft(w, chen, people.user("alice").patient.id, FIRST)
    with unit_of_work(session) as w:
        plans.activate(w, chen, plan.id, complete_others=False)
    with unit_of_work(session) as w:
        plans.revise(w, chen, plan.id, SECOND, "Sugar still high: metformin added.")
    return plan.id


@pytest.fixture
def alice(app: Flask, connection: object) -> FlaskClient:
    other = app.test_client()
    login(other, "alice@example.org")
    return other


def _cells(page: str, label: str) -> tuple[str, str]:
    row = re.search(
        rf'<th scope="row">{label} .*?</th>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td>', page, re.S
    )
    assert row, label
    return row[1], row[2]


def test_the_patient_sees_what_changed_since_the_version_before(
    alice: FlaskClient, plan_id: int
) -> None:
    response = alice.get(f"/my/treatment-plans/{plan_id}/compare")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Version 2 and version 3 side by side" in page  # the draft (v1) is not theirs
    older, newer = _cells(page, "Details")
    assert (
        '<del><span class="visually-hidden">[removed: </span>Check sugar before breakfast.' in older
    )
    assert (
        '<ins><span class="visually-hidden">[added: </span>Take metformin 500 mg with dinner.'
        in newer
    )
    assert "<ins>" not in older
    assert "<del>" not in newer
    assert "Walk 30 minutes a day." in older
    assert "Walk 30 minutes a day." in newer
    _old_end, new_end = _cells(page, "End date")
    assert "[added: </span>30 September 2026" in new_end
    assert re.search(r"Start date <span class=\"muted\">no change", page)
    assert "Sugar still high: metformin added." in page


def test_the_patient_may_not_compare_with_a_draft_version(alice: FlaskClient, plan_id: int) -> None:
    assert alice.get(f"/my/treatment-plans/{plan_id}/compare?from=1&to=3").status_code == 404


def test_the_provider_compares_any_two_versions(as_user, plan_id: int) -> None:
    page = as_user("dr_chen").get(f"/staff/plans/{plan_id}/compare?from=1&to=3")
    assert page.status_code == 200
    summary_old, summary_new = _cells(page.get_data(as_text=True), "Summary")
    assert "[removed: </span>first" in summary_old
    assert "[added: </span>and metformin" in summary_new


@pytest.mark.parametrize("query", ["from=3&to=2", "from=two&to=3", "from=2&to=2"])
def test_versions_that_cannot_be_compared_are_422_with_the_default(
    as_user, plan_id: int, query: str
) -> None:
    response = as_user("dr_chen").get(f"/staff/plans/{plan_id}/compare?{query}")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'aria-describedby="versions-error" aria-invalid="true"' in page
    assert "Version 2 and version 3 side by side" in page


def test_someone_elses_plan_is_404(as_user, plan_id: int) -> None:
    assert as_user("dr_okafor").get(f"/staff/plans/{plan_id}/compare").status_code == 404
