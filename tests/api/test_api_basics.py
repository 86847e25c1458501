"""The API's first five minutes, as a client meets them: every error is problem+json with the
right status, a browser session works (and needs the CSRF header to change anything), a token
is an "app" on the person's devices list and ends with every way of ending sessions, a token
never opens a page, and the OpenAPI document is a valid 3.1 description of every operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden
from werkzeug.test import TestResponse

from portal.access import Actor
from portal.models import AuthMethod
from portal.services import accounts
from tests.api.conftest import PROBLEM, problem
from tests.conftest import DEMO_EMAILS, Demo, csrf_token, login
from tests.support import PASSWORD, sign_in_limits

NEW_PASSWORD = "another rather long passphrase"


def _token(client: FlaskClient, name: str, app_name: str) -> str:
    """A token whose app name is shown on the person's devices list."""
    response = client.post(
        "/api/v1/auth/token",
        json={"email": DEMO_EMAILS[name], "password": PASSWORD, "client": app_name},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(response.json["token"])  # type: ignore[index]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(response: TestResponse, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with this status and every member the contract names; its body."""
    body = problem(response, status)
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


# --- Errors: problem+json, never an HTML page --------------------------------------------------


def test_json_that_does_not_parse_is_a_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/token", data='{"email": "alice@', content_type="application/json"
    )
    _problem(response, 400)


def test_no_credentials_is_a_401_that_says_how_to_authenticate(client: FlaskClient) -> None:
    for headers in ({}, _bearer("not-a-token"), {"Authorization": "Basic YWxpY2U6cHc="}):
        response = client.get("/api/v1/me", headers=headers)
        _problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v2/me", "/api/"])
def test_an_unknown_api_path_is_a_404_problem(
    client: FlaskClient, path: str, token_for: Callable[[str], str]
) -> None:
    _problem(client.get(path, headers=_bearer(token_for("alice"))), 404)
    _problem(client.get(path), 404)


def test_a_method_the_path_does_not_take_is_a_405_problem(
    client: FlaskClient, token_for: Callable[[str], str]
) -> None:
    response = client.put("/api/v1/me", json={}, headers=_bearer(token_for("alice")))
    _problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_a_body_over_the_size_limit_is_a_413_problem(app: Flask, client: FlaskClient) -> None:
    too_big = b" " * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/api/v1/auth/token", data=too_big, content_type="application/json")
    _problem(response, 413)


def test_a_form_body_is_a_415_problem(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/token", data={"email": DEMO_EMAILS["alice"], "password": PASSWORD}
    )
    _problem(response, 415)


def test_an_unknown_field_is_a_422_naming_it(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/token",
        json={"email": DEMO_EMAILS["alice"], "password": PASSWORD, "nickname": "al"},
    )
    body = _problem(response, 422)
    assert list(body["errors"]) == ["body.nickname"]


def test_a_wrong_password_is_one_generic_401(client: FlaskClient) -> None:
    wrong = client.post(
        "/api/v1/auth/token", json={"email": DEMO_EMAILS["alice"], "password": "not it"}
    )
    nobody = client.post(
        "/api/v1/auth/token", json={"email": "nobody@example.org", "password": "not it"}
    )
    assert _problem(wrong, 401)["detail"] == _problem(nobody, 401)["detail"]


# --- A browser session ---------------------------------------------------------------------------


def test_a_browser_session_reads_and_needs_the_csrf_header_to_change(
    client: FlaskClient,
) -> None:
    login(client, DEMO_EMAILS["alice"])
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json["signedInWith"] == "session"  # type: ignore[index]

    threads = client.get("/api/v1/conversations")
    assert threads.status_code == 200
    reply = f"/api/v1/conversations/{threads.json['items'][0]['id']}/messages"  # type: ignore[index]
    csrf = {"X-CSRFToken": csrf_token(client, "/")}

    _problem(client.post(reply, json={"body": "Without the header."}), 400)
    assert client.post(reply, json={"body": "With the header."}, headers=csrf).status_code == 201
    _problem(client.delete("/api/v1/auth/token"), 400)
    assert client.get("/api/v1/me").status_code == 200  # nothing was ended

    done = client.delete("/api/v1/auth/token", headers=csrf)
    assert done.status_code == 204
    _problem(client.get("/api/v1/me"), 401)


# --- Tokens among the person's sessions ----------------------------------------------------------


def _devices(client: FlaskClient) -> str:
    page = client.get("/account")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_a_token_is_listed_as_an_app_until_it_is_revoked(client: FlaskClient) -> None:
    token = _token(client, "alice", "Alice's pill reminder")
    login(client, DEMO_EMAILS["alice"])
    assert 'Alice&#39;s pill reminder <span class="muted">(app)</span>' in _devices(client)
    assert client.get("/api/v1/me", headers=_bearer(token)).json["signedInWith"] == "token"  # type: ignore[index]

    # The bearer token, not the cookie the same client also carries, is what is revoked.
    revoked = client.delete("/api/v1/auth/token", headers=_bearer(token))

    assert revoked.status_code == 204
    assert "pill reminder" not in _devices(client)
    _problem(client.get("/api/v1/me", headers=_bearer(token)), 401)
    assert client.get("/api/v1/me").status_code == 200  # the browser session goes on


def test_a_password_change_revokes_the_tokens(
    client: FlaskClient, token_for: Callable[[str], str]
) -> None:
    token = token_for("dr_chen")
    login(client, DEMO_EMAILS["dr_chen"])

    changed = client.post(
        "/account/password",
        data={
            "pw-current_password": PASSWORD,
            "pw-password": NEW_PASSWORD,
            "pw-confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(client, "/account"),
        },
    )

    assert changed.status_code == 303
    _problem(client.get("/api/v1/me", headers=_bearer(token)), 401)


