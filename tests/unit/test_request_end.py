"""How a request's transaction ends (`portal.db.finish`): on PostgreSQL one that only read
commits, so the connection keeps the statements psycopg prepared on it (a ROLLBACK makes it
forget them all); one that wrote anything outside a unit of work is still rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from portal import create_app
from portal.cli import upgrade_database
from portal.extensions import db
from tests.support import app_config, backend, new_database

pytestmark = pytest.mark.skipif(
    backend() != "postgresql", reason="psycopg's prepared statements: PostgreSQL only"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app(app_config(new_database(tmp_path_factory.mktemp("end"), "request_end")))
    upgrade_database(app)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch (n integer)"))

    @app.get("/t/prepared")
    def prepared() -> str:  # what this connection has prepared, read in this request
        return str(db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements")))

    @app.get("/t/insert")
    def insert() -> str:  # a write outside any unit of work: a bug, never to be kept
        db.session.execute(text("INSERT INTO scratch VALUES (1)"))
        return "written"

    @app.get("/t/with")
    def with_insert() -> str:  # the same, hidden in a statement that does not start so
        db.session.execute(text("WITH x AS (INSERT INTO scratch VALUES (2) RETURNING n) SELECT 1"))
        return "written"

    @app.get("/t/failed")
    def failed() -> str:
        db.session.execute(text("INSERT INTO scratch VALUES (3)"))
        raise RuntimeError("the view failed after writing")

    yield app
    with app.app_context():
        db.engine.dispose()


def _kept(app: Flask) -> list[int]:
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(text("SELECT n FROM scratch")))
    finally:
        engine.dispose()


def test_read_only_requests_keep_the_connections_prepared_statements(app: Flask) -> None:
    client = app.test_client()
    counts = [int(client.get("/t/prepared").get_data(as_text=True)) for _ in range(12)]
    # psycopg prepares a statement on its sixth run; a ROLLBACK at the end of each request
    # would reset its count, and the server's, to nothing every time.
    assert counts[-1] >= 1, counts


def test_a_write_outside_a_unit_of_work_is_rolled_back_not_committed(app: Flask) -> None:
    client = app.test_client()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/t/insert").status_code == 200
    assert client.get("/t/with").status_code == 200
    assert client.get("/t/failed").status_code == 500
    assert _kept(app) == []
