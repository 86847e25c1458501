"""Lab results for the patient: the list (filters, pages, htmx fragments), the detail with its
history, attachments and trend, and "new" marks that clear when a result is opened."""

from __future__ import annotations

import re
import signal

import pytest

from portal.models import EventType, ResultStatus
from portal.services import labs, notifications, trends
from tests.web.patient_records import records_of


def test_the_list_shows_value_units_range_and_a_text_flag(as_user) -> None:
    page = as_user("alice").get("/my/lab-results").get_data(as_text=True)
    assert "<caption" in page
    assert "mmol/L" in page
    assert re.search(r'class="flag flag-\w+">(High|Low|Normal)<', page)


def test_filtering_by_test_shows_only_that_test(as_user) -> None:
    page = as_user("alice").get("/my/lab-results?test=4548-4").get_data(as_text=True)
    assert "4 results matching your filters" in page
    rows = re.findall(r'<th scope="row"><a href="/my/lab-results/\d+">([^<]+)</a>', page)
    assert set(rows) == {"Hemoglobin A1c"}


def test_filtering_by_dates_narrows_the_list(as_user) -> None:
    client = as_user("alice")
    everything = client.get("/my/lab-results").get_data(as_text=True)
    recent = client.get("/my/lab-results?from=2000-01-01&to=2000-12-31").get_data(as_text=True)
    assert "0 results" in recent
    assert "0 results" not in everything


def test_an_unreadable_date_is_422_with_the_error_tied_to_the_field(as_user) -> None:
    response = as_user("alice").get("/my/lab-results?from=yesterday")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'aria-describedby="date-from-hint date-from-error"' in page
    assert 'aria-invalid="true"' in page


def test_an_end_before_the_start_is_422_on_the_end_and_not_applied(as_user) -> None:
    response = as_user("alice").get("/my/lab-results?from=2026-03-10&to=2026-03-09")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The end date must be on or after the start date." in page
    assert 'aria-describedby="date-to-hint date-to-error"' in page
    assert "matching your filters" not in page


@pytest.mark.parametrize(
    "cursor", ["garbage", "1.%C2%B2", "99999999999999999999999.1", "1.99999999999999999999"]
)
def test_a_page_link_that_was_not_made_by_the_list_is_422_with_the_first_page(
    as_user, cursor: str
) -> None:
    response = as_user("alice").get(f"/my/lab-results?cursor={cursor}")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "This page link is not valid. Showing the first page." in page
    assert len(re.findall(r'<th scope="row"><a href="/my/lab-results/\d+"', page)) == 20


