"""Concurrent writers keep the chain whole: changes appending through `record()` (PostgreSQL:
the advisory lock in `chain_head`) and page reads through the read hook's own transaction
(the advisory lock in `chain.append`; on SQLite the write lock, queued on `append_lock`)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit, create_app
from portal.audit import keys
from portal.audit.chain import canonical_row, verify
from portal.cli import upgrade_database
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditEvent, AuditOutcome
from tests.support import app_config, backend, new_database

WRITERS = 8
ENTRIES_EACH = 15


def _append_concurrently(tmp_path, label: str, append) -> int:  # type: ignore[no-untyped-def]
    """Run WRITERS threads that each `append(engine, n, i)` ENTRIES_EACH times, all released
    at once; return how many entries the verified chain holds."""
    # A database of its own, since the writers commit for real.
    app = create_app(app_config(new_database(tmp_path, label)))
    upgrade_database(app)
    with app.app_context():
        engine = db.engine
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            with app.app_context():  # the app's audit key
                for i in range(ENTRIES_EACH):
                    append(engine, n, i)
        except BaseException as exc:  # reported below, with the thread's own traceback
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    with app.app_context(), Session(engine) as session:
        count, problem = verify(session)
        assert problem is None
        assert count == session.scalar(select(func.count(AuditEvent.id)))
    engine.dispose()
    return count


@pytest.mark.skipif(backend() != "postgresql", reason="SQLite serialises writers itself")
def test_concurrent_writers_keep_the_chain_intact(tmp_path) -> None:
    def change(engine, n: int, i: int) -> None:  # type: ignore[no-untyped-def]
        with Session(engine) as session:
            audit.record(
                session,
                actor_id=None,
                actor_role="provider",
                action=AuditAction.VIEW,
                entity_type="lab_result",
                entity_id=f"{n}-{i}",
            )
            session.commit()

    count = _append_concurrently(tmp_path, "audit_concurrency", change)
    assert count >= WRITERS * ENTRIES_EACH


@pytest.mark.parametrize("reads_first", [True, False], ids=["after-reads", "fresh-session"])
def test_concurrent_page_reads_keep_the_chain_intact(tmp_path, reads_first: bool) -> None:
    def page_read(engine, n: int, i: int) -> None:  # type: ignore[no-untyped-def]
        row = {
            "occurred_at": utcnow(),
            "actor_id": None,
            "actor_role": "patient",
            "action": AuditAction.VIEW,
            "entity_type": "lab_result",
            "entity_id": f"{n}-{i}",
            "patient_id": None,
            "outcome": AuditOutcome.SUCCESS,
            "detail": "{}",
            "request_id": None,
            "client_addr": None,
            "user_agent": None,
            "key_id": keys.configured().current.id,
        }
        with Session(engine) as session:
            if reads_first:
                # As in a request (the token check, the page): on PostgreSQL the entry carries
                # on in the transaction they opened (`unit_of_work`).
                session.scalar(select(func.count(AuditEvent.id)))
            audit._append(session, row, canonical_row(row), keys.configured().current)

    label = "audit_read_after_reads" if reads_first else "audit_read_fresh"
    count = _append_concurrently(tmp_path, label, page_read)
    assert count == WRITERS * ENTRIES_EACH
