"""Results keep their place in time (issue 12, point 4): a correction of an older HbA1c stays
where its sample was taken in the trend, the lists and the dashboard, marked as corrected."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import utcnow
from portal.models import LabResult, ResultStatus
from portal.services import labs, trends
from portal.transactions import unit_of_work
from tests.conftest import Demo, login, post

HBA1C = "4548-4"
_ROW_LINK = re.compile(r'<th scope="row"><a href="/my/lab-results/(\d+)">([^<]+)</a>')


def _hba1c_ids(session: Session, people: Demo) -> list[int]:
    """alice's HbA1c results, in the order they were entered (oldest sample first)."""
    pid = people.user("alice").patient.id
    stmt = select(LabResult.id).where(LabResult.patient_id == pid, LabResult.test_code == HBA1C)
    return list(session.scalars(unscoped(stmt.order_by(LabResult.id), "test")))


@pytest.fixture
def alice(app: Flask, connection: object) -> FlaskClient:
    """alice's browser (the `client` fixture is dr.chen's)."""
    other = app.test_client()
    login(other, "alice@example.org")
    return other


def _correct_the_older_one(as_user, session: Session, people: Demo) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    *_, older, newest = _hba1c_ids(session, people)
    answer = post(
        as_user("dr_chen"),
        f"/staff/results/{older}/correct",
        {
            "result_value": "6.9",
            "units": "%",
            "reference_range": "4.0-5.6",
            "status": "corrected",
            "visibility": "shared",
            "reason": "Transcription error",
        },
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    return older, newest


def test_a_corrected_older_result_keeps_its_place_in_the_trend(
    as_user, session, people, alice: FlaskClient
) -> None:
    older, newest = _correct_the_older_one(as_user, session, people)
    page = alice.get(f"/my/lab-results/{newest}").get_data(as_text=True)
    svg = re.search(r'<svg viewBox="0 0 (\d+) (\d+)".*?</svg>', page, re.S)
    assert svg, "the trend is drawn"
    width = int(svg[1])
    path = re.search(r'class="trend-line" d="M ([^"]+)"', svg[0])
    assert path
    xs = [float(point.split()[0]) for point in path[1].split(" L ")]
    assert all(0 <= x <= width for x in xs), xs
    assert xs == sorted(xs), "the line runs forward in time"
    description = re.search(r"<desc[^>]*>([^<]+)</desc>", svg[0])
    assert description
    values = re.search(r"Values, oldest first: ([^.]+(?:\.\d[^.]*)*)\. ", description[1])
    assert values
    assert values[1].split(", ")[-2] == "6.9 (corrected)", description[1]
    span = re.search(r"from (\d+ \w+ \d{4}) to (\d+ \w+ \d{4})", description[1])
    assert span
    first, last = (datetime.strptime(day, "%d %b %Y").replace(tzinfo=UTC) for day in span.groups())
    assert first < last, description[1]
    # The table, oldest first: the other results in the order their samples were taken
    # (the demo entered them in that order), and the corrected one says so.
    table = page[page.index("values (%), oldest first") :]
    table = table[: table.index("</table>")]
    linked = [int(i) for i in re.findall(r'href="/my/lab-results/(\d+)"', table)]
    assert linked == sorted(linked), linked
    assert older in linked
    assert "Corrected" in table
    assert "(was " in table


def test_a_corrected_older_result_does_not_top_the_lists(
    as_user, session, people, alice: FlaskClient
) -> None:
    older, newest = _correct_the_older_one(as_user, session, people)
    page = alice.get("/my/lab-results").get_data(as_text=True)
    listed = [int(i) for i, _name in _ROW_LINK.findall(page)]
    assert listed.index(newest) < listed.index(older)
    # Its row says it was corrected, and when (the place in the list is its sample's).
    row = page[page.index(f'/my/lab-results/{older}"') :].split("</tr>")[0]
    assert re.search(r"Corrected \d{1,2} \w{3} \d{4}", row), row
    dashboard = alice.get("/my/").get_data(as_text=True)
    recent = dashboard[dashboard.index("Recent lab results") :]
    recent_ids = [int(i) for i, _name in _ROW_LINK.findall(recent)]
    assert older not in recent_ids[:1]
    hba1c = [
        int(i)
        for i, name in _ROW_LINK.findall(
            alice.get(f"/my/lab-results?test={HBA1C}").get_data(as_text=True)
        )
    ]
    assert hba1c == sorted(hba1c, reverse=True), "newest sample first"


def test_staff_give_the_collection_time_and_a_future_one_is_refused_on_its_field(
    as_user, people
) -> None:
    client = as_user("dr_chen")
    path = f"/staff/patients/{people.user('alice').patient.id}/results/new"
    fields = {"test_code": "718-7", "test_name": "Hemoglobin", "result_value": "14.0"}
    fields |= {"action": "final", "visibility": "shared"}
    refused = post(client, path, {**fields, "collected_at": "2999-01-01T08:00"})
    assert refused.status_code == 422
    assert "The collection time cannot be in the future." in refused.get_data(as_text=True)
    saved = post(client, path, {**fields, "collected_at": "2024-03-05T08:30"})
    assert saved.status_code == 303
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "sample taken 5 Mar 2024" in page.replace("\n", " ")


def test_units_read_as_people_write_them_on_pages(alice: FlaskClient) -> None:
    page = alice.get("/my/lab-results?test=6690-2").get_data(as_text=True)
    assert "10³/µL" in page
    assert "10*3/uL" not in page


def test_a_late_entered_older_sample_is_placed_by_collection_in_the_trend(
    session: Session, people: Demo
) -> None:
    chen, alice_actor = people.actor("dr_chen"), people.actor("alice")
    taken = utcnow() - timedelta(days=800)  # before every demo sample
    with unit_of_work(session) as w:
        late = labs.create_result(
            w,
            chen,
            people.user("alice").patient.id,
            test_code=HBA1C,
            test_name="Hemoglobin A1c",
            data=labs.ResultInput("7.4", "%", "4.0-5.6", ResultStatus.FINAL),
            collected_at=taken,
        )
    trend = trends.trend_for(session, alice_actor, late)
    (series,) = trend.series
    assert series.points[0].result_id == late.id, "published last, but its sample is oldest"
    assert series.points[0].when == taken
    xs = [p.x for p in series.charted]
    assert xs == sorted(xs)
