"""`/healthz` (the process answers) and `/readyz` (the database answers and its schema is at
the migrations' head), for load balancers and orchestrators: no sign-in, no audit entry, no
patient data, plain JSON that is never cached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import create_app
from portal.cli import upgrade_database
from portal.models import AuditEvent
from tests.support import app_config, new_database


def _audit_entries(session: Session) -> int:
    return session.scalar(select(func.count(AuditEvent.id))) or 0


@pytest.mark.parametrize(("path", "body"), [("/healthz", {"status": "ok"}), ("/readyz", None)])
def test_health_and_readiness_answer_anyone_in_plain_json_unaudited_and_uncached(
    client, session: Session, path: str, body: dict[str, str] | None
) -> None:
    before = _audit_entries(session)

    response = client.get(path)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    if body is not None:
        assert response.json == body
    assert _audit_entries(session) == before


def test_ready_names_what_it_checked(client) -> None:
    assert client.get("/readyz").json == {
        "status": "ready",
        "database": "reachable",
        "migrations": "at head",
    }


def test_health_and_readiness_answer_a_signed_in_browser_the_same(as_user) -> None:
    client = as_user("alice")
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def app_at(tmp_path: Path) -> Iterator[object]:
    """An app over a fresh database of the suite's kind, migrated up to a given revision."""
    made: list[Flask] = []

    def make(revision: str | None, url: str | None = None) -> Flask:
        app = create_app(app_config(url or new_database(tmp_path, f"ready_{len(made)}")))
        if revision is not None:
            upgrade_database(app, revision)
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["portal.db"]["engine"].dispose()


def test_a_database_behind_the_migrations_is_not_ready(app_at) -> None:
    app = app_at("0004")

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json == {
        "status": "not ready",
        "database": "reachable",
        "migrations": "not at head",
    }
    assert app.test_client().get("/healthz").status_code == 200  # the process is up


def test_an_empty_database_is_not_ready(app_at) -> None:
    response = app_at(None).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["migrations"] == "not at head"


def test_an_unreachable_database_is_not_ready_and_says_nothing_more(app_at, tmp_path: Path) -> None:
    app = app_at(None, f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'portal.db'}")

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json == {"status": "not ready", "database": "unreachable"}
