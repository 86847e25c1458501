"""The database stops in the middle of writes and comes back (PostgreSQL; the suite's own
throwaway server is stopped as abruptly as a crash and started again).

What must hold: no half-written change (a message without its audit entry, or the reverse);
requests during the outage answered 503 (problem+json on the API, a calm page on the site)
and never a stack trace; service back within 10 s of the database, without a restart.
`bench/faults.py` runs the same at scale (3 runs x 500 writes) for docs/benchmarks.md.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from portal.access import unscoped
from portal.extensions import db
from portal.models import AuditAction, AuditEvent, Message
from tests.support import PostgresServer, bearer, served_app, signed_in

SERVER = PostgresServer.from_environment()
pytestmark = pytest.mark.skipif(
    SERVER is None, reason="needs the PostgreSQL server of scripts/with-postgres.sh"
)
MARK = "outage-test-"


def test_writes_through_a_database_restart_lose_nothing_halfway(tmp_path: Path) -> None:
    assert SERVER is not None
    with served_app(tmp_path, "outage") as (app, base):
        headers = bearer(base, "alice@example.org")
        page = signed_in(base, "alice@example.org")
        [thread, *_] = requests.get(
            base + "/api/v1/conversations", headers=headers, timeout=30
        ).json()["items"]
        answers: list[tuple[float, int, str, str]] = []
        stop = threading.Event()

        def write() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = requests.post(
                        f"{base}/api/v1/conversations/{thread['id']}/messages",
                        json={"body": f"{MARK}{n}"},
                        headers=headers,
                        timeout=30,
                    )
                    answers.append(
                        (time.monotonic(), r.status_code, r.headers.get("Content-Type", ""), r.text)
                    )
                except requests.RequestException as exc:  # pragma: no cover - reported below
                    answers.append((time.monotonic(), 0, "", repr(exc)))

        writer = threading.Thread(target=write)
        writer.start()
        try:
            while len(answers) < 20:
                time.sleep(0.05)
            SERVER.stop()
            time.sleep(1.5)
            outage_page = page.get(base + "/my/", timeout=30)
        finally:
            SERVER.start()
        back = time.monotonic()
        deadline = back + 30
        while time.monotonic() < deadline and not any(
            at > back and status == 201 for at, status, _t, _b in answers
        ):
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        writer.join(timeout=60)

        statuses = [status for _at, status, _t, _b in answers]
        assert set(statuses) <= {201, 503}, statuses
        assert 503 in statuses
        for _at, status, content_type, text in answers:
            if status == 503:
                assert content_type.startswith("application/problem+json")
                assert "Traceback" not in text
        recovered = min(at for at, status, _t, _b in answers if at > back and status == 201)
        assert recovered - back <= 10

        assert outage_page.status_code == 503
        assert "briefly unavailable" in outage_page.text
        assert "Traceback" not in outage_page.text
        assert outage_page.headers["Retry-After"]

        with app.app_context():
            messages = set(
                db.session.scalars(
                    unscoped(
                        select(Message.id).where(Message.body.startswith(MARK)),
                        "test: the messages written",
                    )
                )
            )
            stored = set(db.session.scalars(unscoped(select(Message.id), "test: every message")))
            audited = {
                int(entity)
                for entity in db.session.scalars(
                    select(AuditEvent.entity_id).where(
                        AuditEvent.action == AuditAction.SEND, AuditEvent.entity_type == "message"
                    )
                )
            }
        # Every stored message has its entry, every entry its message; every 201 was stored
        assert messages <= audited
        assert audited <= stored
        assert len(messages) >= statuses.count(201)
