"""A full disk for attachments (issue 13, point 6): the upload is refused with a clear word,
nothing of it is written, and the same upload goes through once there is room again, without
a restart; the API says 507 in problem+json.

SQLite: a real SQLITE_FULL from the engine. Every connection the app checks out gets
`PRAGMA max_page_count` a few pages above the database's size, on a copy of the suite's
database: SQLite ends the whole transaction when a large row finds no room, which would take
the test's rolled-back outer transaction (the `connection` fixture) with it.
PostgreSQL: a disk cannot be filled cheaply without root, so a trigger, created in the test's
rolled-back transaction, raises SQLSTATE 53100 `disk_full` from the server for a row too large
for the room left, as PostgreSQL does when it cannot extend a file: the same driver error and
the same code path from there on; a real full disk is not exercised.
"""

from __future__ import annotations

import html
import io
import random
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url

from portal import create_app
from portal.db import set_clock, utcnow
from tests.conftest import IsolatedClient, csrf_token, login
from tests.support import PASSWORD, app_config, backend

PAGE = 4096
#: Room left for a change: its small rows fit, a 1 MB file does not.
ROOM = 64
#: A file too large for `ROOM`, random so nothing could squeeze it.
SCAN = b"%PDF-1.4\n" + random.Random(13).randbytes(1_000_000)
#: Rows a refused change must not leave behind (besides its audit entry, counted apart).
TABLES = (
    "lab_result",
    "lab_result_version",
    "attachment",
    "conversation",
    "message",
    "notification",
    "mail_outbox",
    "idempotent_request",
)
FULL = "The portal's storage is full, so nothing was saved"


@dataclass
class Disk:
    """The database of the app under test, with a say over how much room it has left."""

    app: Flask
    conn: Connection | None = None  # PostgreSQL: the test's rolled-back transaction
    limit: int | None = None  # SQLite: pages the database may have; None: no limit
    triggers: list[str] = field(default_factory=list)

    def scalar(self, sql: str) -> Any:
        if self.conn is not None:
            return self.conn.exec_driver_sql(sql).scalar()
        with self.app.extensions["portal.db"]["engine"].connect() as conn:
            return conn.exec_driver_sql(sql).scalar()

    def leave_room(self, pages: int) -> None:
        """From now on, no change may need more than `pages` new pages."""
        if self.conn is None:
            self.limit = self.scalar("PRAGMA page_count") + pages
            return
        for table, column in (("attachment", "ciphertext"), ("message", "body")):
            name = f"full_disk_{table}"
            self.conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN (octet_length(NEW.{column}) > {pages * PAGE}) "
                "EXECUTE FUNCTION full_disk_refuse()"
            )
            self.triggers.append(f"{name} ON {table}")

    def refuse_every(self, change: str, table: str) -> None:
        """PostgreSQL only: no room even for the smallest `change` (INSERT, UPDATE) of `table`."""
        assert self.conn is not None
        name = f"full_disk_{change.lower()}_{table}"
        self.conn.exec_driver_sql(
            f"CREATE TRIGGER {name} BEFORE {change} ON {table} FOR EACH ROW "
            "EXECUTE FUNCTION full_disk_refuse()"
        )
        self.triggers.append(f"{name} ON {table}")

    def free(self) -> None:
        """Room again, as when the operator frees space: the app is not restarted."""
        self.limit = None
        while self.triggers:
            assert self.conn is not None
            self.conn.exec_driver_sql(f"DROP TRIGGER {self.triggers.pop()}")

    def rows(self) -> dict[str, int]:
        """How many rows each table of `TABLES` holds, and the audit entries of changes."""
        counts = {table: self.scalar(f"SELECT count(*) FROM {table}") for table in TABLES}
        counts["audit_event (not views)"] = self.scalar(
            "SELECT count(*) FROM audit_event WHERE action <> 'view'"
        )
        return counts

    def client(self, email: str) -> FlaskClient:
        self.app.test_client_class = IsolatedClient
        signed_in = self.app.test_client()
        login(signed_in, email)
        return signed_in

    def id_of(self, sql: str) -> int:
        found = self.scalar(sql)
        assert found is not None, sql
        return int(found)


