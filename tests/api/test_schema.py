"""The API keeps its own promise: schemathesis generates requests for every operation of
/api/v1/openapi.json, sends them over HTTP to the served app as a patient (alice) and as a
provider (dr.chen), and checks each answer: never a server error, a status code the document
lists for that operation, the content type it names, a body that matches its schema.

Bounded so that `make test` can afford it on each backend (about 20 s for both people):
schemathesis's fixed cases (the document's examples, boundary values of each parameter) plus a
few generated ones per operation, derandomized (the same code gets the same requests, so a red
run can be replayed), no deadline (a slow first request on PostgreSQL is not a failure), no
example database.

`DELETE /auth/token` runs with a token of its own each time (it would end the shared one).
Writes that the generated requests make stay in this module's own database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from portal import create_app
from portal.models import AuthMethod, User
from portal.services import sessions
from portal.transactions import unit_of_work
from tests.support import PASSWORD, app_config, served_app

pytestmark = pytest.mark.served

#: Generated requests per operation and person, on top of the fixed cases; with about 25
#: operations this keeps the module well under a minute on either backend.
EXAMPLES = 10

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: the first failing request is reported as it was sent (with a curl line).
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Served:
    base: str
    app: Flask

    def token(self, email: str) -> str:
        """A fresh bearer token, got the way a client gets one."""
        response = requests.post(
            f"{self.base}/api/v1/auth/token",
            json={"email": email, "password": PASSWORD, "client": "schemathesis"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def spare_token(self, email: str) -> str:
        """A token written straight into the sessions table: generated sign-ins with wrong
        passwords may have locked the account by then, and this one is only for revoking."""
        with self.app.app_context(), unit_of_work() as s:
            user = s.scalars(select(User).where(User.email == email)).one()
            return sessions.start(s, user, method=AuthMethod.TOKEN, client="schemathesis")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app over real HTTP (tests/support.served_app): generated writes stay in its own
    database."""
    with served_app(tmp_path_factory.mktemp("schema"), "schema") as (app, base):
        yield Served(base, app)


@pytest.fixture(scope="module")
def tokens(served: Served) -> dict[str, str]:
    return {
        "alice": served.token("alice@example.org"),
        "dr.chen": served.token("dr.chen@example.org"),
    }


def _document() -> dict[str, Any]:
    """The OpenAPI document, built at collection so that each operation is a test of its own
    (an app that is never served registers the operations; no database is opened)."""
    from portal.api.spec import document

    create_app(app_config("sqlite://"))
    return document()


schema = schemathesis.openapi.from_dict(_document())


def test_the_served_document_is_the_one_tested(served: Served) -> None:
    served_document = requests.get(f"{served.base}/api/v1/openapi.json", timeout=10).json()
    assert served_document == schema.raw_schema
    assert len(list(schema.get_all_operations())) >= 20


def _call(case: schemathesis.Case, served: Served, token: str) -> None:
    if case.method.upper() == "DELETE" and case.path == "/api/v1/auth/token":
        # Revoking ends the token it is sent with: it gets one of its own each time.
        token = served.spare_token("bob@example.org")
    case.call_and_validate(
        base_url=served.base, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )


@schema.parametrize()
@BOUNDED
def test_every_operation_as_a_patient(
    case: schemathesis.Case, served: Served, tokens: dict[str, str]
) -> None:
    _call(case, served, tokens["alice"])


@schema.parametrize()
@BOUNDED
def test_every_operation_as_a_provider(
    case: schemathesis.Case, served: Served, tokens: dict[str, str]
) -> None:
    _call(case, served, tokens["dr.chen"])


def test_every_post_takes_an_idempotency_key_or_says_why_not() -> None:
    from portal.api.operations import NOT_IDEMPOTENT, OPERATIONS

    posts = {op.name: op.idempotent for op in OPERATIONS if op.method == "POST"}
    assert posts
    assert {name for name, idempotent in posts.items() if not idempotent} == set(NOT_IDEMPOTENT)
    assert not any(posts[name] for name in NOT_IDEMPOTENT)
