"""A NUL byte or JSON nested past all use is a 400, never a 500 (L5, docs/security.md), on
both databases: PostgreSQL text cannot hold NUL, and the JSON parser's recursion runs out."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.web.unusable_input import json_too_deep
from tests.conftest import csrf_token


@pytest.mark.usefixtures("session")
def test_a_nul_byte_in_the_sign_in_form_is_refused(client: FlaskClient) -> None:
    token = csrf_token(client)
    answer = client.post(
        "/login", data={"email": "alice\x00@example.org", "password": "x", "csrf_token": token}
    )
    assert answer.status_code == 400


@pytest.mark.usefixtures("session")
@pytest.mark.parametrize(
    "body",
    [
        '{"email": "alice\\u0000@example.org", "password": "x"}',
        "[" * 50_000 + "]" * 50_000,
        '{"email": ' * 50_000 + "1" + "}" * 50_000,
    ],
    ids=["NUL", "deep array", "deep object"],
)
def test_unusable_json_is_refused_as_a_problem(client: FlaskClient, body: str) -> None:
    answer = client.post(
        "/api/v1/auth/token", data=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"


@pytest.mark.usefixtures("session")
def test_a_nul_byte_in_a_query_is_refused(client: FlaskClient) -> None:
    assert client.get("/login?next=%00").status_code == 400


def test_the_depth_scan_skips_strings_and_allows_ordinary_nesting() -> None:
    assert not json_too_deep(b'{"a": "[[[[[[[[[[[[", "b": [[1], {"c": [2]}]}', limit=4)
    assert not json_too_deep(b'"\\"[[[["', limit=1)
    assert json_too_deep(b"[[[[", limit=3)
