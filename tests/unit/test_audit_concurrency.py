"""Concurrent writers and sealers keep the chain whole: changes writing entries through
`record()` and page reads through the read hook's own transaction, with no lock between them,
while two sealers (as two workers would) seal them into the chain under its lock (PostgreSQL:
the advisory lock; SQLite: the write lock `unit_of_work` takes up front)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit, create_app
from portal.audit.chain import seal, unsealed
from portal.cli import upgrade_database
from portal.db import utcnow
from portal.extensions import db
from portal.models import AuditAction, AuditEvent, AuditOutcome, Entity
from portal.transactions import unit_of_work
from tests.support import app_config, new_database
from tests.unit.test_audit_chain import verify_checkpointed

WRITERS = 8
SEALERS = 2
ENTRIES_EACH = 15


def _append_concurrently(tmp_path, label: str, append) -> int:  # type: ignore[no-untyped-def]
    """Run WRITERS threads that each `append(engine, n, i)` ENTRIES_EACH times, all released
    at once; return how many entries the verified chain holds."""
    # A database of its own, since the writers commit for real.
    app = create_app(app_config(new_database(tmp_path, label)))
    upgrade_database(app)
    with app.app_context():
        engine = db.engine
    start = threading.Barrier(WRITERS + SEALERS)
    writing = threading.Event()
    writing.set()
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            with app.app_context():
                for i in range(ENTRIES_EACH):
                    append(engine, n, i)
        except BaseException as exc:  # reported below, with the thread's own traceback
            failures.append(exc)

    def sealer() -> None:
        try:
            start.wait()
            with app.app_context(), Session(engine) as session:  # the app's audit key
                while writing.is_set():
                    with unit_of_work(session):
                        seal(session, batch=7)
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    sealers = [threading.Thread(target=sealer) for _ in range(SEALERS)]
    for t in writers + sealers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    writing.clear()
    for t in sealers:
        t.join(timeout=60)
    assert failures == []
    with app.app_context(), Session(engine) as session:
        with unit_of_work(session):
            seal(session)  # what the writers wrote after the sealers' last turn
        assert unsealed(session) == 0
        count, problem = verify_checkpointed(session)
        assert problem is None
        assert count == session.scalar(select(func.count(AuditEvent.id)))
    engine.dispose()
    return count


def test_concurrent_writers_keep_the_chain_intact(tmp_path) -> None:
    def change(engine, n: int, i: int) -> None:  # type: ignore[no-untyped-def]
        with Session(engine) as session:
            audit.record(
                session, None, AuditAction.VIEW, Entity.LAB_RESULT, f"{n}-{i}", by="provider"
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
        }
        with Session(engine) as session:
            if reads_first:
                # As in a request (the token check, the page): on PostgreSQL the entry carries
                # on in the transaction they opened (`unit_of_work`).
                session.scalar(select(func.count(AuditEvent.id)))
            audit.commit_entry(session, row)

    label = "audit_read_after_reads" if reads_first else "audit_read_fresh"
    count = _append_concurrently(tmp_path, label, page_read)
    assert count == WRITERS * ENTRIES_EACH