def _sqlite_copy(app: Flask, database_url: str, tmp: Path) -> Iterator[Disk]:
    source = make_url(database_url).database
    assert source
    copy = tmp / "full-disk.db"
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as dst:
        dst.execute("VACUUM")  # no free pages: room is only what `leave_room` allows
    copied = create_app(app_config(f"sqlite:///{copy}"))
    disk = Disk(copied)
    engine = copied.extensions["portal.db"]["engine"]
    largest = disk.scalar("PRAGMA max_page_count")

    def cap(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # On every checkout, so a limit lifted reaches the connections already open.
        dbapi_conn.execute(f"PRAGMA max_page_count={disk.limit or largest}")

    event.listen(engine, "checkout", cap)
    try:
        yield disk
    finally:
        copied.extensions["portal.bus"].stop()
        engine.dispose()


@pytest.fixture
def disk(
    app: Flask, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Disk]:
    if backend() == "sqlite":
        yield from _sqlite_copy(app, database_url, tmp_path)
        return
    conn = request.getfixturevalue("connection")
    conn.exec_driver_sql(
        "CREATE FUNCTION full_disk_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device' "
        "USING ERRCODE = 'disk_full', HINT = 'Check free disk space.'; END $$"
    )
    postgres = Disk(app, conn)
    yield postgres
    postgres.free()  # the rollback would too; a failed test's triggers go first


def _staff_publishes(disk: Disk) -> tuple[FlaskClient, str, dict[str, Any], str]:
    patient = disk.id_of(
        "SELECT p.id FROM patient_profile p JOIN user_account u ON u.id = p.user_id "
        "WHERE u.email = 'alice@example.org'"
    )
    form = {
        "test_code": "718-7",
        "test_name": "Hemoglobin",
        "result_value": "13.9",
        "action": "final",
        "visibility": "shared",
        "report": (io.BytesIO(SCAN), "scan.pdf"),
    }
    return disk.client("dr.chen@example.org"), f"/staff/patients/{patient}/results/new", form, ""


def _patient_writes(disk: Disk) -> tuple[FlaskClient, str, dict[str, Any], str]:
    chen = disk.id_of("SELECT id FROM user_account WHERE email = 'dr.chen@example.org'")
    form = {
        "to": str(chen),
        "subject": "My scan",
        "body": "The scan from the other hospital.",
        "attachment": [(io.BytesIO(SCAN), "scan.pdf")],
    }
    return disk.client("alice@example.org"), "/my/messages/new", form, "The scan from"


@pytest.mark.parametrize("upload", [_staff_publishes, _patient_writes], ids=["result", "message"])
def test_an_upload_the_disk_has_no_room_for_is_refused_whole_and_goes_through_later(
    disk: Disk, upload: Any
) -> None:
    # Arrange
    client, url, form, typed = upload(disk)
    token = csrf_token(client, url)
    before = disk.rows()
    disk.leave_room(ROOM)
    # Act
    refused = client.post(url, data={**form, "csrf_token": token})
    after_refusal = disk.rows()
    disk.free()
    form = {key: _again(value) for key, value in form.items()}
    sent = client.post(url, data={**form, "csrf_token": token})
    # Assert: the form again, saying why, with what was typed; nothing of the change kept
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 422, page[:2000]
    assert FULL in page
    assert typed in page
    assert "Traceback" not in page
    assert after_refusal == before
    # ...and the same upload, with room again, is saved whole
    assert sent.status_code == 303, sent.get_data(as_text=True)[:2000]
    grown = {table: count - before[table] for table, count in disk.rows().items()}
    assert grown["attachment"] == 1
    assert grown["audit_event (not views)"] >= 1
    assert grown["notification"] >= 1


def _again(value: Any) -> Any:
    """A file field's file, rewound for a second post (the client read it to the end)."""
    files = value if isinstance(value, list) else [value]
    if not all(isinstance(f, tuple) for f in files):
        return value
    fresh = [(io.BytesIO(SCAN), name) for _stream, name in files]
    return fresh if isinstance(value, list) else fresh[0]


def test_the_api_answers_a_full_disk_with_507_problem_json_and_keeps_nothing(
    disk: Disk, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange
    client = disk.app.test_client()
    token = client.post(
        "/api/v1/auth/token",
        json={"email": "alice@example.org", "password": PASSWORD, "client": "tests"},
    ).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    [thread, *_] = client.get("/api/v1/conversations", headers=headers).get_json()["items"]
    body = "Readings, week by week: " + "120/80 " * 2_500  # a row larger than the room left
    before = disk.rows()
    disk.leave_room(1)
    # Act
    refused = client.post(
        f"/api/v1/conversations/{thread['id']}/messages", json={"body": body}, headers=headers
    )
    after_refusal = disk.rows()
    disk.free()
    sent = client.post(
        f"/api/v1/conversations/{thread['id']}/messages", json={"body": body}, headers=headers
    )
    # Assert
    assert refused.status_code == 507, refused.get_data(as_text=True)
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["detail"].startswith(FULL)
    assert after_refusal == before
    assert sent.status_code == 201
    # For the operator: one line, that storage is full; no statement, nothing of what was sent
    [line] = [r.getMessage() for r in caplog.records if "storage full" in r.getMessage()]
    assert re.fullmatch(
        r"storage full: the database could not grow \((OperationalError|DiskFull)\); the change "
        r"was rolled back, nothing of it was saved\. Free disk space for the database\.",
        line,
    )


@pytest.mark.skipif(backend() == "sqlite", reason="SQLite cannot be made to refuse a small row")
@pytest.mark.parametrize(
    ("change", "table", "later"),
    [
        # No entry, no page: the read hook's entry finds no room
        ("INSERT", "audit_event", timedelta(0)),
        # Who is signed in cannot be noted (a session's "last seen", written once a minute)
        ("UPDATE", "user_session", timedelta(minutes=2)),
    ],
    ids=["audit-entry", "session-touch"],
)
def test_a_page_that_cannot_write_for_a_full_disk_is_a_calm_507(
    disk: Disk, change: str, table: str, later: timedelta
) -> None:
    # Arrange
    client = disk.client("alice@example.org")
    disk.refuse_every(change, table)
    moment = utcnow() + later
    set_clock(lambda: moment)
    # Act
    page = client.get("/my/lab-results")
    # Assert: the page says why, not "something went wrong", and shows no record
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 507, text[:2000]
    assert "The portal's storage is full" in text
    assert "Traceback" not in text
    assert not re.search(r"Hemoglobin|TSH|Thyroid", text)