def test_pages_follow_each_other_without_repeating_a_result(as_user) -> None:
    client = as_user("alice")
    first = client.get("/my/lab-results").get_data(as_text=True)
    next_link = re.search(r'href="(/my/lab-results\?cursor=[^"]+)"[^>]*>Older', first)
    assert next_link, "alice has more than one page of results"
    second = client.get(next_link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    ids = lambda html: re.findall(r'<th scope="row"><a href="/my/lab-results/(\d+)"', html)  # noqa: E731
    assert len(ids(first)) == 20
    assert ids(second)
    assert not set(ids(first)) & set(ids(second))
    assert ">Newer<" not in first
    newer = re.search(r'href="(/my/lab-results\?cursor=[^"]+)"[^>]*>Newer', second)
    assert newer, "a later page links back"
    back = client.get(newer.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert ids(back) == ids(first)


def test_an_htmx_request_gets_only_the_results_block(as_user) -> None:
    client = as_user("alice")
    response = client.get("/my/lab-results?test=4548-4", headers={"HX-Request": "true"})
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert page.lstrip().startswith('<h2 id="results-heading" tabindex="-1">')
    assert "Vary" in response.headers
    assert "HX-Request" in response.headers["Vary"]
    boosted = client.get(
        "/my/lab-results", headers={"HX-Request": "true", "HX-Boosted": "true"}
    ).get_data(as_text=True)
    assert "<html" in boosted


def test_list_controls_push_their_url_and_work_without_javascript(as_user) -> None:
    page = as_user("alice").get("/my/lab-results").get_data(as_text=True)
    assert 'method="get" action="/my/lab-results"' in page
    assert page.count('hx-push-url="true"') >= 2  # the filter form and the next-page link


def test_the_corrected_potassium_shows_its_history_and_reason(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    page = as_user("alice").get(f"/my/lab-results/{mine.potassium_id}").get_data(as_text=True)
    assert "4.2 mmol/L" in page
    assert "Version 2: Corrected" in page
    assert "(was 6.8 mmol/L)" in page
    assert "haemolysed" in page
    assert "Dr Mei Chen" in page  # ordered and published by


def test_the_trend_is_an_accessible_svg_with_a_table_and_summary(as_user, session, people):
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    page = client.get(f"/my/lab-results/{mine.tsh_id}").get_data(as_text=True)
    # TSH has a single value: the page says so instead of drawing.
    assert "no earlier" in page
    a1c = re.search(
        r'href="/my/lab-results/(\d+)">Hemoglobin A1c',
        client.get("/my/lab-results?test=4548-4").get_data(as_text=True),
    )
    assert a1c
    page = client.get(f"/my/lab-results/{a1c.group(1)}").get_data(as_text=True)
    assert re.search(r'<svg [^>]*role="img" aria-labelledby="trend-title-1 trend-desc-1"', page)
    assert '<title id="trend-title-1">Hemoglobin A1c trend in %</title>' in page
    assert 'class="trend-band"' in page
    assert " of the last 4 within range." in page
    assert "style=" not in page
    assert "<caption>Hemoglobin A1c values (%), oldest first</caption>" in page


def test_the_trend_summary_table_and_chart_come_from_the_same_points(session, people) -> None:
    alice = people.actor("alice")
    chen = people.actor("dr_chen")
    pid = people.user("alice").patient.id
    result = labs.create_result(
        session,
        chen,
        pid,
        test_code="2823-3",
        test_name="Potassium",
        data=labs.ResultInput("4.0", "mmol/L", "3.5-5.1", ResultStatus.FINAL),
    )
    trend = trends.trend_for(session, alice, result)
    (series,) = trend.series
    assert [p.value_text for p in series.points] == ["4.2", "4.0"]
    corrected = series.points[0]
    assert corrected.corrected_version == 2
    assert corrected.corrected_from == "6.8"
    assert corrected.marker == 1
    assert series.summary == "2 of the last 2 within range."
    assert series.path.startswith("M ")


def test_values_in_different_units_are_never_joined(session, people) -> None:
    alice = people.actor("alice")
    chen = people.actor("dr_chen")
    pid = people.user("alice").patient.id
    labs.create_result(
        session,
        chen,
        pid,
        test_code="2823-3",
        test_name="Potassium",
        data=labs.ResultInput("4.4", "mmol/L", "3.5-5.1", ResultStatus.FINAL),
    )
    other = labs.create_result(
        session,
        chen,
        pid,
        test_code="2823-3",
        test_name="Potassium",
        data=labs.ResultInput("16", "mg/dL", "14-20", ResultStatus.FINAL),
    )
    trend = trends.trend_for(session, alice, other)
    assert [s.units for s in trend.series] == ["mg/dL", "mmol/L"]
    assert all(len({p.units for p in s.points}) == 1 for s in trend.series)


def test_the_tsh_report_downloads_as_the_same_pdf(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    page = client.get(f"/my/lab-results/{mine.tsh_id}").get_data(as_text=True)
    link = re.search(r'href="(/my/attachments/[^"]+)"[^>]*download>tsh-report.pdf', page)
    assert link
    response = client.get(link.group(1))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert "attachment;" in response.headers["Content-Disposition"]


def test_a_held_result_shows_as_a_placeholder_without_its_value(as_user) -> None:
    # The demo's genetic result is held by dr.chen for this patient (not by its category):
    # the patient reads who holds it and until when, never its value or the hold's reason.
    page = as_user("alice").get("/my/lab-results").get_data(as_text=True)
    assert "BRCA1 gene mutations</strong> — held by your clinician, Dr Mei Chen, until " in page
    assert "No pathogenic variant detected" not in page
    assert "counselling visit" not in page


def test_opening_a_result_marks_its_notification_read_everywhere(as_user, session, people) -> None:
    # Arrange
    mine = records_of(session, people, "alice")
    alice = people.actor("alice")
    client = as_user("alice")
    before = notifications.nav_state(session, alice).unread[EventType.LAB_RESULT_PUBLISHED]
    listed = client.get("/my/lab-results?test=2823-3").get_data(as_text=True)
    assert 'class="status status-new">New<' in listed
    # Act
    client.get(f"/my/lab-results/{mine.potassium_id}")
    # Assert: both potassium notifications (new, then corrected) are read
    session.expire_all()
    after = notifications.nav_state(session, alice).unread[EventType.LAB_RESULT_PUBLISHED]
    assert after == before - 2
    listed = client.get("/my/lab-results?test=2823-3").get_data(as_text=True)
    assert 'class="status status-new">New<' not in listed


@pytest.mark.parametrize(
    ("values", "drawn"),
    [
        pytest.param(("36893488147419103232", "36893488147419111424"), True, id="near-2**65"),
        pytest.param(("1e999", "5.0"), False, id="infinity"),
    ],
)
def test_values_stored_before_they_were_bounded_answer_at_once_with_a_chart_or_the_table(
    as_user, session, people, monkeypatch, values: tuple[str, str], drawn: bool
) -> None:
    # Stored before values were bounded when entered: the page must still answer, at once.
    # Patched where publishing looks them up (`labs.publishing`), not on the package.
    monkeypatch.setattr(labs.publishing, "_check_numbers", lambda _data: None)
    monkeypatch.setattr(labs.publishing, "parse_value", float)  # "1e999" is stored as infinity
    chen = people.actor("dr_chen")
    pid = people.user("alice").patient.id
    for value in values:
        result = labs.create_result(
            session,
            chen,
            pid,
            test_code="99999-1",  # a test alice has no other result of
            test_name="Glucose",
            data=labs.ResultInput(value, "mg/dL", None, ResultStatus.FINAL),
        )
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(10)
    try:
        response = as_user("alice").get(f"/my/lab-results/{result.id}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ("<svg" in page) is drawn
    assert ("These values cannot be drawn on a chart" in page) is not drawn
    assert f"{values[1]} mg/dL" in page  # in the table


def _hung(*_args: object) -> None:
    raise TimeoutError("the page did not answer in 10 s")
