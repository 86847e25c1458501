"""A patient's full result list in the staff area (issue 12, point 5): pages, filters by test
and status, the trend on a result's page, and 404 for a patient who is not the provider's."""

from __future__ import annotations

import re

from tests.conftest import Demo

_ROW = re.compile(r'<th scope="row"><a href="/staff/results/(\d+)">([^<]+)</a>')


def _path(people: Demo) -> str:
    return f"/staff/patients/{people.user('alice').patient.id}/results"


def test_pages_follow_each_other_without_repeating_a_result(as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    first = client.get(_path(people)).get_data(as_text=True)
    older = re.search(r'href="([^"]+)"[^>]*>Older<', first)
    assert older, "alice has more than one page of results"
    second = client.get(older[1].replace("&amp;", "&")).get_data(as_text=True)
    ids = lambda html: [i for i, _name in _ROW.findall(html)]  # noqa: E731
    assert len(ids(first)) == 20
    assert ids(second)
    assert not set(ids(first)) & set(ids(second))
    assert re.search(r">Newer<", second)


def test_filters_by_test_and_by_status(as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    hba1c = client.get(f"{_path(people)}?test=4548-4").get_data(as_text=True)
    assert "4 results matching the filters" in hba1c
    assert {name for _i, name in _ROW.findall(hba1c)} == {"Hemoglobin A1c"}
    corrected = client.get(f"{_path(people)}?status=corrected").get_data(as_text=True)
    assert {name for _i, name in _ROW.findall(corrected)} == {"Potassium"}
    preliminary = client.get(f"{_path(people)}?status=preliminary").get_data(as_text=True)
    assert {name for _i, name in _ROW.findall(preliminary)} == {"Glucose"}


def test_an_unknown_status_is_422_on_its_field_and_not_applied(as_user, people: Demo) -> None:
    response = as_user("dr_chen").get(f"{_path(people)}?status=deleted")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'aria-describedby="status-error" aria-invalid="true"' in page
    assert len(_ROW.findall(page)) == 20


def test_a_patient_who_is_not_the_providers_is_404(as_user, people: Demo) -> None:
    assert as_user("dr_okafor").get(_path(people)).status_code == 404


def test_a_results_page_shows_the_same_trend_as_the_patients(as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    listed = client.get(f"{_path(people)}?test=4548-4").get_data(as_text=True)
    newest = _ROW.findall(listed)[0][0]
    page = client.get(f"/staff/results/{newest}").get_data(as_text=True)
    assert '<svg viewBox="0 0 640 260"' in page
    assert "Hemoglobin A1c values (%), oldest first" in page
    assert "/my/lab-results" not in page  # links stay in the staff area
    assert "/staff/results/" in page[page.index("oldest first") :]