def test_signing_out_everywhere_else_revokes_the_tokens(
    client: FlaskClient, token_for: Callable[[str], str]
) -> None:
    token = token_for("alice")
    login(client, DEMO_EMAILS["alice"])

    ended = client.post(
        "/account/devices/sign-out-others", data={"csrf_token": csrf_token(client, "/account")}
    )

    assert ended.status_code == 303
    _problem(client.get("/api/v1/me", headers=_bearer(token)), 401)
    assert client.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("name", "page"),
    [("alice", "/my/lab-results"), ("dr_chen", "/staff/patients"), ("admin", "/account")],
)
def test_a_token_does_not_open_a_page(
    client: FlaskClient, name: str, page: str, token_for: Callable[[str], str]
) -> None:
    response = client.get(page, headers=_bearer(token_for(name)))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_a_token_cannot_change_the_password(
    client: FlaskClient, token_for: Callable[[str], str]
) -> None:
    token = token_for("alice")
    # A valid CSRF token (an anonymous session's), so that only the bearer token is judged.
    response = client.post(
        "/account/password",
        headers=_bearer(token),
        data={
            "pw-current_password": PASSWORD,
            "pw-password": NEW_PASSWORD,
            "pw-confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    # Pages ignore tokens: this is an anonymous request, sent to the sign-in page.
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert client.get("/api/v1/me", headers=_bearer(token)).status_code == 200
    login(client, DEMO_EMAILS["alice"], PASSWORD)  # the password is unchanged


def test_the_account_services_refuse_a_token_actor(session: Session, people: Demo) -> None:
    """METHOD_PERMISSIONS: whatever door a token comes through, it never manages its owner's
    password (a copied token must not lock the person out)."""
    alice = people.user("alice")
    by_token = Actor.of(alice, via=AuthMethod.TOKEN)
    with pytest.raises(Forbidden):
        accounts.change_password(
            session,
            by_token,
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
            limits=sign_in_limits(),
        )


# --- The description ---------------------------------------------------------------------------


@pytest.fixture
def openapi(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.json  # type: ignore[assignment]
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in methods
    ]


def test_the_openapi_document_is_valid_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1.")
    validate(openapi)  # raises on any departure from the OpenAPI 3.1 schema


def test_every_operation_documents_its_body_and_answers(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    ids = [op["operationId"] for _m, _p, op in _operations(openapi)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for method, path, op in _operations(openapi):
        where = f"{method} {path}"
        assert op.get("summary"), where
        if "requestBody" in op:
            content = op["requestBody"]["content"]["application/json"]
            ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
            assert ref in schemas, where
            assert "example" in content or schemas[ref].get("properties"), where
            assert {"413", "415"} <= op["responses"].keys(), where
        successes = [s for s in op["responses"] if s.startswith("2")]
        assert len(successes) == 1, where
        for status, answer in op["responses"].items():
            if status == "204":
                assert "content" not in answer, where
                continue
            if status.startswith("2") and answer["description"] == "The file":
                # A download: the file in the type it was stored with, as bytes.
                assert set(answer["content"]) == {"application/pdf", "image/png", "image/jpeg"}
                continue
            (media_type,) = answer["content"]
            expected = "application/json" if status.startswith("2") else PROBLEM
            assert media_type == expected, f"{where} {status}"
            assert answer["content"][media_type]["schema"], f"{where} {status}"
        assert "422" in op["responses"], where
        if op["security"]:
            assert "401" in op["responses"], where


def test_the_reference_page_renders(client: FlaskClient, openapi: dict[str, Any]) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    for _method, _path, op in _operations(openapi):
        assert f'id="{op["operationId"]}"' in text


def test_an_answer_whose_audit_entry_cannot_be_written_is_a_problem_without_phi(
    api, people: Demo, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from portal.audit import chain
    from tests.web.audit_support import entries_for

    alice = api("alice")
    pid = people.user("alice").patient.id

    def broken(*_args: object) -> str:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(chain, "append", broken)
    response = alice.get(f"/patients/{pid}/lab-results")
    monkeypatch.undo()

    body = _problem(response, 500)
    assert "items" not in body
    assert "no-store" in response.headers["Cache-Control"]
    assert entries_for(session, response) == []


def test_a_refused_request_about_another_patient_records_no_read_of_them(
    api, people: Demo, session: Session
) -> None:  # type: ignore[no-untyped-def]
    from tests.web.audit_support import entries_for

    bob = people.user("bob").patient.id
    # A query that does not validate is refused before anything is read: no record was shown.
    response = api("alice").get(f"/patients/{bob}/lab-results", query_string={"limit": 0})
    _problem(response, 422)
    assert [e for e in entries_for(session, response) if e.patient_id == bob] == []
    assert entries_for(session, response) == []


def test_token_requests_share_the_sign_in_pause_with_the_same_answer_for_every_address(
    client,
) -> None:
    answers = []
    for email in (DEMO_EMAILS["bob"], "nobody-here@example.org"):
        for _ in range(5):
            wrong = client.post("/api/v1/auth/token", json={"email": email, "password": "no"})
            problem(wrong, 401)
        paused = client.post("/api/v1/auth/token", json={"email": email, "password": "no"})
        body = problem(paused, 429)
        answers.append((paused.headers.get("Retry-After"), body["detail"]))
    assert answers[0] == answers[1]
    assert answers[0][0] == "60"
