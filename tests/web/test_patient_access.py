"""Another patient's records are 404 for alice, however they are named: in the URL, in a form
field, in an htmx fragment request. Provider-only, preliminary and draft content never reaches
her pages."""

from __future__ import annotations

import re

import pytest

from portal.services import attachments
from tests.conftest import post
from tests.web.patient_records import records_of

# (method, path template, form data): every patient route that names a record.
BY_ID = {
    "lab result": ("GET", "/my/lab-results/{r.result_id}", None),
    "treatment plan": ("GET", "/my/treatment-plans/{r.plan_id}", None),
    "acknowledge plan": ("POST", "/my/treatment-plans/{r.plan_id}/acknowledge", {}),
    "conversation": ("GET", "/my/messages/{r.conversation_id}", None),
    "reply": (
        "POST",
        "/my/messages/{r.conversation_id}/reply",
        {"body": "Hello", "idempotency_key": "k1"},
    ),
    "cancel appointment": ("POST", "/my/appointments/{r.appointment_id}/cancel", {}),
}


def _call(client, method: str, path: str, data, headers=None):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(path, headers=headers or {})
    return post(client, path, data, headers=headers or {})


@pytest.mark.parametrize("route", BY_ID, ids=str)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx-fragment"])
def test_bobs_record_is_not_found_for_alice(as_user, session, people, route, htmx) -> None:
    # Arrange
    bob = records_of(session, people, "bob")
    client = as_user("alice")
    method, template, data = BY_ID[route]
    headers = {"HX-Request": "true"} if htmx else None
    # Act
    response = _call(client, method, template.format(r=bob), data, headers)
    # Assert
    assert response.status_code == 404


@pytest.mark.parametrize("route", BY_ID, ids=str)
def test_the_same_routes_answer_alice_for_her_own_records(as_user, session, people, route) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    method, template, data = BY_ID[route]
    response = _call(client, method, template.format(r=mine), data)
    assert response.status_code in (200, 303)


@pytest.mark.parametrize("whose_token", ["alice", "bob"])
def test_a_download_link_to_bobs_attachment_is_not_found_for_alice(
    app, as_user, session, people, whose_token
) -> None:
    bob = records_of(session, people, "bob")
    client = as_user("alice")
    with app.test_request_context():
        token = attachments.link_token(bob.attachment_id, people.user(whose_token).id)
    assert client.get(f"/my/attachments/{token}").status_code == 404


def test_a_link_made_for_bob_does_not_open_alices_own_attachment(app, as_user, session, people):
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    with app.test_request_context():
        token = attachments.link_token(mine.attachment_id, people.user("bob").id)
        own = attachments.link_token(mine.attachment_id, people.user("alice").id)
    assert client.get(f"/my/attachments/{token}").status_code == 404
    assert client.get(f"/my/attachments/{own}").status_code == 200


def test_a_tampered_link_is_not_found(as_user) -> None:
    assert as_user("alice").get("/my/attachments/not-a-token").status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [("/my/messages/new", "to"), ("/my/appointments/new", "provider_id")],
)
def test_naming_someone_outside_the_care_team_in_a_form_is_refused(
    as_user, people, path, field
) -> None:
    client = as_user("alice")
    okafor = people.user("dr_okafor")
    value = okafor.id if field == "to" else okafor.provider.id
    data = {
        field: str(value),
        "subject": "Hi",
        "body": "Hello",
        "start_at": "2030-01-07T09:00:00+00:00",
    }
    response = post(client, path, data)
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["to=%C2%B2", "to=1_0", "to=99999999999999999999999"])
def test_an_id_in_the_query_that_is_not_ascii_digits_is_ignored(as_user, query) -> None:
    # "²".isdigit() is True but int("²") raises: such ids must never become a 500.
    client = as_user("alice")
    assert client.get(f"/my/messages/new?{query}").status_code == 200
    provider_query = query.replace("to=", "provider_id=")
    assert client.get(f"/my/appointments/new?{provider_query}").status_code == 200


@pytest.mark.parametrize(
    ("path", "field"), [("/my/messages/new", "to"), ("/my/appointments/new", "provider_id")]
)
def test_an_id_in_a_form_that_is_not_ascii_digits_is_422(as_user, path, field) -> None:
    response = post(as_user("alice"), path, {field: "²", "subject": "Hi", "body": "Hello"})
    assert response.status_code == 422


HIDDEN = {
    "creatinine_id": "lab result shared with providers only",
    "glucose_id": "preliminary lab result",
}


@pytest.mark.parametrize("which", HIDDEN, ids=HIDDEN.get)
def test_alices_own_unshared_results_are_not_found(as_user, session, people, which) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    assert client.get(f"/my/lab-results/{getattr(mine, which)}").status_code == 404


def test_alices_draft_plan_is_not_found(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    assert as_user("alice").get(f"/my/treatment-plans/{mine.draft_plan_id}").status_code == 404


def _all_result_pages(client) -> str:  # type: ignore[no-untyped-def]
    html, path = "", "/my/lab-results"
    for _ in range(20):
        page = client.get(path).get_data(as_text=True)
        html += page
        found = re.search(r'href="(/my/lab-results\?[^"]*cursor=[^"]+)"[^>]*>Older', page)
        if not found:
            return html
        path = found.group(1).replace("&amp;", "&")
    raise AssertionError("pagination did not end")


PAGES = ["/my/", "/my/treatment-plans", "/my/messages", "/my/appointments", "/my/profile"]


@pytest.mark.parametrize(
    "secret",
    ["Creatinine", "Draft: cholesterol follow-up", "Glucose", "Not yet agreed."],
)
def test_unshared_content_never_appears_in_alices_pages(as_user, secret) -> None:
    client = as_user("alice")
    html = _all_result_pages(client) + "".join(client.get(p).get_data(as_text=True) for p in PAGES)
    assert "Potassium" in html  # the pages did render her shared results
    assert secret not in html


def test_filtering_by_a_provider_only_test_finds_nothing(as_user) -> None:
    page = as_user("alice").get("/my/lab-results?test=2160-0").get_data(as_text=True)
    assert "0 results" in page
    assert "Creatinine" not in page


def test_the_potassium_history_shows_only_shared_versions_and_no_other_patient(
    as_user, session, people
) -> None:
    mine = records_of(session, people, "alice")
    page = as_user("alice").get(f"/my/lab-results/{mine.potassium_id}").get_data(as_text=True)
    assert "Bob Okonkwo" not in page
    assert "Version 2" in page


def test_staff_cannot_open_the_patient_area(as_user) -> None:
    assert as_user("dr_chen").get("/my/lab-results").status_code == 403
