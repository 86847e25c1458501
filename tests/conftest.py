"""Fixtures: one migrated, demo-seeded database per run; each test in a rolled-back transaction.

The app's sessions join an outer transaction with savepoints, so a view's commit behaves for
real and nothing persists past the test (warehouse's and Indico's pattern).
"""

from __future__ import annotations

import contextvars
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.globals import _cv_app
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from portal import create_app, demo
from portal.access import Actor
from portal.cli import upgrade_database
from portal.db import set_clock
from portal.extensions import db
from portal.models import User
from tests.support import PASSWORD, app_config, new_database


def _suite_clock() -> Callable[[], datetime] | None:
    """TEST_CLOCK=2026-12-07T09:30 runs the whole suite as if it were that moment (UTC), so
    `.ci/run` can prove it green on every day of a week; unset, the system clock runs."""
    raw = os.environ.get("TEST_CLOCK")
    if not raw:
        return None
    start = datetime.fromisoformat(raw).replace(tzinfo=UTC)
    began = time.monotonic()
    # The pinned day still moves forward, so timeouts and "just now" behave as in real use.
    return lambda: start + timedelta(seconds=time.monotonic() - began)


SUITE_CLOCK = _suite_clock()
set_clock(SUITE_CLOCK)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = new_database(tmp_path_factory.mktemp("db"), "suite")
    return url


@pytest.fixture(scope="session")
def app(database_url: str) -> Flask:
    app = create_app(app_config(database_url))
    upgrade_database(app)
    with app.app_context():
        demo.seed(db.session)
    return app


@pytest.fixture
def connection(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An outer transaction the test's sessions join; rolled back at the end.

    Audit checkpoints go to a folder of the test's own (created only if one is written): a
    checkpoint of entries this rollback removes would read as a cut tail to later tests.
    """
    engine = app.extensions["portal.db"]["engine"]
    original = app.extensions["portal.db"]["sessionmaker"]
    checkpoints = app.config["AUDIT_CHECKPOINT_DIR"]
    app.config["AUDIT_CHECKPOINT_DIR"] = str(tmp_path_factory.getbasetemp() / uuid.uuid4().hex)
    with engine.connect() as conn:
        outer = conn.begin()
        app.extensions["portal.db"]["sessionmaker"] = sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield conn
        finally:
            app.extensions["portal.db"]["sessionmaker"] = original
            app.config["AUDIT_CHECKPOINT_DIR"] = checkpoints
            if outer.is_active:
                outer.rollback()


@pytest.fixture
def app_ctx(app: Flask, connection: object) -> Iterator[Flask]:
    with app.app_context():
        yield app


@pytest.fixture
def session(app_ctx: Flask) -> Session:
    return db.session


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context (its own `g` and session),
    as in production, even while the test itself holds an app context for `session`."""

    def open(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
        def run():  # type: ignore[no-untyped-def]
            _cv_app.set(None)  # type: ignore[arg-type]
            return super(IsolatedClient, self).open(*args, **kwargs)

        return contextvars.copy_context().run(run)


@pytest.fixture
def client(app: Flask, connection: object) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture(autouse=True)
def _restore_clock() -> Iterator[None]:
    yield
    set_clock(SUITE_CLOCK)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def post(client: FlaskClient, path: str, data: dict | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    """POST with the CSRF token a signed-in page carries."""
    token = csrf_token(client, "/")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


@dataclass
class Demo:
    """The demo accounts, with their actors, loaded in the test's transaction."""

    users: dict[str, User] = field(default_factory=dict)

    def user(self, name: str) -> User:
        return self.users[name]

    def actor(self, name: str) -> Actor:
        return Actor.of(self.users[name])


DEMO_EMAILS = {
    "alice": "alice@example.org",
    "bob": "bob@example.org",
    "carol": "carol@example.org",
    "dan": "dan@example.org",
    "sam": "sam@example.org",
    "dr_chen": "dr.chen@example.org",
    "dr_okafor": "dr.okafor@example.org",
    "admin": "admin@example.org",
}


@pytest.fixture
def people(session: Session) -> Demo:
    found = Demo()
    for name, email in DEMO_EMAILS.items():
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        found.users[name] = user
    return found


@pytest.fixture
def category_rules(session: Session, people: Demo) -> None:
    """The clinic turns the category release rules on (as a clinic outside the US may): the
    demo's policies (genetic results held for review) then apply to what is published next."""
    from portal.services import settings

    settings.set_category_rules(session, people.actor("admin"), True)
    session.commit()


@pytest.fixture
def as_user(client: FlaskClient):  # type: ignore[no-untyped-def]
    """Sign the test client in: `as_user("alice")`."""

    def sign_in(name: str) -> FlaskClient:
        login(client, DEMO_EMAILS[name])
        return client

    return sign_in


@contextmanager
def count_queries(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL statements run inside the block."""
    statements: list[str] = []
    engine = app.extensions["portal.db"]["engine"]

    def before(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


__all__ = ["Path", "count_queries", "csrf_token", "login", "post"]
