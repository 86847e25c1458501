"""Fixtures of the API tests: bearer tokens for the demo people, and a client that sends one.

`token_for("alice")` gets a token the way an app does (POST /api/v1/auth/token);
`api("alice").get("/patients")` sends it (paths without the /api/v1 prefix get it added).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import DEMO_EMAILS
from tests.support import PASSWORD

PREFIX = "/api/v1"
PROBLEM = "application/problem+json"


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; its body."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["status"] == status
    return body


class Api:
    """The test client, as one person holding a bearer token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def _call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = path if path.startswith("/api/") else PREFIX + path
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self._call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self._call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self._call("DELETE", path, **kwargs)


@pytest.fixture
def token_for(client: FlaskClient) -> Callable[[str], str]:
    """A fresh bearer token for a demo person, by name ("alice", "dr_chen", "admin"...)."""

    def issue(name: str) -> str:
        response = client.post(
            f"{PREFIX}/auth/token",
            json={"email": DEMO_EMAILS[name], "password": PASSWORD, "client": "API tests"},
        )
        assert response.status_code == 201, response.get_data(as_text=True)[:300]
        return str(response.json["token"])  # type: ignore[index]

    return issue


@pytest.fixture
def api(client: FlaskClient, token_for: Callable[[str], str]) -> Callable[[str], Api]:
    """`api("alice")`: the test client sending alice's bearer token on every request."""
    tokens: dict[str, str] = {}

    def as_person(name: str) -> Api:
        if name not in tokens:
            tokens[name] = token_for(name)
        return Api(client, tokens[name])

    return as_person
